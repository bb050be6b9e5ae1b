//! `cargo xtask demo`: the shield in front of a small server in a two-namespace lab. Real
//! clients connect while a short spoofed-SYN flood (bounded in count and time, sent only inside
//! the lab) hits the server; a few forged ACKs follow. Prints what happened and removes
//! everything it created (namespaces, veth, programs, pins) when it ends.

use std::{
    io::{Read, Write},
    net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    thread,
    time::{Duration, Instant},
};

use syncookie::observe::counters;
use syncookie_common::stats::Counter;
use syncookie_tests::{
    daemon::{Daemon, pins},
    flood::Flood,
    lab::Lab,
    packets::send_raw_tcp,
};

const PORT: u16 = 8080;
const FLOOD_SYNS: u64 = 300_000;
const FLOOD_TIME: Duration = Duration::from_secs(3);
/// 0: as fast as the generator goes (what the server's veth ring cannot take is lost there).
const FLOOD_RATE: u64 = 0;
const FORGED_ACKS: u16 = 100;
/// Long enough for two SYN retransmits (1 s, then 2 s more): a SYN lost in the flood-filled
/// veth ring is retried, as a real client's would be.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("demo: needs root (network namespaces and BPF)");
        std::process::exit(1);
    }
    let lab = Lab::new();
    println!(
        "lab: server {} ({}), client {} ({})",
        lab.server_ip, lab.server.name, lab.client_ip, lab.client.name
    );
    let listener = {
        let _in = lab.server.enter();
        TcpListener::bind((lab.server_ip, PORT)).expect("bind")
    };
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || serve(listener));
    let daemon = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    println!(
        "shield attached to {} protecting port {PORT}",
        lab.server_if
    );

    let flooding = AtomicBool::new(true);
    let (sent, (ok, failed, lat)) = thread::scope(|s| {
        let flood = s.spawn(|| {
            let f = Flood::new(&lab, PORT);
            let _in = lab.client.enter();
            let n = f.run(FLOOD_SYNS, FLOOD_RATE, FLOOD_TIME);
            flooding.store(false, Ordering::Relaxed);
            n
        });
        let clients = s.spawn(|| clients(&lab, addr, &flooding));
        (flood.join().unwrap(), clients.join().unwrap())
    });
    forged_acks(&lab, addr);

    // Every forged ACK is judged before the counters are read: each one is reset by the kernel
    // (within the reset budget) or dropped beyond it. Polled, not slept on.
    let pins = pins(&lab.server, &lab.server_if);
    let judged = |c: &counters::Snapshot| {
        c.get(Counter::AckReset) + c.get(Counter::AckBadCookie) + c.get(Counter::AckExpired)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let c = loop {
        let c = counters::read(&pins, &lab.server_if).expect("counters");
        if judged(&c) >= u64::from(FORGED_ACKS) || Instant::now() > deadline {
            break c;
        }
        thread::sleep(Duration::from_millis(50));
    };
    println!(
        "\nspoofed SYNs offered: {sent} in at most {FLOOD_TIME:?}; {} reached the server (the rest \
         overflowed its veth ring)",
        c.get(Counter::SynSeen)
            .saturating_sub(u64::from(ok + failed))
    );
    println!(
        "forged ACKs sent:     {FORGED_ACKS}; reset by the kernel (within the budget) {}, dropped {}",
        c.get(Counter::AckReset),
        c.get(Counter::AckBadCookie) + c.get(Counter::AckExpired)
    );
    println!("real clients during the flood: {ok} connected and echoed, {failed} failed");
    if !lat.is_empty() {
        println!(
            "connect latency: p50 {:?}  p99 {:?}",
            pct(&lat, 50),
            pct(&lat, 99)
        );
    }
    let kernel_synacks = lab.kernel_synacks();
    println!("SYN-ACKs sent by the server's own stack: {kernel_synacks}");
    let accepted = ACCEPTED.load(Ordering::Relaxed);
    println!("connections the server accepted: {accepted}");
    println!("\ncounters:\n{}", c.table());
    // What the shield promises: every real client connects, no forged ACK reaches a socket
    // (the server accepted exactly the real clients' connections), each forged ACK is reset or
    // dropped, the kernel itself answers no SYN, and the SYN-ACKs and handoffs came from us.
    let mut broken = Vec::new();
    if failed != 0 {
        broken.push(format!("{failed} real clients failed"));
    }
    if accepted != u64::from(ok) {
        broken.push(format!(
            "the server accepted {accepted} connections for {ok} real clients"
        ));
    }
    if judged(&c) != u64::from(FORGED_ACKS) {
        broken.push(format!(
            "{} of {FORGED_ACKS} forged ACKs were reset or dropped",
            judged(&c)
        ));
    }
    if kernel_synacks != 0 {
        broken.push(format!("the kernel sent {kernel_synacks} SYN-ACKs"));
    }
    // At least: a client that gave up under the flood after its handshake counts a handoff.
    if c.get(Counter::SynackSent) < u64::from(ok) || c.get(Counter::HandoffOk) < u64::from(ok) {
        broken.push(format!(
            "{} SYN-ACKs and {} handoffs for {ok} clients",
            c.get(Counter::SynackSent),
            c.get(Counter::HandoffOk)
        ));
    }
    drop(daemon);
    drop(lab);
    println!("removed the lab: namespaces, veth pair, programs and pins");
    if !broken.is_empty() {
        eprintln!("demo: {}", broken.join("; "));
        std::process::exit(1);
    }
}

/// Connections the server accepted.
static ACCEPTED: AtomicU64 = AtomicU64::new(0);

fn serve(l: TcpListener) {
    for s in l.incoming() {
        let Ok(mut s) = s else { break };
        ACCEPTED.fetch_add(1, Ordering::Relaxed);
        thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 || s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
}

/// Real clients, one after another while the flood lasts (at least 50).
fn clients(lab: &Lab, addr: SocketAddr, flooding: &AtomicBool) -> (u32, u32, Vec<Duration>) {
    let _in = lab.client.enter();
    let (mut ok, mut failed, mut lat) = (0, 0, Vec::new());
    while flooding.load(Ordering::Relaxed) || ok + failed < 50 {
        let t = Instant::now();
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(mut s) => {
                lat.push(t.elapsed());
                let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                let mut back = [0u8; 5];
                if s.write_all(b"hello").is_ok() && s.read_exact(&mut back).is_ok() {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
            Err(_) => failed += 1,
        }
    }
    lat.sort();
    (ok, failed, lat)
}

fn forged_acks(lab: &Lab, addr: SocketAddr) {
    let SocketAddr::V4(dst) = addr else { return };
    let _in = lab.client.enter();
    for i in 0..FORGED_ACKS {
        let src = SocketAddrV4::new(lab.client_ip, 50000 + i);
        send_raw_tcp(src, dst, rand::random(), rand::random(), false);
    }
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}
