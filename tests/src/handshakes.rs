//! Handshakes completed from crafted SYNs: each [`SynCase`] goes out of the client's veth as a
//! whole frame (a packet socket), its SYN-ACK is captured there, the third ACK is crafted from
//! it (echoing the SYN-ACK's TSval when timestamps were agreed), and the server's listener
//! accepts the connection, whose TCP_INFO is kept. Several handshakes are in flight at once,
//! each with its own deadlines, so that a SYN nobody answers costs one wait, not one per case.
//!
//! The client's kernel has no socket for these connections: the caller must keep it from
//! resetting them ([`drop_client_resets`]).

use std::{
    io::ErrorKind,
    net::{IpAddr, TcpListener},
    os::fd::{AsRawFd, OwnedFd},
    time::{Duration, Instant},
};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use nix::sys::socket::{self, MsgFlags};

use crate::{
    frames::{Ip6, Segment},
    lab::Lab,
    packets::{capture, tcp_info},
    synspace::{Ends, SynCase},
};

/// Handshakes in flight at once: well below the listener's backlog (128), so that the kernel
/// alone never turns to its own cookies (a full SYN queue) during the run.
const IN_FLIGHT: usize = 16;
/// How long a SYN waits for its SYN-ACK (then it counts as not answered): both answer within
/// a millisecond when they answer at all; the rest is room for a loaded machine.
pub const SYNACK_WAIT: Duration = Duration::from_millis(1500);
/// How long an answered handshake waits for `accept()` after its ACK.
const ACCEPT_WAIT: Duration = Duration::from_secs(3);

/// The accepted socket's TCP_INFO, the fields the handshake decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockInfo {
    /// `TCPI_OPT_*`: timestamps, SACK, window scaling, ECN...
    pub options: u8,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub snd_mss: u32,
    pub rcv_mss: u32,
    pub advmss: u32,
}

/// What became of one SYN.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The first SYN-ACK for it, as captured on the client's veth.
    pub synack: Option<Vec<u8>>,
    /// The connection the listener accepted after our ACK.
    pub socket: Option<SockInfo>,
}

/// Drops every RST the client's namespace sends (nftables), so that its kernel, which has no
/// socket for a raw SYN, does not reset the handshakes the test completes by hand.
pub fn drop_client_resets(lab: &Lab) {
    lab.client.exec(&["nft", "add table inet sc_diff"]);
    lab.client.exec(&[
        "nft",
        "add chain inet sc_diff out { type filter hook output priority 0 ; }",
    ]);
    lab.client
        .exec(&["nft", "add rule inet sc_diff out tcp flags rst drop"]);
}

/// A packet socket on the client's veth, for sending frames and capturing replies.
pub fn client_socket(lab: &Lab) -> OwnedFd {
    let _in = lab.client.enter();
    let fd = capture(&lab.client_if);
    let tv = nix::sys::time::TimeVal::new(0, 2_000);
    socket::setsockopt(&fd, socket::sockopt::ReceiveTimeout, &tv).unwrap();
    socket::setsockopt(&fd, socket::sockopt::RcvBuf, &(4 << 20)).unwrap();
    fd
}

fn send_frame(fd: &OwnedFd, frame: &[u8]) {
    let n = socket::send(fd.as_raw_fd(), frame, MsgFlags::empty()).expect("send a frame");
    assert_eq!(n, frame.len(), "sent part of a frame");
}

/// The third ACK for `case` from `sport`, acknowledging `synack`.
fn third_ack(case: &SynCase, ends: &Ends, sport: u16, dport: u16, synack: &[u8]) -> Vec<u8> {
    let p = SlicedPacket::from_ethernet(synack).expect("a parsable SYN-ACK");
    let Some(TransportSlice::Tcp(t)) = p.transport else {
        panic!("a SYN-ACK without TCP")
    };
    let their_ts = t.options_iterator().find_map(|o| match o {
        Ok(etherparse::TcpOptionElement::Timestamp(v, _)) => Some(v),
        _ => None,
    });
    let mut s = Segment::ack(
        sport,
        dport,
        case.isn.wrapping_add(1),
        t.sequence_number().wrapping_add(1),
    );
    s.src_mac = ends.client_mac;
    s.dst_mac = ends.server_mac;
    if let (Some(ecr), Some(tsval)) = (their_ts, case.tsval()) {
        s.options = vec![
            etherparse::TcpOptionElement::Noop,
            etherparse::TcpOptionElement::Noop,
            etherparse::TcpOptionElement::Timestamp(tsval.wrapping_add(1), ecr),
        ];
    }
    match case.spoofed.unwrap_or(ends.client(case.v6)) {
        IpAddr::V4(src) => {
            s.src = src.octets();
            s.dst = ends.server_ip.octets();
        }
        IpAddr::V6(src) => {
            s.ip6 = Some(Ip6 {
                src: src.octets(),
                dst: ends.server_ip6.octets(),
                ..Ip6::default()
            });
        }
    }
    s.frame()
}

