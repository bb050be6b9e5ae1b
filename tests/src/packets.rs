//! Socket helpers for the netns tests: TCP_INFO, raw IP sends, packet-socket captures.

use std::{
    io::{Read, Write},
    net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, TcpStream},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use nix::sys::socket::{
    self, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn, SockaddrIn6,
};

/// `TCPI_OPT_*` (include/uapi/linux/tcp.h).
pub const TCPI_OPT_TIMESTAMPS: u8 = 1;
pub const TCPI_OPT_SACK: u8 = 2;
pub const TCPI_OPT_WSCALE: u8 = 4;

/// Connections a server accepted, counted by its accept loop: the connections made, which the
/// shield's counters are checked against.
#[derive(Clone, Default)]
pub struct Accepted(Arc<AtomicU64>);

impl Accepted {
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Asserts that exactly `n` connections were accepted (waiting up to 5 s for the last).
    #[track_caller]
    pub fn assert_exactly(&self, n: u64) {
        crate::wait_until(Duration::from_secs(5), || self.count() >= n);
        assert_eq!(self.count(), n, "connections accepted");
    }
}

/// One connection from the calling thread's namespace to the echo server at `addr`: sends
/// `len` bytes and reads them back (10 s for each step: the kernel matrix runs under TCG).
pub fn echo_once(addr: SocketAddr, len: usize) -> Result<(), String> {
    let limit = Duration::from_secs(10);
    let mut s = TcpStream::connect_timeout(&addr, limit).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(limit)).map_err(|e| e.to_string())?;
    let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
    s.write_all(&payload).map_err(|e| format!("send: {e}"))?;
    let mut back = vec![0u8; len];
    s.read_exact(&mut back).map_err(|e| format!("echo: {e}"))?;
    if back != payload {
        return Err("the echo differs from what was sent".into());
    }
    Ok(())
}

/// Echoes what every connection `l` accepts sends, each on a thread of its own, until the
/// listener fails; `accepted` sees each stream first (to report its TCP_INFO, say). Returns
/// the count of accepted connections.
pub fn serve_echo(l: TcpListener, accepted: impl Fn(&TcpStream) + Send + 'static) -> Accepted {
    let count = Accepted::default();
    let counted = count.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            counted.0.fetch_add(1, Ordering::SeqCst);
            accepted(&s);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    count
}

/// IPPROTO_MPTCP (include/uapi/linux/in.h).
const IPPROTO_MPTCP: i32 = 262;

/// A TCP (or MPTCP) IPv4 stream socket, as std cannot make MPTCP ones.
pub fn stream_socket(mptcp: bool) -> OwnedFd {
    let proto = if mptcp { IPPROTO_MPTCP } else { 0 };
    // SAFETY: socket(2) with constant arguments; the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, proto) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh fd that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A TCP (or MPTCP) listener on `addr`, in the calling thread's namespace.
pub fn listen_stream(addr: SocketAddrV4, mptcp: bool) -> TcpListener {
    let fd = stream_socket(mptcp);
    socket::setsockopt(&fd, socket::sockopt::ReuseAddr, &true).unwrap();
    socket::bind(fd.as_raw_fd(), &SockaddrIn::from(addr)).expect("bind");
    socket::listen(&fd, socket::Backlog::new(128).unwrap()).expect("listen");
    TcpListener::from(fd)
}

pub fn tcp_info(s: &TcpStream) -> libc::tcp_info {
    // SAFETY: getsockopt into a zeroed tcp_info of the size we pass.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let r = libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut info as *mut _ as *mut libc::c_void,
            &mut len,
        );
        assert_eq!(r, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
        info
    }
}

/// Sends `n` spoofed SYNs from `victim` (source ports 1024 up, random ISNs) to `dst`, from the
/// current namespace.
pub fn spoof_syns(victim: std::net::Ipv4Addr, dst: std::net::SocketAddrV4, n: u16) {
    for i in 0..n {
        let src = std::net::SocketAddrV4::new(victim, 1024 + i);
        send_raw_tcp(src, dst, rand::random(), 0, true);
    }
}

/// Sends one hand-made TCP segment (IPv4 or IPv6) from the current namespace through a raw
/// socket.
pub fn send_raw_tcp(
    src: impl Into<SocketAddr>,
    dst: impl Into<SocketAddr>,
    seq: u32,
    ack: u32,
    flags_syn: bool,
) {
    let (src, dst) = (src.into(), dst.into());
    let ip = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            etherparse::PacketBuilder::ipv4(s.octets(), d.octets(), 64)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            etherparse::PacketBuilder::ipv6(s.octets(), d.octets(), 64)
        }
        _ => panic!("{src} and {dst} are of different families"),
    };
    let b = ip.tcp(src.port(), dst.port(), seq, 64240);
    let b = if flags_syn { b.syn() } else { b.ack(ack) };
    let mut pkt = Vec::new();
    b.write(&mut pkt, &[]).expect("build segment");
    send_raw_ip(&pkt, dst.ip());
}

/// Sends a hand-made IP packet (IP header included) from the current namespace through a raw
/// socket (IPPROTO_RAW: the kernel sends the header as it is; IPv4's checksum it fills in).
pub fn send_raw_ip(pkt: &[u8], dst: IpAddr) {
    let family = match dst {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket::socket(
        family,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::Raw,
    )
    .expect("raw socket");
    let n = match dst {
        IpAddr::V4(d) => {
            let to = SockaddrIn::from(SocketAddrV4::new(d, 0));
            socket::sendto(fd.as_raw_fd(), pkt, &to, MsgFlags::empty())
        }
        IpAddr::V6(d) => {
            let to = SockaddrIn6::from(SocketAddrV6::new(d, 0, 0, 0));
            socket::sendto(fd.as_raw_fd(), pkt, &to, MsgFlags::empty())
        }
    }
    .expect("sendto");
    assert_eq!(n, pkt.len(), "sendto sent part of the packet");
}

/// A packet socket on `iface` of the current namespace, receiving every frame, with a 100 ms
/// receive timeout.
pub fn capture(iface: &str) -> OwnedFd {
    let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
    // SAFETY: socket(2) with constant arguments; the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
    assert!(
        fd >= 0,
        "packet socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a fresh fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let ifindex = nix::net::if_::if_nametoindex(iface).expect("ifindex");
    // SAFETY: an all-zero sockaddr_ll is valid; the fields that matter are set below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto as u16;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: bind with a sockaddr_ll of the size passed.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sll as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
    let tv = nix::sys::time::TimeVal::new(0, 100_000);
    socket::setsockopt(&fd, socket::sockopt::ReceiveTimeout, &tv).unwrap();
    fd
}

/// The first SYN-ACK from `server_port` to `client_port` seen on `fd` within `limit`.
pub fn captured_synack(
    fd: &OwnedFd,
    server_port: u16,
    client_port: u16,
    limit: Duration,
) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        let Ok(n) = socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) else {
            continue;
        };
        let f = &buf[..n];
        if let Ok(p) = etherparse::SlicedPacket::from_ethernet(f)
            && let Some(etherparse::TransportSlice::Tcp(t)) = p.transport
            && t.source_port() == server_port
            && t.destination_port() == client_port
            && t.syn()
            && t.ack()
        {
            return f.to_vec();
        }
    }
    panic!("no SYN-ACK to port {client_port} within {limit:?}");
}
