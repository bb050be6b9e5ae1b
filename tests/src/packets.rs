//! Socket helpers for the netns tests (TCP_INFO) and canned frames for the packet tests.

use std::{net::TcpStream, os::fd::AsRawFd};

/// `TCPI_OPT_*` (include/uapi/linux/tcp.h).
pub const TCPI_OPT_TIMESTAMPS: u8 = 1;
pub const TCPI_OPT_SACK: u8 = 2;
pub const TCPI_OPT_WSCALE: u8 = 4;

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

/// Sends one hand-made IPv4 TCP segment from the current namespace through a raw socket.
pub fn send_raw_tcp(
    src: std::net::SocketAddrV4,
    dst: std::net::SocketAddrV4,
    seq: u32,
    ack: u32,
    flags_syn: bool,
) {
    let b = etherparse::PacketBuilder::ipv4(src.ip().octets(), dst.ip().octets(), 64).tcp(
        src.port(),
        dst.port(),
        seq,
        64240,
    );
    let b = if flags_syn { b.syn() } else { b.ack(ack) };
    let mut pkt = Vec::new();
    b.write(&mut pkt, &[]).expect("build segment");
    use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn};
    // IPPROTO_RAW: the kernel sends our IP header as it is.
    let fd = nix::sys::socket::socket(
        AddressFamily::Inet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::Raw,
    )
    .expect("raw socket");
    let to = SockaddrIn::from(std::net::SocketAddrV4::new(*dst.ip(), 0));
    let n = nix::sys::socket::sendto(fd.as_raw_fd(), &pkt, &to, MsgFlags::empty()).expect("sendto");
    assert_eq!(n, pkt.len(), "sendto sent part of the segment");
}
