//! What a connection through the shield negotiated, read from TCP_INFO on both ends: kernel-cookie
//! mode's options check (tests/kernel_cookies.rs, and the smoke suite in the kernel matrix).

use std::{
    fmt,
    io::{Read, Write},
    net::{IpAddr, SocketAddr, TcpListener, TcpStream},
    thread,
    time::Duration,
};

use crate::{
    lab::Lab,
    packets::{TCPI_OPT_SACK, TCPI_OPT_TIMESTAMPS, TCPI_OPT_WSCALE, tcp_info},
};

/// `TCPI_OPT_ECN` (include/uapi/linux/tcp.h): ECN agreed in the handshake.
pub const TCPI_OPT_ECN: u8 = 8;
/// Timestamps, SACK, window scaling and ECN.
pub const EVERY_OPTION: u8 = TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE | TCPI_OPT_ECN;
/// More than a 64 KB window can carry in one round trip: it needs window scaling.
const PAYLOAD: usize = 256 * 1024;

/// One end's view: `tcpi_options` and the two window-scale shifts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct End {
    pub options: u8,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
}

impl End {
    /// `s`'s end, from its TCP_INFO.
    pub fn of(s: &TcpStream) -> Self {
        let i = tcp_info(s);
        // `__u8 tcpi_snd_wscale : 4, tcpi_rcv_wscale : 4;`, low bits first.
        Self {
            options: i.tcpi_options,
            snd_wscale: i.tcpi_snd_rcv_wscale & 0x0f,
            rcv_wscale: i.tcpi_snd_rcv_wscale >> 4,
        }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = Vec::new();
        for (bit, name) in [
            (TCPI_OPT_TIMESTAMPS, "ts"),
            (TCPI_OPT_SACK, "sack"),
            (TCPI_OPT_ECN, "ecn"),
        ] {
            if self.options & bit != 0 {
                names.push(name.to_string());
            }
        }
        if self.options & TCPI_OPT_WSCALE != 0 {
            names.push(format!("wscale {}/{}", self.snd_wscale, self.rcv_wscale));
        }
        if names.is_empty() {
            names.push("no options".into());
        }
        write!(f, "{}", names.join(" "))
    }
}

/// Both ends of one connection.
#[derive(Clone, Copy, Debug)]
pub struct Negotiated {
    pub client: End,
    pub server: End,
}

impl Negotiated {
    /// Every option on both ends, and each end's send shift the other's receive shift: the
    /// SYN-ACK's window scale is the one the kernel's cookie check gave the server's socket.
    pub fn every_option(&self) -> Result<(), String> {
        let (c, s) = (self.client, self.server);
        if c.options & EVERY_OPTION != EVERY_OPTION || s.options & EVERY_OPTION != EVERY_OPTION {
            return Err(format!("not every option (ts sack ecn wscale): {self}"));
        }
        if c.snd_wscale != s.rcv_wscale || c.rcv_wscale != s.snd_wscale {
            return Err(format!("window scales disagree: {self}"));
        }
        Ok(())
    }
}

impl fmt::Display for Negotiated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {}; server {}", self.client, self.server)
    }
}

/// `n` connections, one after another, from the client's namespace to a new listener on
/// `ip`:`port` in the server's, with ECN asked for (the client's tcp_ecn=1) and 256 KB echoed; both ends'
/// TCP_INFO of each.
pub fn connect(lab: &Lab, ip: IpAddr, port: u16, n: usize) -> Result<Vec<Negotiated>, String> {
    lab.client.sysctl("net.ipv4.tcp_ecn", "1");
    let l = {
        let _in = lab.server.enter();
        TcpListener::bind((ip, port)).map_err(|e| format!("bind {ip} {port}: {e}"))?
    };
    let addr: SocketAddr = l.local_addr().map_err(|e| e.to_string())?;
    let server = thread::spawn(move || -> Result<Vec<End>, String> {
        let mut ends = Vec::new();
        for _ in 0..n {
            let (mut s, _) = l.accept().map_err(|e| format!("accept: {e}"))?;
            ends.push(End::of(&s));
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(k) => s.write_all(&buf[..k]).map_err(|e| format!("echo: {e}"))?,
                    Err(e) => return Err(format!("server read: {e}")),
                }
            }
        }
        Ok(ends)
    });
    let clients = (0..n)
        .map(|_| one(lab, addr))
        .collect::<Result<Vec<_>, _>>()?;
    let servers = server
        .join()
        .map_err(|_| "the server thread panicked".to_string())??;
    Ok(clients
        .into_iter()
        .zip(servers)
        .map(|(client, server)| Negotiated { client, server })
        .collect())
}

/// One connection to `addr` from the client's namespace, 256 KB echoed; the client's end.
fn one(lab: &Lab, addr: SocketAddr) -> Result<End, String> {
    let _in = lab.client.enter();
    echo_large(addr)
}

/// One connection from the calling thread's namespace to the echo server at `addr`, 256 KB
/// sent and echoed at once (the window must scale); the client's end.
pub fn echo_large(addr: SocketAddr) -> Result<End, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let payload: Vec<u8> = (0..PAYLOAD).map(|i| (i * 13) as u8).collect();
    let writer = {
        let mut w = s.try_clone().map_err(|e| e.to_string())?;
        let p = payload.clone();
        thread::spawn(move || w.write_all(&p))
    };
    let mut back = vec![0u8; PAYLOAD];
    s.read_exact(&mut back).map_err(|e| format!("echo: {e}"))?;
    writer
        .join()
        .map_err(|_| "the writer panicked".to_string())?
        .map_err(|e| format!("send: {e}"))?;
    if back != payload {
        return Err("the echo differs from what was sent".into());
    }
    Ok(End::of(&s))
}
