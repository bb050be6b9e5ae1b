//! A spoofed-SYN flood from inside the lab: the `lab_flood_syn` XDP program run in live-frames
//! mode (BPF_PROG_TEST_RUN) on the client's veth. Every repetition writes the SYN template over
//! the frame (live-frames pages come back holding whatever the receiver left in them, such as our
//! own SYN-ACK), randomizes the source (198.18.0.0/16, RFC 2544's benchmark range), port and ISN,
//! and XDP_TX puts it on the wire towards the server. Bounded in count and time. Kernels before
//! 5.18 have no live-frames mode: there the same SYNs go out through a raw socket, one syscall
//! each (enough for the smoke suite's rates, not for a benchmark).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use aya::{
    Ebpf,
    programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp},
};

use syncookie_common::lab::{LabCounter, SPOOFED_NET, SPOOFED_NET6, TEMPLATE_SIZE, map, prog};

use crate::lab::Lab;

/// Spoofed sources: 198.18.<random>.<random>.
pub const SPOOF_NET: [u8; 2] = SPOOFED_NET;

pub struct Flood {
    ebpf: Ebpf,
    /// `lab_flood_syn` or `lab_flood_syn6`.
    prog: &'static str,
    frame: Vec<u8>,
    ctx: [u8; 24],
    /// Where the SYNs go, for the raw-socket flood.
    dst: (IpAddr, u16),
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
    let link = etherparse::PacketBuilder::ethernet2(src_mac, dst_mac);
    linux_syn(
        link.ipv4([SPOOF_NET[0], SPOOF_NET[1], 0, 1], dst.octets(), 64),
        port,
    )
}

/// The IPv6 SYN of [`syn_template`], from the start of 2001:2::/48.
pub fn syn_template6(src_mac: [u8; 6], dst_mac: [u8; 6], dst: Ipv6Addr, port: u16) -> Vec<u8> {
    let [a, b, c] = SPOOFED_NET6;
    let src = Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 1);
    let link = etherparse::PacketBuilder::ethernet2(src_mac, dst_mac);
    linux_syn(link.ipv6(src.octets(), dst.octets(), 64), port)
}

fn linux_syn(ip: etherparse::PacketBuilderStep<etherparse::IpHeaders>, port: u16) -> Vec<u8> {
    linux_syn_from(ip, 40000, port, 1)
}

