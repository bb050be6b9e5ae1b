//! The server behind the defences, on the server's CPU: an echo server listening with a small
//! backlog (the kernel switches to its own cookies when that SYN queue is full, at
//! tcp_syncookies=1), or a minimal HTTP server for the new-connection rate (one response per
//! connection, then close, as a web server answering HTTP/1.0). Stopped and joined on drop.

use std::{
    io::{Read, Write},
    net::{SocketAddrV4, TcpListener, TcpStream},
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use nix::sys::socket::{
    AddressFamily, Backlog, Shutdown, SockFlag, SockType, SockaddrIn, bind, setsockopt, shutdown,
    socket, sockopt,
};
use syncookie_tests::netns::Netns;

use crate::cpu;

pub struct EchoServer {
    listener: Arc<TcpListener>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

/// A listening TCP socket on `addr` with `backlog` (std's `bind` picks its own backlog).
fn listen(addr: SocketAddrV4, backlog: i32) -> std::io::Result<TcpListener> {
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    bind(fd.as_raw_fd(), &SockaddrIn::from(addr))?;
    // The kernel caps the backlog at net.core.somaxconn anyway; nix refuses more than SOMAXCONN.
    let backlog = Backlog::new(backlog.min(i32::from(Backlog::MAXCONN)))?;
    nix::sys::socket::listen(&fd, backlog)?;
    Ok(TcpListener::from(fd))
}

fn serve(mut s: TcpStream) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = s.set_nodelay(true);
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 || s.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// Reads one request (to its blank line), answers `200 OK` and closes: the server closes
/// first, as a web server does for HTTP/1.0.
fn serve_http(mut s: TcpStream) {
    const RESPONSE: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = s.set_nodelay(true);
    let (mut buf, mut have) = ([0u8; 2048], 0);
    while have < buf.len() {
        match s.read(&mut buf[have..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
        if buf[..have].windows(4).any(|w| w == b"\r\n\r\n") {
            let _ = s.write_all(RESPONSE);
            return;
        }
    }
}

impl EchoServer {
    /// Listens on `addr` inside `ns`; `workers` threads pinned to `cpu` accept and echo.
    pub fn start(ns: &Netns, addr: SocketAddrV4, backlog: i32, cpu: usize, workers: usize) -> Self {
        Self::serving(ns, addr, backlog, cpu, workers, serve)
    }

    /// As [`Self::start`], answering each connection's HTTP request once.
    pub fn http(ns: &Netns, addr: SocketAddrV4, backlog: i32, cpu: usize, workers: usize) -> Self {
        Self::serving(ns, addr, backlog, cpu, workers, serve_http)
    }

    fn serving(
        ns: &Netns,
        addr: SocketAddrV4,
        backlog: i32,
        cpu: usize,
        workers: usize,
        handle: fn(TcpStream),
    ) -> Self {
        let listener = {
            let _in = ns.enter();
            Arc::new(listen(addr, backlog).unwrap_or_else(|e| panic!("listen on {addr}: {e}")))
        };
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..workers)
            .map(|_| {
                let (l, stop) = (listener.clone(), stop.clone());
                std::thread::spawn(move || {
                    let _ = cpu::pin(0, cpu);
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok((s, _)) = l.accept() {
                            handle(s);
                        }
                    }
                })
            })
            .collect();
        Self {
            listener,
            stop,
            workers,
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the workers blocked in accept().
        let _ = shutdown(self.listener.as_raw_fd(), Shutdown::Both);
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
