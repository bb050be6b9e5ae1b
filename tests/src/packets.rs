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
    // SAFETY: raw socket, sendto with a sockaddr_in we build, closed right after.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW);
        assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(*dst.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let r = libc::sendto(
            fd,
            pkt.as_ptr() as *const libc::c_void,
            pkt.len(),
            0,
            &sa as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        );
        let e = std::io::Error::last_os_error();
        libc::close(fd);
        assert_eq!(r as usize, pkt.len(), "sendto: {e}");
    }
}