fn linux_syn_from(
    ip: etherparse::PacketBuilderStep<etherparse::IpHeaders>,
    sport: u16,
    port: u16,
    isn: u32,
) -> Vec<u8> {
    let b = ip
        .tcp(sport, port, isn, 64240)
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
    /// Prepares a flood from the lab's client towards `port` on the server, every SYN written
    /// whole (see [`Flood::fresh`]).
    pub fn new(lab: &Lab, port: u16) -> Self {
        Self::fresh(
            &lab.client,
            &lab.client_if,
            mac(&lab.server, &lab.server_if),
            lab.server_ip,
            port,
        )
    }

    /// Prepares a flood out of `client_if` in the namespace `client` towards `dst:port` behind
    /// the MAC address `dst_mac` (the veth peer): for labs other than [`Lab`].
    pub fn fresh(
        client: &crate::netns::Netns,
        client_if: &str,
        dst_mac: [u8; 6],
        dst: Ipv4Addr,
        port: u16,
    ) -> Self {
        let frame = syn_template(mac(client, client_if), dst_mac, dst, port);
        Self::load(
            client,
            client_if,
            frame,
            prog::FLOOD_SYN,
            (dst.into(), port),
        )
    }

    /// An IPv6 flood from the lab's client towards `port` on the server's IPv6 address.
    pub fn v6(lab: &Lab, port: u16) -> Self {
        let src_mac = mac(&lab.client, &lab.client_if);
        let dst_mac = mac(&lab.server, &lab.server_if);
        let frame = syn_template6(src_mac, dst_mac, lab.server_ip6, port);
        let dst = (lab.server_ip6.into(), port);
        Self::load(&lab.client, &lab.client_if, frame, prog::FLOOD_SYN6, dst)
    }

    fn load(
        client: &crate::netns::Netns,
        client_if: &str,
        frame: Vec<u8>,
        prog: &'static str,
        dst: (IpAddr, u16),
    ) -> Self {
        let ifindex = ifindex_in(client, client_if);
        let mut ebpf = Ebpf::load(crate::LAB_OBJECT).expect("lab object");
        let mut t = [0u8; TEMPLATE_SIZE];
        t[..frame.len()].copy_from_slice(&frame);
        let mut m: aya::maps::Array<&mut aya::maps::MapData, [u8; TEMPLATE_SIZE]> =
            aya::maps::Array::try_from(ebpf.map_mut(map::TEMPLATE).unwrap()).unwrap();
        m.set(0, t, 0).expect("SYN template");
        let p: &mut Xdp = ebpf.program_mut(prog).unwrap().try_into().unwrap();
        p.load().unwrap_or_else(|e| panic!("load {prog}: {e}"));
        // struct xdp_md { data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress }
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
        Self {
            ebpf,
            prog,
            frame,
            ctx,
            dst,
        }
    }

    /// SYNs sent so far (counted by the program as it sends them; readable from another thread
    /// while the flood runs).
    pub fn frames_sent(&self) -> u64 {
        crate::lab_counter(&self.ebpf, LabCounter::Flood)
    }

    /// Sends up to `count` SYNs at up to `rate` per second (0: as fast as possible), for at most
    /// `max`. The calling thread must be in the client's namespace. Returns SYNs sent.
    pub fn run(&self, count: u64, rate: u64, max: Duration) -> u64 {
        // A rate-limited flood goes out in bursts no larger than the veth ring (256 frames).
        let chunk = if rate == 0 { 16_384 } else { 128 };
        let (stop, progress) = (AtomicBool::new(false), AtomicU64::new(0));
        self.send(count, rate, max, chunk, &stop, &progress)
    }

    /// [`Flood::run`] that also stops as soon as `stop` is set, and adds the SYNs of each
    /// syscall to `progress` as they go out (to read the rate over a window while it runs).
    ///
    /// Each test run with more than one repetition swaps the kernel's XDP dispatcher in and out
    /// and waits for RCU grace periods (milliseconds, the thread idle meanwhile): at full speed
    /// this sends 2^20 SYNs per call, at a set rate about 20 ms worth, so that the generator
    /// reaches the rate asked and keeps one CPU busy when asked for all it can.
    pub fn run_until(
        &self,
        count: u64,
        rate: u64,
        max: Duration,
        stop: &AtomicBool,
        progress: &AtomicU64,
    ) -> u64 {
        let chunk = if rate == 0 {
            1 << 20
        } else {
            (rate / 50).clamp(128, 1 << 20)
        };
        self.send(count, rate, max, chunk, stop, progress)
    }

    fn send(
        &self,
        count: u64,
        rate: u64,
        max: Duration,
        chunk: u64,
        stop: &AtomicBool,
        progress: &AtomicU64,
    ) -> u64 {
        let p: &Xdp = self.ebpf.program(self.prog).unwrap().try_into().unwrap();
        // Frames per NAPI batch (the kernel's maximum is 256), and per syscall: large enough to
        // amortize the syscall, small enough to keep to the rate and the time bound.
        let batch = 64u32;
        let start = Instant::now();
        // What the program counted as sent: right even when a signal cuts a run short.
        let base = self.frames_sent();
        let mut sent = 0u64;
        while sent < count && start.elapsed() < max && !stop.load(Ordering::Relaxed) {
            let n = (count - sent).min(chunk) as u32;
            let opts = TestRunOptions {
                data_in: Some(&self.frame),
                ctx_in: Some(&self.ctx),
                repeat: n,
                attrs: TestRunAttrs::new().xdp_live_frames(batch),
                ..TestRunOptions::new()
            };
            match p.test_run(opts) {
                // Before 5.18 test runs take no flags (EINVAL): no live frames.
                Err(aya::programs::ProgramError::SyscallError(e))
                    if sent == 0 && e.io_error.raw_os_error() == Some(libc::EINVAL) =>
                {
                    return self.send_raw(count, rate, max, stop, progress);
                }
                Err(e) if !crate::interrupted(&e) => panic!("live-frames test run: {e}"),
                _ => {}
            }
            let now = self.frames_sent() - base;
            progress.fetch_add(now - sent, Ordering::Relaxed);
            sent = now;
            pace(sent, rate, start);
        }
        sent
    }
}

impl Flood {
    /// [`Flood::send`] through a raw socket: the template's SYN from a random spoofed source,
    /// port and ISN each time.
    fn send_raw(
        &self,
        count: u64,
        rate: u64,
        max: Duration,
        stop: &AtomicBool,
        progress: &AtomicU64,
    ) -> u64 {
        let start = Instant::now();
        let mut sent = 0u64;
        while sent < count && start.elapsed() < max && !stop.load(Ordering::Relaxed) {
            let (sport, isn) = (rand::random::<u16>() | 1024, rand::random::<u32>());
            let ip = match self.dst.0 {
                IpAddr::V4(d) => {
                    let [x, y] = rand::random::<[u8; 2]>();
                    let src = [SPOOF_NET[0], SPOOF_NET[1], x, y];
                    etherparse::PacketBuilder::ipv4(src, d.octets(), 64)
                }
                IpAddr::V6(d) => {
                    let [a, b, c] = SPOOFED_NET6;
                    let src = Ipv6Addr::new(a, b, c, 0, 0, 0, 0, rand::random::<u16>() | 1);
                    etherparse::PacketBuilder::ipv6(src.octets(), d.octets(), 64)
                }
            };
            crate::packets::send_raw_ip(&linux_syn_from(ip, sport, self.dst.1, isn), self.dst.0);
            sent += 1;
            progress.fetch_add(1, Ordering::Relaxed);
            pace(sent, rate, start);
        }
        sent
    }
}

/// Sleeps until `sent` SYNs are due at `rate` per second (0: no limit) since `start`.
fn pace(sent: u64, rate: u64, start: Instant) {
    if rate > 0 {
        let due = Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

fn ifindex_in(ns: &crate::netns::Netns, iface: &str) -> u32 {
    let _in = ns.enter();
    nix::net::if_::if_nametoindex(iface).unwrap_or_else(|e| panic!("no interface {iface}: {e}"))
}

/// The smoke suites' flood (the matrix's lab in each VM, and its virtio-net row): bounded in
/// count, rate and time, a smoke test and not a benchmark: real SYNs under qemu's TCG.
pub mod smoke {
    use std::time::Duration;

    pub const SYNS: u64 = 3000;
    pub const RATE: u64 = 2000;
    pub const MAX: Duration = Duration::from_secs(5);
}
