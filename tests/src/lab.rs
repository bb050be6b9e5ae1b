//! A two-host lab: server and client namespaces joined by a veth pair, the client's TX checksum
//! offload on as veth and containers have it (its segments carry partial sums), and a pass
//! program on the client's veth so that frames the server's XDP sends back with XDP_TX are
//! received.

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream},
    sync::mpsc::Receiver,
    time::Duration,
};

use aya::{
    Ebpf,
    maps::{Array, MapData},
    programs::{LinkOrder, SchedClassifier, TcAttachType, Xdp, XdpMode, tc::TcAttachOptions},
};

use syncookie_common::lab::{LabCounter, drop_ack, map, prog, vlan};

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

    /// What is left on the server's TC ingress once the shield is gone: TCX programs (6.6+:
    /// the shield's link; no qdisc at all), or BPF filters on the clsact qdisc before 6.6 (the
    /// lab's own egress programs need that qdisc there). `tc` is the tc binary to run.
    pub fn tc_ingress_left(&self, tc: &str) -> Vec<String> {
        let mut left = Vec::new();
        if tcx() {
            let qdisc = self
                .server
                .exec(&[tc, "qdisc", "show", "dev", &self.server_if]);
            if qdisc.contains("clsact") || qdisc.contains("ingress") {
                left.push(format!("qdisc: {}", qdisc.trim()));
            }
            let _in = self.server.enter();
            match SchedClassifier::query_tcx(&self.server_if, TcAttachType::Ingress) {
                Ok((_, progs)) if progs.is_empty() => {}
                Ok((_, progs)) => left.push(format!("{} TCX ingress programs", progs.len())),
                Err(e) => left.push(format!("cannot query TCX ingress: {e}")),
            }
        } else {
            let filters =
                self.server
                    .exec(&[tc, "filter", "show", "dev", &self.server_if, "ingress"]);
            if filters.contains("bpf") {
                left.push(format!("TC ingress filters: {}", filters.trim()));
            }
        }
        left
    }

    /// Frames lost on the wire from the client to the server: the client veth's `tx_dropped`
    /// (the server's ring was full) and the server's `rx_dropped`. Exact counts after a raw
    /// burst subtract them.
    pub fn wire_drops(&self) -> u64 {
        let stat = |ns: &Netns, iface: &str, dir: &str| -> u64 {
            let j = ns.exec(&["ip", "-s", "-j", "link", "show", "dev", iface]);
            let v: serde_json::Value = serde_json::from_str(&j).expect("ip -j link");
            v[0]["stats64"][dir]["dropped"]
                .as_u64()
                .unwrap_or_else(|| panic!("no {dir} dropped for {iface}: {j}"))
        };
        stat(&self.client, &self.client_if, "tx") + stat(&self.server, &self.server_if, "rx")
    }

    /// TCP counters of the server's namespace (`/proc/net/snmp`'s `Tcp:` lines: `InSegs`,
    /// `OutRsts`, `PassiveOpens`...).
    pub fn tcp_mib(&self, name: &str) -> u64 {
        let snmp = self.server.exec(&["cat", "/proc/net/snmp"]);
        let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
        let (names, values) = (tcp.next().unwrap(), tcp.next().unwrap());
        let i = names
            .split_whitespace()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no Tcp {name} in /proc/net/snmp"));
        values.split_whitespace().nth(i).unwrap().parse().unwrap()
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

    /// Makes the veth a VLAN trunk (this kernel has no VLAN devices): both ends put the tags
    /// into every frame they send (`lab_vlan_push`, TC egress) and take them off what they
    /// receive (`lab_vlan_pop`, first on TC ingress, before the shield's program). `inner` 0:
    /// one 802.1Q tag `outer`; otherwise 802.1ad `outer` around 802.1Q `inner`. Neighbours are
    /// made static (ARP cannot be tagged this way).
    pub fn trunk(&mut self, outer: u16, inner: u16) {
        let macs = [
            crate::flood::mac(&self.server, &self.server_if),
            crate::flood::mac(&self.client, &self.client_if),
        ];
        let sides = [
            (
                &mut self.server_lab,
                &self.server,
                &self.server_if,
                macs[1],
                self.client_ip,
                self.client_ip6,
            ),
            (
                &mut self.client_lab,
                &self.client,
                &self.client_if,
                macs[0],
                self.server_ip,
                self.server_ip6,
            ),
        ];
        for (ebpf, ns, ifc, peer_mac, peer_ip, peer_ip6) in sides {
            let mac = syncookie::host::local::fmt_mac(&peer_mac);
            for ip in [peer_ip.to_string(), peer_ip6.to_string()] {
                ns.exec(&[
                    "ip",
                    "neigh",
                    "replace",
                    &ip,
                    "lladdr",
                    &mac,
                    "dev",
                    ifc,
                    "nud",
                    "permanent",
                ]);
            }
            let mut m: Array<&mut MapData, u32> =
                Array::try_from(ebpf.map_mut(map::VLAN).unwrap()).unwrap();
            m.set(vlan::OUTER, u32::from(outer), 0).unwrap();
            m.set(vlan::INNER, u32::from(inner), 0).unwrap();
            let _in = ns.enter();
            for (name, at, order) in [
                (prog::VLAN_PUSH, TcAttachType::Egress, LinkOrder::default()),
                (prog::VLAN_POP, TcAttachType::Ingress, LinkOrder::first()),
            ] {
                let p: &mut SchedClassifier = ebpf.program_mut(name).unwrap().try_into().unwrap();
                p.load().unwrap_or_else(|e| panic!("load {name}: {e}"));
                p.attach_with_options(ifc, at, TcAttachOptions::TcxOrder(order))
                    .unwrap_or_else(|e| panic!("attach {name}: {e}"));
            }
        }
    }

    /// An echo server on `ip`:`port` in the server's namespace (a thread per connection).
    pub fn echo_server(&self, ip: IpAddr, port: u16) -> SocketAddr {
        self.echo_server_reporting(ip, port).0
    }

    /// [`Self::echo_server`] that also sends the server side's TCP_INFO options
    /// (`TCPI_OPT_*`) of every connection it accepts.
    pub fn echo_server_reporting(&self, ip: IpAddr, port: u16) -> (SocketAddr, Receiver<u8>) {
        let l = {
            let _in = self.server.enter();
            TcpListener::bind((ip, port)).unwrap_or_else(|e| panic!("bind {ip}:{port}: {e}"))
        };
        let addr = l.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        crate::packets::serve_echo(l, move |s| {
            let _ = tx.send(crate::packets::tcp_info(s).tcpi_options);
        });
        (addr, rx)
    }

    /// Connects from the client's namespace to `addr` and has `payload` echoed back.
    pub fn echo(&self, addr: SocketAddr, payload: &[u8]) -> std::io::Result<()> {
        self.echo_stream(addr, payload).map(drop)
    }

    /// [`Self::echo`], keeping the connection (for its TCP_INFO).
    pub fn echo_stream(&self, addr: SocketAddr, payload: &[u8]) -> std::io::Result<TcpStream> {
        let _in = self.client.enter();
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(payload)?;
        let mut back = vec![0u8; payload.len()];
        s.read_exact(&mut back)?;
        if back != payload {
            return Err(std::io::Error::other("echoed bytes differ"));
        }
        Ok(s)
    }

    /// The counters of the shield `syncookie run` keeps on the server's veth.
    pub fn counters(&self) -> syncookie::observe::counters::Snapshot {
        let pins = crate::daemon::pins(&self.server, &self.server_if);
        syncookie::observe::counters::read(&pins, &self.server_if).expect("counters")
    }

    /// `syncookie rotate` on the server's veth from another process, as an admin would.
    pub fn rotate(&self) {
        let out =
            crate::daemon::syncookie_in(&self.server, &["rotate", "--iface", &self.server_if]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Connects to `addr` with the handshake's bare ACK dropped, runs `between` (only the
    /// SYN-ACK seen so far), then sends data: its segment carries the same ACK number and must
    /// complete the handshake. Returns whether the echo came back.
    pub fn connect_with_lost_ack(&mut self, addr: SocketAddr, between: impl FnOnce(&Lab)) -> bool {
        let before = self.dropped_acks();
        self.drop_next_acks(1, addr.port());
        let _in = self.client.enter();
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        assert_eq!(
            self.dropped_acks(),
            before + 1,
            "the bare ACK was not dropped"
        );
        between(self);
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(b"first data after a lost ACK").unwrap();
        let mut back = [0u8; 27];
        s.read_exact(&mut back).is_ok() && &back == b"first data after a lost ACK"
    }

    /// Frames that reached the client with the trunk's tags, and the SYN-ACKs among them.
    pub fn client_tagged(&self) -> (u64, u64) {
        (
            crate::lab_counter(&self.client_lab, LabCounter::VlanTagged),
            crate::lab_counter(&self.client_lab, LabCounter::VlanSynack),
        )
    }

    /// Frames that reached the server with the trunk's tags.
    pub fn server_tagged(&self) -> u64 {
        crate::lab_counter(&self.server_lab, LabCounter::VlanTagged)
    }

    /// The shield's SYN-ACKs the daemon sent again (through a packet socket) since the lab
    /// began.
    pub fn resent_synacks(&self) -> u64 {
        crate::lab_counter(&self.server_lab, LabCounter::ResentSynack)
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
