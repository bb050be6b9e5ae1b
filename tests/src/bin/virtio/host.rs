//! The host's side: a namespace with a tap, qemu on that tap (the guest's `virtio-net-pci` NIC),
//! a capture of every SYN-ACK the guest sends, and the checks of each mode; then the guest is
//! powered off and everything made here is removed (on drop, also when a check panics).

use std::{
    collections::HashSet,
    net::Ipv4Addr,
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::process::CommandExt,
    },
    process::{Child, Command, ExitCode, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use syncookie_tests::{
    netns::{Netns, unique},
    packets::capture,
};

use super::{GUEST_MAC, HOST_IP, PORT, ask, checks};

/// Boot under TCG (about 10 s for a cloud kernel), the modules and the NIC: well within this.
const BOOT: Duration = Duration::from_secs(120);

/// qemu, killed and reaped when dropped (a failed run leaves no VM behind).
struct Vm(Child);

impl Drop for Vm {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// SYN-ACKs from the protected port seen on the tap: every one the guest sent, the shield's and
/// its kernel's.
#[derive(Default)]
struct Seen {
    /// Each SYN-ACK once: (client address, client port, sequence number).
    distinct: HashSet<(Ipv4Addr, u16, u32)>,
    /// The same SYN-ACK again: the daemon's resend of an unanswered one (after 1 s and 3 s, as
    /// the kernel retransmits its own), or the kernel's retransmit.
    again: u64,
}

/// The host's end of the wire: the namespace, its tap, and the SYN-ACKs seen on the tap.
pub struct Wire {
    pub ns: Netns,
    pub tap: String,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

impl Wire {
    /// Distinct SYN-ACKs seen so far (each sent once at least).
    pub fn synacks(&self) -> u64 {
        self.seen.lock().unwrap().distinct.len() as u64
    }

    /// SYN-ACKs seen again so far.
    pub fn again(&self) -> u64 {
        self.seen.lock().unwrap().again
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

pub fn run(modes: &str, queues: u32, qemu: &[&str]) -> ExitCode {
    let wire = match wire(queues) {
        Ok(w) => w,
        Err(e) => {
            println!("virtio: host FAIL: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Everything from here on (qemu, clients, the flood) runs in the namespace.
    let _in = wire.ns.enter();
    let mut vm = match boot(&wire, queues, qemu) {
        Ok(vm) => vm,
        Err(e) => {
            println!("virtio: boot FAIL: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for mode in modes.split(',') {
        failed |= !checks::suite(&wire, mode);
    }
    // The guest powers off; a VM that does not is killed (Vm's drop).
    let off = ask("poweroff").is_ok() && wait_exit(&mut vm.0, Duration::from_secs(30));
    if !off {
        println!("virtio: poweroff FAIL: the guest did not power off within 30 s");
    }
    if failed || !off {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The namespace and its tap (made here: qemu only opens it; one file per queue pair when
/// `queues` > 1), the host's address on it, and the SYN-ACK capture.
fn wire(queues: u32) -> Result<Wire, String> {
    let ns = Netns::new(&unique("scv"));
    let tap = format!("{}t", ns.name);
    let mut add = vec!["ip", "tuntap", "add", "dev", &tap, "mode", "tap"];
    if queues > 1 {
        add.push("multi_queue");
    }
    ns.try_exec(&add)?;
    ns.try_exec(&["ip", "addr", "add", &format!("{HOST_IP}/24"), "dev", &tap])?;
    ns.try_exec(&["ip", "link", "set", &tap, "up"])?;
    // The clients ask for ECN (as `negotiated` does): the options check wants every option.
    ns.sysctl("net.ipv4.tcp_ecn", "1");
    let fd = {
        let _in = ns.enter();
        capture(&tap)
    };
    let (seen, stop) = (Arc::default(), Arc::new(AtomicBool::new(false)));
    let (n, s) = (Arc::clone(&seen), stop.clone());
    thread::spawn(move || count_synacks(&fd, &n, &s));
    Ok(Wire {
        ns,
        tap,
        seen,
        stop,
    })
}

/// Counts SYN-ACKs from [`PORT`] on the capture until `stop`.
fn count_synacks(fd: &OwnedFd, seen: &Mutex<Seen>, stop: &AtomicBool) {
    // Room for a flood's burst while this thread waits for a CPU (frames are small).
    let _ = nix::sys::socket::setsockopt(fd, nix::sys::socket::sockopt::RcvBuf, &(4 << 20));
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::SeqCst) {
        // SAFETY: recv into a buffer of the length passed, on a socket this thread owns.
        let len = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        let Ok(len) = usize::try_from(len) else {
            continue; // the receive timeout (100 ms): check `stop`
        };
        if let Ok(p) = etherparse::SlicedPacket::from_ethernet(&buf[..len])
            && let Some(etherparse::NetSlice::Ipv4(ip)) = p.net
            && let Some(etherparse::TransportSlice::Tcp(t)) = p.transport
            && t.source_port() == PORT
            && t.syn()
            && t.ack()
        {
            let key = (
                ip.header().destination_addr(),
                t.destination_port(),
                t.sequence_number(),
            );
            let mut s = seen.lock().unwrap();
            if !s.distinct.insert(key) {
                s.again += 1;
            }
        }
    }
}

/// Starts qemu with the guest's NIC on the tap and waits for the guest's control port. With
/// `queues` > 1 the NIC is multi-queue: the guest uses one queue pair per vCPU and XDP takes
/// as many more for its XDP_TX (virtnet_xdp_set); with one, XDP_TX shares the stack's queues
/// under a lock. qemu's defaults otherwise, so the guest may switch its receive offloads off
/// itself (VIRTIO_NET_F_CTRL_GUEST_OFFLOADS), which XDP needs.
fn boot(wire: &Wire, queues: u32, qemu: &[&str]) -> Result<Vm, String> {
    let mac = GUEST_MAC.map(|b| format!("{b:02x}")).join(":");
    let (mut netdev, mut device) = (
        format!("tap,id=n0,ifname={},script=no,downscript=no", wire.tap),
        format!("virtio-net-pci,netdev=n0,mac={mac}"),
    );
    if queues > 1 {
        // An MSI-X vector per queue, one for the config and one for the control queue.
        netdev.push_str(&format!(",queues={queues}"));
        device.push_str(&format!(",mq=on,vectors={}", 2 * queues + 2));
    }
    let mut cmd = Command::new(qemu[0]);
    cmd.args(&qemu[1..])
        .args(["-netdev", &netdev, "-device", &device])
        // The console goes to its file; our stdout is the matrix's.
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // SAFETY: prctl is async-signal-safe. qemu dies with this process, even when the matrix
    // kills it at its deadline (Vm's drop does not run then).
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut vm = Vm(cmd.spawn().map_err(|e| format!("{}: {e}", qemu[0]))?);
    let start = Instant::now();
    loop {
        match ask("nic") {
            Ok(nic) => {
                println!(
                    "virtio: guest up after {:.1?}: {}",
                    start.elapsed(),
                    nic.trim()
                );
                return Ok(vm);
            }
            Err(e) if start.elapsed() > BOOT => {
                return Err(format!("no control port within {BOOT:?}: {e}"));
            }
            Err(_) => {}
        }
        if let Ok(Some(status)) = vm.0.try_wait() {
            return Err(format!("qemu exited ({status}) before the guest was up"));
        }
        thread::sleep(Duration::from_millis(500));
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    false
}
