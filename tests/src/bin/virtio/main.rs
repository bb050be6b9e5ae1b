//! The shield on a real NIC driver: virtio-net, the NIC of KVM clouds. `cargo xtask
//! test-kernels` runs `virtio host --modes MODE --queues N -- QEMU...` on the host: it makes a network
//! namespace with a tap, boots the kernel under qemu with a `virtio-net-pci` NIC on that tap,
//! and drives the guest from the host side: real TCP clients, forged ACKs and a spoofed-SYN
//! flood cross the tap, qemu and the guest's virtio_net driver, where the shield runs in native
//! (driver) XDP. Inside the VM, init runs `virtio guest`: the NIC, an echo server on the
//! protected port, and a control port through which the host attaches and detaches the shield
//! and reads its counters.
//!
//! Prints the smoke suite's lines with its own prefix (`virtio: <mode> <check> ok|FAIL: ...`,
//! `virtio: <mode> result pass|fail|unsupported: ...`); the matrix reads them.

mod checks;
mod guest;
mod host;

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpStream},
    process::ExitCode,
    time::Duration,
};

/// The guest's address on the virtio NIC, and the host's on the tap.
const GUEST_IP: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 2);
const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 199, 0, 1);
/// The MAC qemu gives the guest's NIC (the flood's frames are addressed to it).
const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x5c, 0x00, 0x02];
/// The protected port, where the guest's echo server listens.
const PORT: u16 = 8080;
/// The guest's control port: not protected, so its traffic passes the shield untouched.
const CONTROL: u16 = 7000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !nix::unistd::geteuid().is_root() {
        eprintln!("virtio: needs root (namespaces, taps, BPF)");
        return ExitCode::FAILURE;
    }
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["guest"] => guest::run(),
        [
            "host",
            "--modes",
            modes,
            "--queues",
            queues,
            "--",
            qemu @ ..,
        ] if !qemu.is_empty() => match queues.parse() {
            Ok(q) if q > 0 => host::run(modes, q, qemu),
            _ => usage(),
        },
        _ => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: virtio guest | virtio host --modes full,kernel --queues N -- QEMU ARGS...");
    ExitCode::FAILURE
}

/// The guest's control address.
fn control_addr() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(GUEST_IP, CONTROL))
}

/// Sends one command line to the guest's control port: its answer (`ok` or `err` on the first
/// line, then the body), or why none came.
fn ask(cmd: &str) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&control_addr(), Duration::from_secs(10))
        .map_err(|e| format!("control {cmd}: {e}"))?;
    // A daemon's attach under TCG takes seconds; its stop too.
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    s.write_all(format!("{cmd}\n").as_bytes())
        .and_then(|()| s.shutdown(Shutdown::Write))
        .map_err(|e| format!("control {cmd}: {e}"))?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)
        .map_err(|e| format!("control {cmd}: {e}"))?;
    match answer.split_once('\n') {
        Some(("ok", body)) => Ok(body.to_string()),
        Some(("err", body)) => Err(format!("{cmd}: {}", body.trim())),
        _ => Err(format!("{cmd}: no answer ({answer:?})")),
    }
}
