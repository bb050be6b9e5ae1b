//! The server behind the defences: an echo server on the server's CPU, listening with a small
//! backlog (the kernel switches to its own cookies when that SYN queue is full, at
//! tcp_syncookies=1). Stopped and joined on drop.

use std::{
    io::{Read, Write},
    net::{SocketAddrV4, TcpListener, TcpStream},
    os::fd::{AsRawFd, FromRawFd},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
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
    let err = std::io::Error::last_os_error;
    // SAFETY: socket/setsockopt/bind/listen on a descriptor we own; on success it is handed to
    // TcpListener, which closes it; on failure it is closed here.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(err());
        }
        let one: libc::c_int = 1;
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: addr.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*addr.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        if libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of_val(&one) as u32,
        ) != 0
            || libc::bind(
                fd,
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of_val(&sa) as u32,
            ) != 0
            || libc::listen(fd, backlog) != 0
        {
            let e = err();
            libc::close(fd);
            return Err(e);
        }
        Ok(TcpListener::from_raw_fd(fd))
    }
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

impl EchoServer {
    /// Listens on `addr` inside `ns`; `workers` threads pinned to `cpu` accept and echo.
    pub fn start(ns: &Netns, addr: SocketAddrV4, backlog: i32, cpu: usize, workers: usize) -> Self {
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
                            serve(s);
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
        // SAFETY: shutdown on a descriptor the listener still owns.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
