//! The benchmark's lab: a server and a client (attacker + legitimate clients) namespace joined
//! by a veth pair, with threaded NAPI on both ends so that the server's whole receive path runs
//! in a kernel thread pinned to the server's CPU, and the attacker's side on the other CPU.
//!
//! The client's veth runs `lab_sink`: what the server sends back to the spoofed sources is
//! counted and dropped at once, in every scenario, so the attacker's side costs the same
//! whatever the defence. Frames sent with XDP_TX reach a veth only when it runs NAPI (an XDP
//! program, or GRO): the server's veth has GRO on in every scenario.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    sync::atomic::{AtomicU32, Ordering},
};

use aya::{
    Ebpf,
    maps::{Array, MapData},
    programs::{SchedClassifier, TcAttachType, Xdp, XdpMode},
};
use syncookie_common::lab::{LabCounter, map, prog};
use syncookie_tests::{
    flood::mac,
    lab_counter,
    netns::{Netns, sh, veth},
};

use crate::cpu;

/// The shield attached to a lab's server interface; detached on drop, also when the bench
/// panics.
pub struct ShieldGuard(pub Option<syncookie::bpf::loader::Shield>);

impl Drop for ShieldGuard {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            s.detach();
        }
    }
}

/// Where things run: the attacker, the clients and the bench itself on one CPU, the server on
/// another.
#[derive(Clone, Copy, Debug)]
pub struct Cpus {
    pub attacker: usize,
    pub server: usize,
}

pub struct BenchLab {
    // Programs first: fields drop in order, and they go before the namespaces.
    client_lab: Ebpf,
    server_lab: Option<Ebpf>,
    pub server: Netns,
    pub client: Netns,
    pub server_if: String,
    pub client_if: String,
    pub server_ip: Ipv4Addr,
    pub server_ip6: Ipv6Addr,
    pub server_mac: [u8; 6],
    /// The server's NAPI threads, once pinned.
    pub server_napi: Vec<i32>,
    reflector: bool,
}

fn load_lab() -> Ebpf {
    Ebpf::load(syncookie_tests::LAB_OBJECT).expect("lab object")
}

fn attach_xdp(ebpf: &mut Ebpf, prog: &str, iface: &str) {
    let p: &mut Xdp = ebpf.program_mut(prog).unwrap().try_into().unwrap();
    p.load().unwrap_or_else(|e| panic!("load {prog}: {e}"));
    p.attach(iface, XdpMode::Driver)
        .unwrap_or_else(|e| panic!("attach {prog} to {iface}: {e}"));
}

