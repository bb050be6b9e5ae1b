//! A client that sends its first data right behind its ACK (HTTP, TLS): when both reach the
//! server in one receive batch, XDP and TC see both before the stack has made the connection
//! from the first, and both carry a valid cookie. The first is handed off; the second must go
//! to the socket the first makes. Handed off as well, it made the kernel drop it, and the
//! client waited for its retransmission timeout (200 ms and more: ab's slowest requests).
//!
//! The batch is made, not hoped for: the server's veth polls in a NAPI thread pinned to one
//! CPU, and a real-time thread on that CPU sends both segments before that thread may run.

use std::{
    io::Read,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener},
    time::{Duration, Instant},
};

use etherparse::{IpHeaders, PacketBuilder, PacketBuilderStep, SlicedPacket, TransportSlice};
use syncookie_common::stats::Counter;
use syncookie_tests::{
    daemon::Daemon,
    lab::Lab,
    netns::{napi_threads, pin_thread, sh},
    packets::{capture, captured_synack, send_raw_ip},
    require_root,
};

const PORT: u16 = 8080;
const CLIENT_PORT: u16 = 41000;
const ISN: u32 = 0x2000_0000;
const REQUEST: &[u8] = b"GET / HTTP/1.0\r\n\r\n";
/// The CPU the server's NAPI thread and the sender share.
const CPU: usize = 0;

fn pin(tid: i32) {
    pin_thread(tid, CPU).unwrap_or_else(|e| panic!("pinning thread {tid} to CPU {CPU}: {e}"));
}

/// One segment from `client` to `server`, IP header included.
fn segment(
    client: IpAddr,
    server: IpAddr,
    build: impl FnOnce(PacketBuilderStep<IpHeaders>) -> Vec<u8>,
) -> Vec<u8> {
    let b = match (client, server) {
        (IpAddr::V4(c), IpAddr::V4(s)) => PacketBuilder::ipv4(c.octets(), s.octets(), 64),
        (IpAddr::V6(c), IpAddr::V6(s)) => PacketBuilder::ipv6(c.octets(), s.octets(), 64),
        _ => unreachable!(),
    };
    build(b)
}

/// Sends `frames` from the client namespace on a real-time thread pinned to [`CPU`]: the
/// server's NAPI thread (an ordinary one, pinned there too) runs only once all are queued.
fn send_in_one_batch(lab: &Lab, frames: Vec<Vec<u8>>, dst: IpAddr) {
    std::thread::scope(|s| {
        s.spawn(|| {
            let _in = lab.client.enter();
            pin(0);
            let fifo = libc::sched_param { sched_priority: 10 };
            // SAFETY: sched_setscheduler on the calling thread with a valid parameter.
            let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &fifo) };
            assert_eq!(r, 0, "SCHED_FIFO: {}", std::io::Error::last_os_error());
            for f in &frames {
                send_raw_ip(f, dst);
            }
        });
    });
}

fn ack_then_data_in_one_batch(addrs: fn(&Lab) -> (IpAddr, IpAddr)) {
    let lab = Lab::new();
    let (server_ip, client_ip) = addrs(&lab);
    let listener = {
        let _in = lab.server.enter();
        TcpListener::bind(SocketAddr::new(server_ip, PORT)).expect("bind")
    };
    listener.set_nonblocking(true).unwrap();
    let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    // `ip netns exec` mounts the namespace's own /sys.
    sh(&[
        "ip",
        "netns",
        "exec",
        &lab.server.name,
        "sh",
        "-c",
        &format!("echo 1 > /sys/class/net/{}/threaded", lab.server_if),
    ]);
    let napi = napi_threads(&lab.server_if);
    assert!(!napi.is_empty(), "no NAPI thread for {}", lab.server_if);
    for t in napi {
        pin(t);
    }

    // The SYN, from an address the client's kernel does not own (it would reset the
    // SYN-ACK); the shield answers it with XDP_TX, seen on the client's veth.
    let cookie = {
        let _in = lab.client.enter();
        let cap = capture(&lab.client_if);
        let syn = segment(client_ip, server_ip, |b| {
            let mut p = Vec::new();
            b.tcp(CLIENT_PORT, PORT, ISN, 64240)
                .syn()
                .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1400)])
                .unwrap()
                .write(&mut p, &[])
                .unwrap();
            p
        });
        send_raw_ip(&syn, server_ip);
        let f = captured_synack(&cap, PORT, CLIENT_PORT, Duration::from_secs(2));
        let p = SlicedPacket::from_ethernet(&f).expect("a parsable SYN-ACK");
        let Some(TransportSlice::Tcp(t)) = p.transport else {
            panic!("not TCP")
        };
        t.sequence_number()
    };

    let ack = segment(client_ip, server_ip, |b| {
        let mut p = Vec::new();
        b.tcp(CLIENT_PORT, PORT, ISN + 1, 502)
            .ack(cookie.wrapping_add(1))
            .write(&mut p, &[])
            .unwrap();
        p
    });
    let data = segment(client_ip, server_ip, |b| {
        let mut p = Vec::new();
        b.tcp(CLIENT_PORT, PORT, ISN + 1, 502)
            .ack(cookie.wrapping_add(1))
            .psh()
            .write(&mut p, REQUEST)
            .unwrap();
        p
    });
    send_in_one_batch(&lab, vec![ack, data], server_ip);

    // The connection, and the request in it: nothing sends it again.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut s = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("no connection within 3 s: {e}\n{}", lab.counters().table()),
        }
    };
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut got = vec![0u8; REQUEST.len()];
    let read = s.read_exact(&mut got);
    let c = lab.counters();
    // Both segments were judged as handshake segments, so they did share a batch: otherwise
    // the second would have found the connection (ack_passed_socket) and tested nothing.
    assert_eq!(
        c.get(Counter::HandoffOk) + c.get(Counter::HandoffFollowed),
        2,
        "both segments reached TC before the connection existed\n{}",
        c.table()
    );
    assert!(
        read.is_ok(),
        "the data segment was lost ({read:?}): a client waits 200 ms or more to send it again\n{}",
        c.table()
    );
    assert_eq!(got, REQUEST);
    assert_eq!(c.get(Counter::HandoffOk), 1, "{}", c.table());
    assert_eq!(c.get(Counter::HandoffFollowed), 1, "{}", c.table());
}

/// The server's address and one in its subnet that nobody owns, for the client.
fn v4(l: &Lab) -> (IpAddr, IpAddr) {
    let [a, b, c, _] = l.server_ip.octets();
    (l.server_ip.into(), Ipv4Addr::new(a, b, c, 9).into())
}

fn v6(l: &Lab) -> (IpAddr, IpAddr) {
    let mut s = l.server_ip6.segments();
    s[7] = 9;
    (l.server_ip6.into(), Ipv6Addr::from(s).into())
}

#[test]
fn ack_and_first_data_in_one_batch_ipv4() {
    require_root!();
    ack_then_data_in_one_batch(v4);
}

#[test]
fn ack_and_first_data_in_one_batch_ipv6() {
    require_root!();
    ack_then_data_in_one_batch(v6);
}
