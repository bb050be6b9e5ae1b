//! Fleet keys: two shields (two hosts behind ECMP or anycast: two network namespaces) sharing a
//! master key. The SYN-ACK comes from one, the ACK goes to the other, and the connection is made
//! there. Each namespace's `lo` stands in for the shared address, 127.0.0.1.

use std::{
    net::{Ipv4Addr, SocketAddrV4, TcpListener},
    os::fd::OwnedFd,
    os::unix::fs::PermissionsExt,
    time::{Duration, Instant},
};

use etherparse::{PacketBuilder, SlicedPacket, TcpOptionElement, TransportSlice};
use syncookie::observe::counters;
use syncookie_common::stats::Counter;
use syncookie_tests::{
    daemon::{Daemon, pins, syncookie_in},
    netns::{Netns, unique},
    packets::{capture, captured_synack, send_raw_ip},
    require_root,
};

const PORT: u16 = 8080;
const SERVER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), 40123);
const CLIENT_ISN: u32 = 0x1000_0000;
const CLIENT_TSVAL: u32 = 777;

/// The SYN-ACK to the client's port seen on `fd`: (seq, TSval).
fn synack(fd: &OwnedFd) -> (u32, u32) {
    let f = captured_synack(fd, PORT, CLIENT.port(), Duration::from_secs(2));
    let p = SlicedPacket::from_ethernet(&f).expect("a parsable SYN-ACK");
    let Some(TransportSlice::Tcp(t)) = p.transport else {
        panic!("not TCP")
    };
    let ts = t.options_iterator().find_map(|o| match o {
        Ok(TcpOptionElement::Timestamp(v, _)) => Some(v),
        _ => None,
    });
    (t.sequence_number(), ts.expect("timestamps in the SYN-ACK"))
}

struct Host {
    ns: Netns,
    _listener: TcpListener,
    _daemon: Daemon,
}

fn host(key: &std::path::Path) -> Host {
    let ns = Netns::new(&unique("fl"));
    ns.exec(&["ip", "link", "set", "lo", "up"]);
    ns.sysctl("net.ipv4.tcp_syncookies", "1");
    let listener = {
        let _in = ns.enter();
        TcpListener::bind((SERVER, PORT)).expect("bind")
    };
    let daemon = Daemon::start(
        &ns,
        "lo",
        &[
            "--ports",
            &PORT.to_string(),
            "--xdp-mode",
            "skb",
            "--master-key-file",
            key.to_str().unwrap(),
        ],
    );
    Host {
        ns,
        _listener: listener,
        _daemon: daemon,
    }
}

fn stats(h: &Host) -> counters::Snapshot {
    counters::read(&pins(&h.ns, "lo"), "lo").expect("counters")
}

#[test]
fn a_cookie_from_one_host_opens_a_connection_on_the_other() {
    require_root!();
    let dir = std::env::temp_dir().join(unique("fleet"));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("master.key");
    std::fs::write(&key, rand::random::<[u8; 32]>()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (a, b) = (host(&key), host(&key));

    // The SYN to host A; its shield answers.
    let (isn, our_tsval) = {
        let _in = a.ns.enter();
        let cap = capture("lo");
        let syn = PacketBuilder::ipv4(CLIENT.ip().octets(), SERVER.octets(), 64)
            .tcp(CLIENT.port(), PORT, CLIENT_ISN, 64240)
            .syn()
            .options(&[
                TcpOptionElement::MaximumSegmentSize(1460),
                TcpOptionElement::SelectiveAcknowledgementPermitted,
                TcpOptionElement::Timestamp(CLIENT_TSVAL, 0),
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(7),
            ])
            .unwrap();
        let mut p = Vec::new();
        syn.write(&mut p, &[]).unwrap();
        send_raw_ip(&p, SERVER.into());
        synack(&cap)
    };
    assert_eq!(stats(&a).get(Counter::SynackSent), 1);

    // Its ACK reaches host B: B's shield checks the cookie with the same fleet key and hands
    // the connection to B's listener.
    {
        let _in = b.ns.enter();
        let ack = PacketBuilder::ipv4(CLIENT.ip().octets(), SERVER.octets(), 64)
            .tcp(CLIENT.port(), PORT, CLIENT_ISN + 1, 64240)
            .ack(isn.wrapping_add(1))
            .options(&[
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::Timestamp(CLIENT_TSVAL + 1, our_tsval),
            ])
            .unwrap();
        let mut p = Vec::new();
        ack.write(&mut p, &[]).unwrap();
        send_raw_ip(&p, SERVER.into());
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while stats(&b).get(Counter::HandoffOk) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let c = stats(&b);
    assert_eq!(c.get(Counter::AckValid), 1, "{}", c.table());
    assert_eq!(c.get(Counter::HandoffOk), 1, "{}", c.table());

    // Fleet keys are not rotated by hand.
    let out = syncookie_in(&b.ns, &["rotate", "--iface", "lo"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fleet keys"));
    std::fs::remove_dir_all(&dir).unwrap();
}
