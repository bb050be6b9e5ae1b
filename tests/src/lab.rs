//! A two-host lab: server and client namespaces joined by a veth pair, the client's TX checksum
//! offload off (XDP sees full checksums), and a pass program on the client's veth so that
//! frames the server's XDP sends back with XDP_TX are received.

use std::net::Ipv4Addr;

use aya::{
    Ebpf,
    programs::{Xdp, XdpMode},
};

use crate::netns::{Netns, sh, unique};

pub struct Lab {
    pub server: Netns,
    pub client: Netns,
    pub server_if: String,
    pub client_if: String,
    pub server_ip: Ipv4Addr,
    pub client_ip: Ipv4Addr,
    /// The client-side lab programs (kept loaded and attached while the lab lives).
    pub client_lab: Ebpf,
}

impl Lab {
    pub fn new() -> Self {
        let base = unique("sc");
        let server = Netns::new(&format!("{base}s"));
        let client = Netns::new(&format!("{base}c"));
        let (server_if, client_if) = (format!("{base}s"), format!("{base}c"));
        sh(&[
            "ip",
            "link",
            "add",
            &server_if,
            "netns",
            &server.name,
            "type",
            "veth",
            "peer",
            "name",
            &client_if,
            "netns",
            &client.name,
        ]);
        // 10.<a>.<b>.0/24, unique per lab so nothing collides even across namespaces.
        let n = std::process::id()
            .wrapping_mul(31)
            .wrapping_add(base.len() as u32);
        let net = [10u8, (n >> 8) as u8 | 64, n as u8];
        let server_ip = Ipv4Addr::new(net[0], net[1], net[2], 1);
        let client_ip = Ipv4Addr::new(net[0], net[1], net[2], 2);
        server.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{server_ip}/24"),
            "dev",
            &server_if,
        ]);
        client.exec(&[
            "ip",
            "addr",
            "add",
            &format!("{client_ip}/24"),
            "dev",
            &client_if,
        ]);
        server.exec(&["ip", "link", "set", &server_if, "up"]);
        client.exec(&["ip", "link", "set", &client_if, "up"]);
        client.exec(&["ethtool", "-K", &client_if, "tx", "off"]);
        for ns in [&server, &client] {
            ns.sysctl("net.ipv4.tcp_syncookies", "1");
        }
        let client_lab = {
            let _in = client.enter();
            let mut ebpf = Ebpf::load(syncookie::LAB_OBJECT).expect("lab object");
            let p: &mut Xdp = ebpf.program_mut("lab_pass").unwrap().try_into().unwrap();
            p.load().expect("load lab_pass");
            p.attach(&client_if, XdpMode::Driver)
                .expect("attach lab_pass");
            ebpf
        };
        Self {
            server,
            client,
            server_if,
            client_if,
            server_ip,
            client_ip,
            client_lab,
        }
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}
