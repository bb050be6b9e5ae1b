//! A two-host lab: server and client namespaces joined by a veth pair, the client's TX checksum
//! offload on as veth and containers have it (its segments carry partial sums), and a pass
//! program on the client's veth so that frames the server's XDP sends back with XDP_TX are
//! received.

use std::net::{Ipv4Addr, Ipv6Addr};

use aya::{
    Ebpf,
    maps::{Array, MapData},
    programs::{LinkOrder, SchedClassifier, TcAttachType, Xdp, XdpMode, tc::TcAttachOptions},
};

use syncookie_common::lab::{LabCounter, drop_ack, map, prog};

use crate::netns::{Netns, unique, veth};

pub struct Lab {
    pub server: Netns,
    pub client: Netns,
    pub server_if: String,
    pub client_if: String,
    pub server_ip: Ipv4Addr,
    pub client_ip: Ipv4Addr,
    /// IPv6 addresses on the same veth (fd00:<a>:<b>::1 and ::2/64, no DAD).
    pub server_ip6: Ipv6Addr,
    pub client_ip6: Ipv6Addr,
    /// The client-side lab programs (kept loaded and attached while the lab lives).
    pub client_lab: Ebpf,
    /// Server side: `lab_count_synack` on the veth's egress.
    pub server_lab: Ebpf,
    /// The client's TX checksum offload is on (the veth and container default): its SYNs
    /// then carry only the pseudo-header sum.
    client_tx_offload: bool,
}

fn attach_tc(ebpf: &mut Ebpf, prog: &str, iface: &str, at: TcAttachType) {
    let p: &mut SchedClassifier = ebpf.program_mut(prog).unwrap().try_into().unwrap();
    p.load().unwrap_or_else(|e| panic!("load {prog}: {e}"));
    p.attach(iface, at)
        .unwrap_or_else(|e| panic!("attach {prog}: {e}"));
}

/// TC programs attach as links (TCX) on Linux 6.6+, through a clsact qdisc before.
pub fn tcx() -> bool {
    use aya::util::KernelVersion;
    KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0))
}

impl Lab {
    /// A lab whose client keeps TX checksum offload on, as containers and veth peers do: every
    /// netns test runs so.
    pub fn new() -> Self {
        Self::build(true)
    }

    /// A lab whose client sends full checksums (TX offload off), as frames from a wire have.
    pub fn with_full_checksums() -> Self {
        Self::build(false)
    }

    fn build(client_tx_offload: bool) -> Self {
        let base = unique("sc");
        let server = Netns::new(&format!("{base}s"));
        let client = Netns::new(&format!("{base}c"));
        let (server_if, client_if) = (format!("{base}s"), format!("{base}c"));
        // 10.<a>.<b>.0/24, unique per lab so nothing collides even across namespaces.
        let n = std::process::id()
            .wrapping_mul(31)
            .wrapping_add(base.len() as u32);
        let net = [10u8, (n >> 8) as u8 | 64, n as u8];
        for ns in [&server, &client] {
            ns.sysctl("net.ipv4.tcp_syncookies", "1");
        }
        let mut client_lab = Ebpf::load(crate::LAB_OBJECT).expect("lab object");
        let p: &mut Xdp = client_lab
            .program_mut(prog::PASS)
            .unwrap()
            .try_into()
            .unwrap();
        p.load().expect("load lab_pass");
        let mut server_lab = Ebpf::load(crate::LAB_OBJECT).expect("lab object");
        let p: &mut SchedClassifier = server_lab
            .program_mut(prog::COUNT_SYNACK)
            .unwrap()
            .try_into()
            .unwrap();
        p.load().expect("load lab_count_synack");
        let mut lab = Self {
            server,
            client,
            server_if,
            client_if,
            server_ip: Ipv4Addr::new(net[0], net[1], net[2], 1),
            client_ip: Ipv4Addr::new(net[0], net[1], net[2], 2),
            server_ip6: Ipv6Addr::new(0xfd00, net[1] as u16, net[2] as u16, 0, 0, 0, 0, 1),
            client_ip6: Ipv6Addr::new(0xfd00, net[1] as u16, net[2] as u16, 0, 0, 0, 0, 2),
            client_lab,
            server_lab,
            client_tx_offload,
        };
        lab.wire();
        lab
    }

