//! A spoofed-SYN flood from inside the lab: the `lab_flood` XDP program run in live-frames mode
//! (BPF_PROG_TEST_RUN) on the client's veth. Every repetition gets a fresh copy of a SYN
//! template, the program randomizes the source (198.18.0.0/16, RFC 2544's benchmark range),
//! port and ISN, and XDP_TX puts it on the wire towards the server. Bounded in count and time.

use std::time::{Duration, Instant};

use aya::{
    Ebpf,
    programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp},
};

use crate::lab::Lab;

/// Spoofed sources: 198.18.<random>.<random>.
pub const SPOOF_NET: [u8; 2] = [198, 18];

pub struct Flood {
    ebpf: Ebpf,
    frame: Vec<u8>,
    ctx: [u8; 24],
}

/// The MAC address of `iface` in `ns`.
pub fn mac(ns: &crate::netns::Netns, iface: &str) -> [u8; 6] {
    let out = ns.exec(&["ip", "-o", "link", "show", "dev", iface]);
    let hex = out
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC in {out}"));
    let mut m = [0u8; 6];
    for (b, h) in m.iter_mut().zip(hex.split(':')) {
        *b = u8::from_str_radix(h, 16).unwrap();
    }
    m
}

/// A SYN as Linux sends it (MSS, SACK-permitted, timestamps, window scale).
pub fn syn_template(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    dst: std::net::Ipv4Addr,
    port: u16,
) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4([SPOOF_NET[0], SPOOF_NET[1], 0, 1], dst.octets(), 64)
        .tcp(40000, port, 1, 64240)
        .syn()
        .options(&[
            etherparse::TcpOptionElement::MaximumSegmentSize(1460),
            etherparse::TcpOptionElement::SelectiveAcknowledgementPermitted,
            etherparse::TcpOptionElement::Timestamp(1, 0),
            etherparse::TcpOptionElement::Noop,
            etherparse::TcpOptionElement::WindowScale(7),
        ])
        .expect("SYN options");
    let mut v = Vec::new();
    b.write(&mut v, &[]).expect("SYN template");
    v
}

impl Flood {
    /// Prepares a flood from the lab's client towards `port` on the server.
    pub fn new(lab: &Lab, port: u16) -> Self {
        let frame = syn_template(
            mac(&lab.client, &lab.client_if),
            mac(&lab.server, &lab.server_if),
            lab.server_ip,
            port,
        );
        let ifindex = ifindex_in(lab);
        let mut ebpf = Ebpf::load(syncookie::LAB_OBJECT).expect("lab object");
        let p: &mut Xdp = ebpf.program_mut("lab_flood").unwrap().try_into().unwrap();
        p.load().expect("load lab_flood");
        // struct xdp_md { data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress }
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
        Self { ebpf, frame, ctx }
    }

    /// Sends up to `count` SYNs at up to `rate` per second (0: as fast as possible), for at most
    /// `max`. The calling thread must be in the client's namespace. Returns SYNs sent.
    pub fn run(&self, count: u64, rate: u64, max: Duration) -> u64 {
        let p: &Xdp = self.ebpf.program("lab_flood").unwrap().try_into().unwrap();
        // Frames per NAPI batch (the kernel's maximum is 256), and per syscall: large enough to
        // amortize the syscall, small enough to keep to the rate and the time bound.
        let batch = 64u32;
        // A rate-limited flood goes out in bursts no larger than the veth ring (256 frames).
        let chunk = if rate == 0 { 16_384 } else { 128 };
        let start = Instant::now();
        let mut sent = 0u64;
        while sent < count && start.elapsed() < max {
            let n = (count - sent).min(chunk) as u32;
            let opts = TestRunOptions {
                data_in: Some(&self.frame),
                ctx_in: Some(&self.ctx),
                repeat: n,
                attrs: TestRunAttrs::new().xdp_live_frames(batch),
                ..TestRunOptions::new()
            };
            p.test_run(opts).expect("live-frames test run");
            sent += n as u64;
            if rate > 0 {
                let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
        sent
    }
}

fn ifindex_in(lab: &Lab) -> u32 {
    let _in = lab.client.enter();
    let name = std::ffi::CString::new(lab.client_if.as_str()).unwrap();
    // SAFETY: NUL-terminated name.
    unsafe { libc::if_nametoindex(name.as_ptr()) }
}