/// The destination port of a SYN-ACK from `dport`, if `frame` is one.
fn synack_to(frame: &[u8], dport: u16) -> Option<u16> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    if !matches!(p.net, Some(NetSlice::Ipv4(_) | NetSlice::Ipv6(_))) {
        return None;
    }
    let Some(TransportSlice::Tcp(t)) = p.transport else {
        return None;
    };
    (t.source_port() == dport && t.syn() && t.ack()).then_some(t.destination_port())
}

fn sock_info(s: &std::net::TcpStream) -> SockInfo {
    let i = tcp_info(s);
    SockInfo {
        options: i.tcpi_options,
        // `__u8 tcpi_snd_wscale : 4, tcpi_rcv_wscale : 4;`, low bits first.
        snd_wscale: i.tcpi_snd_rcv_wscale & 0x0f,
        rcv_wscale: i.tcpi_snd_rcv_wscale >> 4,
        snd_mss: i.tcpi_snd_mss,
        rcv_mss: i.tcpi_rcv_mss,
        advmss: i.tcpi_advmss,
    }
}

/// Closes with a RST (SO_LINGER 0): the client has no socket to take part in a FIN exchange.
fn abort(s: std::net::TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let _ = socket::setsockopt(&s, socket::sockopt::Linger, &l);
}

enum State {
    Unsent,
    /// SYN sent at this instant.
    Sent(Instant),
    /// ACK sent at this instant.
    Acked(Instant),
    Done,
}

/// Sends every case to `dport` from its own source port (`first_port` + its index), completes
/// each handshake that is answered, and returns what became of each. `fd` from
/// [`client_socket`]; `listeners` accept on `dport` (non-blocking).
pub fn run(
    cases: &[SynCase],
    ends: &Ends,
    fd: &OwnedFd,
    listeners: &[&TcpListener],
    first_port: u16,
    dport: u16,
) -> Vec<Outcome> {
    let mut out = vec![Outcome::default(); cases.len()];
    let mut state: Vec<State> = cases.iter().map(|_| State::Unsent).collect();
    let index = |port: u16| {
        let i = usize::from(port.wrapping_sub(first_port));
        (i < cases.len()).then_some(i)
    };
    let (mut next, mut done) = (0, 0);
    let mut buf = vec![0u8; 65536];
    while done < cases.len() {
        let busy = state
            .iter()
            .filter(|s| matches!(s, State::Sent(_) | State::Acked(_)))
            .count();
        for _ in busy..IN_FLIGHT {
            if next == cases.len() {
                break;
            }
            send_frame(
                fd,
                &cases[next].frame(ends, first_port + next as u16, dport),
            );
            state[next] = State::Sent(Instant::now());
            next += 1;
        }
        // Replies: each SYN-ACK, the first for its port, is acknowledged at once.
        while let Ok(n) = socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            let f = &buf[..n];
            let Some(i) = synack_to(f, dport).and_then(index) else {
                continue;
            };
            if let State::Sent(_) = state[i] {
                out[i].synack = Some(f.to_vec());
                let sport = first_port + i as u16;
                send_frame(fd, &third_ack(&cases[i], ends, sport, dport, f));
                state[i] = State::Acked(Instant::now());
            }
        }
        for l in listeners {
            loop {
                match l.accept() {
                    Ok((s, peer)) => {
                        if let Some(i) = index(peer.port())
                            && let State::Acked(_) = state[i]
                        {
                            out[i].socket = Some(sock_info(&s));
                            state[i] = State::Done;
                            done += 1;
                        }
                        abort(s);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("accept: {e}"),
                }
            }
        }
        let now = Instant::now();
        for s in state.iter_mut() {
            let late = match s {
                State::Sent(t) => now - *t > SYNACK_WAIT,
                State::Acked(t) => now - *t > ACCEPT_WAIT,
                _ => false,
            };
            if late {
                *s = State::Done;
                done += 1;
            }
        }
    }
    out
}

/// Outcomes that are answered, and of those, accepted.
pub fn tally(outcomes: &[Outcome]) -> (usize, usize) {
    let answered = outcomes.iter().filter(|o| o.synack.is_some()).count();
    let accepted = outcomes.iter().filter(|o| o.socket.is_some()).count();
    (answered, accepted)
}