    /// The veth pair, its addresses, the client's TX checksum offload, and the lab programs.
    fn wire(&mut self) {
        veth(&self.server, &self.server_if, &self.client, &self.client_if);
        for (ns, ifc, ip, ip6) in [
            (
                &self.server,
                &self.server_if,
                self.server_ip,
                self.server_ip6,
            ),
            (
                &self.client,
                &self.client_if,
                self.client_ip,
                self.client_ip6,
            ),
        ] {
            ns.exec(&["ip", "addr", "add", &format!("{ip}/24"), "dev", ifc]);
            // No duplicate address detection: usable at once (a sysctl rather than `nodad`,
            // which busybox's ip in the kernel matrix's initramfs does not know).
            ns.sysctl(&format!("net.ipv6.conf.{ifc}.accept_dad"), "0");
            let a6 = format!("{ip6}/64");
            ns.exec(&["ip", "-6", "addr", "add", &a6, "dev", ifc]);
            ns.exec(&["ip", "link", "set", ifc, "up"]);
        }
        if !self.client_tx_offload {
            self.client
                .exec(&["ethtool", "-K", &self.client_if, "tx", "off"]);
        }
        {
            let _in = self.client.enter();
            let p: &mut Xdp = self
                .client_lab
                .program_mut(prog::PASS)
                .unwrap()
                .try_into()
                .unwrap();
            p.attach(&self.client_if, XdpMode::Driver)
                .expect("attach lab_pass");
        }
        let _in = self.server.enter();
        if !tcx() {
            // Before TCX (Linux 6.6) a TC program needs a clsact qdisc to attach to.
            aya::programs::tc::qdisc_add_clsact(&self.server_if).expect("add clsact");
        }
        let p: &mut SchedClassifier = self
            .server_lab
            .program_mut(prog::COUNT_SYNACK)
            .unwrap()
            .try_into()
            .unwrap();
        p.attach(&self.server_if, TcAttachType::Egress)
            .expect("attach lab_count_synack");
    }

    /// Deletes the veth pair and makes it again under the same names, as an admin re-creating an
    /// interface would: whatever was attached to the old one is gone.
    pub fn recreate_wire(&mut self) {
        self.server.exec(&["ip", "link", "del", &self.server_if]);
        self.wire();
    }

    /// SYN-ACKs the server's own stack sent (not those from XDP).
    pub fn kernel_synacks(&self) -> u64 {
        let m = self.server_lab.map(map::SYNACKS).unwrap();
        let a: Array<&MapData, u64> = Array::try_from(m).unwrap();
        a.get(&0, 0).unwrap()
    }

    /// Attaches `lab_count_tc` to the server's TC ingress after every program already there
    /// (the shield's): it counts the TCP segments the chain leaves to it.
    pub fn count_tc_after_shield(&mut self) {
        let _in = self.server.enter();
        let p: &mut SchedClassifier = self
            .server_lab
            .program_mut(prog::COUNT_TC)
            .unwrap()
            .try_into()
            .unwrap();
        p.load().expect("load lab_count_tc");
        p.attach_with_options(
            &self.server_if,
            TcAttachType::Ingress,
            TcAttachOptions::TcxOrder(LinkOrder::default()),
        )
        .expect("attach lab_count_tc after the shield");
    }

    /// TCP segments `lab_count_tc` saw.
    pub fn tc_seen(&self) -> u64 {
        crate::lab_counter(&self.server_lab, LabCounter::TcSeen)
    }

    /// Drops the client's next `n` bare ACKs to `port` (a lost handshake ACK).
    pub fn drop_next_acks(&mut self, n: u32, port: u16) {
        if self
            .client_lab
            .program(prog::DROP_ACK)
            .unwrap()
            .fd()
            .is_err()
        {
            let _in = self.client.enter();
            attach_tc(
                &mut self.client_lab,
                prog::DROP_ACK,
                &self.client_if,
                TcAttachType::Egress,
            );
        }
        let m = self.client_lab.map_mut(map::DROP).unwrap();
        let mut a: Array<&mut MapData, u32> = Array::try_from(m).unwrap();
        a.set(drop_ack::PORT, port as u32, 0).unwrap();
        a.set(drop_ack::LEFT, n, 0).unwrap();
    }

    /// How many bare ACKs `drop_next_acks` has dropped so far.
    pub fn dropped_acks(&self) -> u32 {
        let m = self.client_lab.map(map::DROP).unwrap();
        let a: Array<&MapData, u32> = Array::try_from(m).unwrap();
        a.get(&drop_ack::DROPPED, 0).unwrap()
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}