impl BenchLab {
    pub fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        // Short names: the NAPI thread is called napi/<iface>-<id>, cut at 15 bytes.
        let base = format!(
            "sb{}x{}",
            std::process::id() % 1000,
            N.fetch_add(1, Ordering::Relaxed)
        );
        let server = Netns::new(&format!("{base}s"));
        let client = Netns::new(&format!("{base}c"));
        let (server_if, client_if) = (format!("{base}s"), format!("{base}c"));
        veth(&server, &server_if, &client, &client_if);
        let server_ip = Ipv4Addr::new(10, 99, 0, 1);
        let client_ip = Ipv4Addr::new(10, 99, 0, 2);
        for (ns, ifc, ip) in [
            (&server, &server_if, server_ip),
            (&client, &client_if, client_ip),
        ] {
            ns.exec(&["ip", "addr", "add", &format!("{ip}/24"), "dev", ifc]);
        }
        // IPv6 too (the IPv6 SYN path's row), usable at once: no duplicate address detection.
        let (server_ip6, client_ip6) = (
            Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 1),
            Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 2),
        );
        for (ns, ifc, ip) in [
            (&server, &server_if, server_ip6),
            (&client, &client_if, client_ip6),
        ] {
            ns.sysctl(&format!("net.ipv6.conf.{ifc}.accept_dad"), "0");
            ns.exec(&["ip", "-6", "addr", "add", &format!("{ip}/64"), "dev", ifc]);
        }
        server.exec(&["ethtool", "-K", &server_if, "gro", "on"]);
        // XDP checks the TCP checksum of SYNs: the sender must not leave it to offload.
        client.exec(&["ethtool", "-K", &client_if, "tx", "off"]);
        server.exec(&["ip", "link", "set", &server_if, "up"]);
        client.exec(&["ip", "link", "set", &client_if, "up"]);
        // The kernel answers spoofed sources only if it has a route to them: back to the
        // attacker's veth, where lab_sink drops it.
        server.exec(&[
            "ip",
            "route",
            "add",
            "198.18.0.0/15",
            "via",
            &client_ip.to_string(),
        ]);
        let client_lab = {
            let _in = client.enter();
            let mut e = load_lab();
            attach_xdp(&mut e, prog::SINK, &client_if);
            e
        };
        // Threaded NAPI once both ends have NAPI instances (GRO, an XDP program, link up).
        for (ns, ifc) in [(&server, &server_if), (&client, &client_if)] {
            sh(&[
                "ip",
                "netns",
                "exec",
                &ns.name,
                "sh",
                "-c",
                &format!("echo 1 > /sys/class/net/{ifc}/threaded"),
            ]);
        }
        let server_mac = mac(&server, &server_if);
        Self {
            client_lab,
            server_lab: None,
            server,
            client,
            server_if,
            client_if,
            server_ip,
            server_ip6,
            server_mac,
            server_napi: Vec::new(),
            reflector: false,
        }
    }

    /// For the kernel's own defences: `lab_count_syn` (XDP, passes everything) counts arriving
    /// SYNs, `lab_count_synack` (TC egress) the SYN-ACKs the server's stack sends.
    pub fn attach_kernel_counters(&mut self) {
        let _in = self.server.enter();
        let mut e = load_lab();
        attach_xdp(&mut e, prog::COUNT_SYN, &self.server_if);
        let p: &mut SchedClassifier = e
            .program_mut(prog::COUNT_SYNACK)
            .unwrap()
            .try_into()
            .unwrap();
        p.load().expect("load lab_count_synack");
        p.attach(&self.server_if, TcAttachType::Egress)
            .expect("attach lab_count_synack");
        self.server_lab = Some(e);
    }

    /// For the reflector scenario: `lab_reflect_count` answers (and counts) every TCP frame.
    pub fn attach_reflector(&mut self) {
        let _in = self.server.enter();
        let mut e = load_lab();
        attach_xdp(&mut e, prog::REFLECT_COUNT, &self.server_if);
        self.server_lab = Some(e);
        self.reflector = true;
    }

    /// Frames `lab_reflect_count` sent back, in the reflector scenario.
    pub fn reflected(&self) -> Option<u64> {
        let e = self.server_lab.as_ref().filter(|_| self.reflector)?;
        Some(lab_counter(e, LabCounter::Reflected))
    }

    /// Pins the NAPI threads: the server's to the server's CPU, the client's to the other.
    /// Returns how many were found on each side.
    pub fn pin_napi(&mut self, cpus: Cpus) -> (usize, usize) {
        let s = syncookie_tests::netns::napi_threads(&self.server_if);
        let c = syncookie_tests::netns::napi_threads(&self.client_if);
        for &t in &s {
            let _ = cpu::pin(t, cpus.server);
        }
        for &t in &c {
            let _ = cpu::pin(t, cpus.attacker);
        }
        let n = (s.len(), c.len());
        self.server_napi = s;
        n
    }

    /// The shield on the server's interface, protecting `port`, in `xdp_mode` with `policy`.
    pub fn attach_shield(
        &self,
        port: u16,
        xdp_mode: syncookie::bpf::loader::XdpModeArg,
        policy: syncookie::policy::Policy,
    ) -> ShieldGuard {
        let _in = self.server.enter();
        let opts = syncookie::bpf::loader::Options {
            iface: self.server_if.clone(),
            ports: vec![port],
            xdp_mode,
            pins: syncookie_tests::daemon::pins(&self.server, &self.server_if),
            policy,
            fleet: None,
            cookies: Some(syncookie::host::kernel::Cookies::Own),
            refresh_secs: syncookie_common::maps::kernel_cookies::DEFAULT_REFRESH_SECS,
            timestamps_2: false,
            share: Default::default(),
        };
        let s = syncookie::bpf::loader::Shield::attach(&opts)
            .unwrap_or_else(|e| panic!("attaching the shield ({xdp_mode:?}, {policy:?}): {e}"));
        ShieldGuard(Some(s))
    }

    pub fn sysctl(&self, key: &str, value: &str) {
        self.server.sysctl(key, value);
    }

    /// SYNs counted by `lab_count_syn` (kernel scenarios).
    pub fn syns_seen(&self) -> u64 {
        self.server_lab
            .as_ref()
            .map_or(0, |e| lab_counter(e, LabCounter::Syn))
    }

    /// SYN-ACKs the server's own stack sent (kernel scenarios).
    pub fn kernel_synacks(&self) -> u64 {
        self.server_lab.as_ref().map_or(0, |e| {
            let m = e.map(map::SYNACKS).unwrap();
            let a: Array<&MapData, u64> = Array::try_from(m).unwrap();
            a.get(&0, 0).unwrap_or(0)
        })
    }

    /// SYN-ACKs that reached the attacker's side (sent to the spoofed range).
    pub fn sink_synacks(&self) -> u64 {
        lab_counter(&self.client_lab, LabCounter::SinkSynack)
    }
}
