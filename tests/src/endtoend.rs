//! End-to-end checks the IPv4 (tests/netns.rs) and IPv6 (tests/ipv6.rs) tests both make, on a
//! lab whose shield is running and whose echo server listens at `addr`.

use std::{
    net::{IpAddr, SocketAddr},
    sync::mpsc::Receiver,
    thread,
    time::{Duration, Instant},
};

use syncookie_common::stats::Counter;

use crate::{
    lab::Lab,
    packets::{TCPI_OPT_SACK, TCPI_OPT_TIMESTAMPS, TCPI_OPT_WSCALE, send_raw_tcp, tcp_info},
};

/// 100 connections with data both ways through cookies: window scaling, SACK and timestamps
/// in TCP_INFO on both ends (`accepted`: the server side's, from
/// `Lab::echo_server_reporting`), every SYN-ACK ours, every handoff made.
pub fn hundred_connections(lab: &Lab, addr: SocketAddr, accepted: &Receiver<u8>) {
    for i in 0..100u32 {
        let payload: Vec<u8> = (0..1000 + i).map(|b| (b * 7 + i) as u8).collect();
        let s = lab.echo_stream(addr, &payload).expect("echo");
        let o = tcp_info(&s).tcpi_options;
        let want = TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE;
        assert_eq!(o & want, want, "client options {o:#x}");
        let so = accepted.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(so & want, want, "server options {so:#x}");
    }
    let c = lab.counters();
    assert_eq!(
        lab.kernel_synacks(),
        0,
        "the server's own stack sent SYN-ACKs"
    );
    assert_eq!(c.get(Counter::SynackSent), 100, "{}", c.table());
    // Exactly the connections the server accepted: 100, and no socket beyond them.
    let extra = accepted.try_iter().count();
    assert_eq!(
        extra, 0,
        "{extra} sockets accepted beyond the 100 connections"
    );
    handoffs_fit(&c, 100, Handoffs::OnePerConnection).unwrap();
    assert_eq!(c.get(Counter::AckBadCookie), 0);
    assert_eq!(c.get(Counter::HandoffFailed), 0);
}

/// What `handoff_ok` may be for the connections a server accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handoffs {
    /// Native XDP: TC hands each connection off once; a first data segment that reached it in
    /// the same receive batch as its ACK (before TCP made the connection) is
    /// `handoff_followed`, passed to the socket the ACK makes.
    OnePerConnection,
    /// Generic XDP: frames go through the sending CPU's backlog, so a connection's ACK and
    /// first data can be received on two CPUs at once; TC's memory of a handoff is per CPU (on
    /// one CPU the stack takes the segments in order; across CPUs a segment passed unassigned
    /// could reach the listener before the connection exists and be reset), so there both may
    /// be handed off and the kernel drops the second, as with its own cookies when two CPUs
    /// check one handshake: one or two per connection.
    UpToTwoCpus,
    /// Kernel-cookie mode: XDP counts each cookie segment the kernel's check accepts, a first
    /// data segment in the same receive batch as its ACK too (the kernel then delivers it to
    /// the connection the ACK made): one or two per connection, none `handoff_followed`.
    KernelCookies,
}

/// `handoff_ok` for `connections` connections the server accepted (counted by the test,
/// exactly), as `rule` allows. Every handoff carried a valid cookie, and so did every followed
/// segment: `ack_valid` bounds both.
pub fn handoffs_fit(
    c: &syncookie::observe::counters::Snapshot,
    connections: u64,
    rule: Handoffs,
) -> Result<(), String> {
    let [ok, followed, valid] = [
        Counter::HandoffOk,
        Counter::HandoffFollowed,
        Counter::AckValid,
    ]
    .map(|n| c.get(n));
    handoff_counts_fit(ok, followed, valid, connections, rule)
        .map_err(|e| format!("{e}: {}", c.table()))
}

/// [`handoffs_fit`] on the counts themselves (`handoff_ok`, `handoff_followed`, `ack_valid`).
pub fn handoff_counts_fit(
    ok: u64,
    followed: u64,
    valid: u64,
    connections: u64,
    rule: Handoffs,
) -> Result<(), String> {
    let fits = match rule {
        Handoffs::OnePerConnection => ok == connections && ok + followed <= valid,
        Handoffs::UpToTwoCpus => {
            connections <= ok && ok <= 2 * connections && ok + followed <= valid
        }
        Handoffs::KernelCookies => {
            connections <= ok && ok <= 2 * connections && ok <= valid && followed == 0
        }
    };
    if fits {
        Ok(())
    } else {
        Err(format!(
            "handoff_ok {ok}, handoff_followed {followed}, ack_valid {valid} for {connections} \
             accepted connections ({rule:?})"
        ))
    }
}

/// 50 forged handshake ACKs (random sequence and acknowledgment numbers) from `client` to the
/// listener at `addr`: each is judged (dropped, or within the reset budget left to the kernel
/// to reset), none is handed off, and a real client still connects after them.
pub fn forged_acks_are_judged(lab: &Lab, client: IpAddr, addr: SocketAddr) {
    let forged = 50u16;
    {
        let _in = lab.client.enter();
        for i in 0..forged {
            let src = SocketAddr::new(client, 40000 + i);
            send_raw_tcp(src, addr, rand::random(), rand::random(), false);
        }
    }
    // Let the frames cross the veth.
    let judged = |c: &syncookie::observe::counters::Snapshot| {
        c.get(Counter::AckBadCookie) + c.get(Counter::AckReset)
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while judged(&lab.counters()) < forged as u64 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let c = lab.counters();
    assert_eq!(judged(&c), forged as u64, "{}", c.table());
    assert_eq!(c.get(Counter::HandoffOk), 0, "{}", c.table());
    lab.echo_stream(addr, b"still here").expect("echo");
}
