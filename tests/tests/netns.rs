//! End to end in network namespaces: real clients, a real server, the shield in between.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    thread,
    time::Duration,
};

use syncookie::{
    counters,
    pins::{DEFAULT_ROOT, PinDir},
};
use syncookie_common::stats::Counter;
use syncookie_tests::{
    daemon::Daemon,
    lab::Lab,
    packets::{TCPI_OPT_SACK, TCPI_OPT_TIMESTAMPS, TCPI_OPT_WSCALE, tcp_info},
    require_root,
};

const PORT: u16 = 8080;

/// An echo server in the lab's server namespace; returns its address and the server-side
/// TCP_INFO options of every accepted connection through a channel.
fn echo_server(lab: &Lab) -> (SocketAddr, std::sync::mpsc::Receiver<u8>) {
    let l = {
        let _in = lab.server.enter();
        TcpListener::bind((lab.server_ip, PORT)).expect("bind")
    };
    let addr = l.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            let _ = tx.send(tcp_info(&s).tcpi_options);
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, rx)
}

fn stats(lab: &Lab) -> counters::Snapshot {
    counters::read(
        &PinDir::new(DEFAULT_ROOT.as_ref(), &lab.server_if),
        &lab.server_if,
    )
    .expect("counters")
}

/// Connects from the client namespace, sends `payload`, reads the echo.
fn exchange(lab: &Lab, addr: SocketAddr, payload: &[u8]) -> TcpStream {
    let _in = lab.client.enter();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(payload).unwrap();
    let mut back = vec![0u8; payload.len()];
    s.read_exact(&mut back).expect("echo");
    assert_eq!(back, payload);
    s
}

#[test]
fn hundred_connections_through_cookies() {
    require_root!();
    let lab = Lab::new();
    let (addr, accepted) = echo_server(&lab);
    let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    for i in 0..100u32 {
        let payload: Vec<u8> = (0..1000 + i).map(|b| (b * 7 + i) as u8).collect();
        let s = exchange(&lab, addr, &payload);
        let o = tcp_info(&s).tcpi_options;
        let want = TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE;
        assert_eq!(o & want, want, "client options {o:#x}");
        let so = accepted.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(so & want, want, "server options {so:#x}");
    }
    let c = stats(&lab);
    eprintln!("{}", c.table());
    assert_eq!(c.get(Counter::SynackSent), 100);
    assert_eq!(c.get(Counter::HandoffOk), 100);
    assert_eq!(c.get(Counter::AckValid), 100);
    assert_eq!(c.get(Counter::AckBadCookie), 0);
    assert_eq!(c.get(Counter::HandoffFailed), 0);
}
