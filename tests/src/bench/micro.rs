//! Micro-benchmarks with BPF_PROG_TEST_RUN: ns per packet of the shield's paths beside a
//! minimal reflector and a pass-only program, all in one lab and one run.
//!
//! Rewriting paths (the SYN path, the reflector) run in live-frames mode, where XDP_TX really
//! transmits onto the veth. Live-frames runs recycle their pages with the bytes the program and
//! the receiver left (a SYN answered once comes back as our SYN-ACK), so these go through
//! `lab_syn_fresh`, which writes the SYN template over the frame and tail-calls the program
//! timed (the reflector goes through the same wrapper). `lab_syn_*` run the shield's SYN path
//! from its own modules with one step left out at a time, to show what each step costs.
//! Paths that do not rewrite the frame (ACKs, an established flow, pass) run with a plain
//! repeat. Time per packet is the kernel's own measure of the run (the test timer, without the
//! call's setup: each run with repetitions swaps the XDP dispatcher, milliseconds); each figure
//! is the median of several rounds run in turn. The programs' own run time (BPF_ENABLE_STATS,
//! run_time_ns / run_cnt) comes from a separate pass of single runs on fresh copies of the
//! frame, since the statistics cost time themselves.

use std::{
    ffi::CString,
    io::Write,
    net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream},
};

use aya::{
    Ebpf,
    maps::{Array, Map, MapData, ProgramArray},
    programs::{SchedClassifier, TestRun, TestRunAttrs, TestRunOptions, Xdp},
    sys::{Stats, enable_stats},
};
use etherparse::{PacketBuilder, SlicedPacket, TcpOptionElement, TransportSlice};
use syncookie::{
    keys::Keys,
    loader,
    pins::{DEFAULT_ROOT, PinDir},
    sysctl,
};
use syncookie_common::maps::{Config, KEYS_LEN, Key, MAP_CONFIG, MAP_EPOCH, MAP_KEYS, PROG_XDP};
use syncookie_tests::flood::{SPOOF_NET, mac, syn_template};

use super::{
    cpu,
    lab::{BenchLab, Cpus},
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub live_repeat: u32,
    pub plain_repeat: u32,
    /// Single runs per program for its own run time (BPF statistics).
    pub stats_runs: u32,
    pub rounds: usize,
    pub port: u16,
    pub cpus: Cpus,
}

/// One timed path.
#[derive(Clone, Debug)]
pub struct Row {
    pub path: &'static str,
    pub program: &'static str,
    pub live: bool,
    pub ns: f64,
    /// The program's own run time per packet (BPF statistics), where measured.
    pub prog_ns: Option<f64>,
}

#[derive(Clone, Debug, Default)]
pub struct Results {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

impl Results {
    pub fn ns(&self, program: &str, path: &str) -> f64 {
        self.row(program, path).map_or(f64::NAN, |r| r.ns)
    }

    pub fn prog_ns(&self, program: &str, path: &str) -> f64 {
        self.row(program, path)
            .and_then(|r| r.prog_ns)
            .unwrap_or(f64::NAN)
    }

    fn row(&self, program: &str, path: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.program == program && r.path == path)
    }
}

/// Removes the pin directory of the loaded (not attached) shield.
struct PinsGuard(PinDir);

impl Drop for PinsGuard {
    fn drop(&mut self) {
        let _ = self.0.remove();
    }
}

fn xdp<'a>(e: &'a mut Ebpf, name: &str) -> &'a mut Xdp {
    let p: &mut Xdp = e.program_mut(name).unwrap().try_into().unwrap();
    if p.fd().is_err() {
        p.load().unwrap_or_else(|e| panic!("load {name}: {e}"));
    }
    p
}

fn tc<'a>(e: &'a mut Ebpf, name: &str) -> &'a mut SchedClassifier {
    let p: &mut SchedClassifier = e.program_mut(name).unwrap().try_into().unwrap();
    if p.fd().is_err() {
        p.load().unwrap_or_else(|e| panic!("load {name}: {e}"));
    }
    p
}

/// `struct xdp_md` with `ingress_ifindex` set (live frames need a real interface; socket
/// lookups then use its namespace).
fn xdp_ctx(len: usize, ifindex: u32) -> [u8; 24] {
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(len as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
    ctx
}

fn opts<'a>(frame: &'a [u8], ctx: Option<&'a [u8]>, repeat: u32, live: bool) -> TestRunOptions<'a> {
    TestRunOptions {
        data_in: Some(frame),
        ctx_in: ctx,
        repeat,
        attrs: if live {
            TestRunAttrs::new().xdp_live_frames(64)
        } else {
            TestRunAttrs::new()
        },
        ..TestRunOptions::new()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// What one timed case runs.
struct Case {
    path: &'static str,
    program: &'static str,
    tc: bool,
    live: bool,
    /// Live frames through `lab_syn_fresh` (the program rewrites the frame).
    fresh: bool,
    frame: &'static [u8],
    /// The verdict a single plain run must give (checked before timing).
    expect: u32,
}

fn object<'a>(c: &Case, shield: &'a mut Ebpf, lab: &'a mut Ebpf) -> &'a mut Ebpf {
    if c.program == PROG_XDP { shield } else { lab }
}

/// Points `LAB_JMP[0]` at the case's program, for `lab_syn_fresh`.
fn aim(c: &Case, shield: &mut Ebpf, lab: &mut Ebpf) {
    let fd = xdp(object(c, shield, lab), c.program)
        .fd()
        .expect("program fd")
        .try_clone()
        .expect("dup fd");
    let mut jmp: ProgramArray<&mut MapData> =
        ProgramArray::try_from(lab.map_mut("LAB_JMP").unwrap()).unwrap();
    jmp.set(0, &fd, 0).expect("LAB_JMP");
}

/// One test run of a case; returns (ns per repetition as the kernel timed it, verdict).
/// `direct`: run the case's program itself, in plain mode (verdicts, statistics).
fn run_case(
    c: &Case,
    shield: &mut Ebpf,
    lab: &mut Ebpf,
    ifindex: u32,
    repeat: u32,
    direct: bool,
) -> (f64, u32) {
    let live = c.live && !direct;
    let r = if c.tc {
        tc(object(c, shield, lab), c.program).test_run(opts(c.frame, None, repeat, false))
    } else {
        let ctx = xdp_ctx(c.frame.len(), ifindex);
        let p = if c.fresh && !direct {
            xdp(lab, "lab_syn_fresh")
        } else {
            xdp(object(c, shield, lab), c.program)
        };
        p.test_run(opts(c.frame, Some(&ctx), repeat, live))
    };
    let r = r.unwrap_or_else(|e| panic!("test run of {} ({}): {e}", c.program, c.path));
    (r.duration.as_nanos() as f64, r.return_value)
}

fn leak(v: Vec<u8>) -> &'static [u8] {
    Box::leak(v.into_boxed_slice())
}

fn tcp_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    ts: Option<(u32, u32)>,
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src.ip().octets(), dst.ip().octets(), 64)
        .tcp(src.port(), dst.port(), seq, 502)
        .ack(ack);
    let b = match ts {
        Some((val, ecr)) => b
            .options(&[
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::Timestamp(val, ecr),
            ])
            .expect("options"),
        None => b,
    };
    let mut v = Vec::new();
    b.write(&mut v, &[]).expect("frame");
    v
}

pub fn run(p: &Params) -> Results {
    let mut res = Results::default();
    let mut lab = BenchLab::new();
    lab.sysctl("net.ipv4.tcp_syncookies", "1");
    lab.pin_napi(p.cpus);
    // Timed on the server's CPU; what XDP_TX sends is drained by the client's NAPI thread on
    // the other CPU (lab_sink drops it), so it is not part of the figures.
    let _ = cpu::pin(0, p.cpus.server);
    let _in = lab.server.enter();
    let ifindex = {
        let n = CString::new(lab.server_if.as_str()).unwrap();
        // SAFETY: NUL-terminated name.
        unsafe { libc::if_nametoindex(n.as_ptr()) }
    };

    // A listener (SYNs and handshake ACKs find it) and an established connection.
    let listener = TcpListener::bind((lab.server_ip, p.port)).expect("listen");
    let mut established = {
        let _c = lab.client.enter();
        TcpStream::connect((lab.server_ip, p.port)).expect("connect")
    };
    let (_accepted, _) = listener.accept().expect("accept");
    let est_src = match established.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        _ => unreachable!(),
    };
    let _ = established.write_all(b"x");

    // The shield's object, loaded and configured as `syncookie run` does, not attached.
    let pins = PinsGuard(PinDir::new(
        DEFAULT_ROOT.as_ref(),
        &format!("{}m", lab.server_if),
    ));
    let mut shield = loader::load(&pins.0).expect("load the shield");
    let kernel = sysctl::Kernel::read().expect("sysctls");
    let mtu = sysctl::mtu(&lab.server_if).expect("mtu");
    loader::write_config(&mut shield, kernel.config(mtu, false)).expect("config");
    loader::write_ports(&mut shield, &[p.port]).expect("ports");
    Keys::open(&pins.0)
        .and_then(|mut k| k.ensure())
        .expect("keys");

    // The lab's variants check cookies with the same keys.
    let mut labo = Ebpf::load(syncookie::LAB_OBJECT).expect("lab object");
    {
        let keys: Array<MapData, Key> =
            Array::try_from(Map::Array(MapData::from_pin(pins.0.map(MAP_KEYS)).unwrap())).unwrap();
        let epoch: Array<MapData, u64> = Array::try_from(Map::Array(
            MapData::from_pin(pins.0.map(MAP_EPOCH)).unwrap(),
        ))
        .unwrap();
        let mut lk: Array<&mut MapData, Key> =
            Array::try_from(labo.map_mut("LAB_KEYS").unwrap()).unwrap();
        for i in 0..KEYS_LEN {
            lk.set(i, keys.get(&i, 0).unwrap(), 0).unwrap();
        }
        let cfg: Array<MapData, Config> = Array::try_from(Map::Array(
            MapData::from_pin(pins.0.map(MAP_CONFIG)).unwrap(),
        ))
        .unwrap();
        let mut lc: Array<&mut MapData, Config> =
            Array::try_from(labo.map_mut("LAB_CONFIG").unwrap()).unwrap();
        lc.set(0, cfg.get(&0, 0).unwrap(), 0).unwrap();
        let mut le: Array<&mut MapData, u64> =
            Array::try_from(labo.map_mut("LAB_EPOCH").unwrap()).unwrap();
        le.set(0, epoch.get(&0, 0).unwrap(), 0).unwrap();
    }

    // Frames: a Linux-like SYN from a spoofed source, the SYN-ACK the shield makes of it, the
    // client's ACK (valid cookie), the same with a wrong cookie, a segment of the established
    // connection.
    let client_mac = mac(&lab.client, &lab.client_if);
    let syn = leak(syn_template(
        client_mac,
        lab.server_mac,
        lab.server_ip,
        p.port,
    ));
    {
        let mut t = [0u8; 80];
        t[..syn.len()].copy_from_slice(syn);
        let mut m: Array<&mut MapData, [u8; 80]> =
            Array::try_from(labo.map_mut("LAB_TEMPLATE").unwrap()).unwrap();
        m.set(0, t, 0).expect("SYN template");
    }
    let ctx = xdp_ctx(syn.len(), ifindex);
    let mut out = vec![0u8; 256];
    let r = xdp(&mut shield, PROG_XDP)
        .test_run(TestRunOptions {
            data_in: Some(syn),
            data_out: Some(&mut out),
            ctx_in: Some(&ctx),
            ..TestRunOptions::new()
        })
        .expect("SYN test run");
    assert_eq!(r.return_value, XDP_TX, "the shield must answer the SYN");
    out.truncate(r.data_size_out as usize);
    let sa = SlicedPacket::from_ethernet(&out).expect("SYN-ACK parses");
    let Some(TransportSlice::Tcp(t)) = sa.transport else {
        panic!("SYN-ACK is not TCP")
    };
    let (cookie, tsval) = (
        t.sequence_number(),
        t.options_iterator()
            .find_map(|o| match o {
                Ok(TcpOptionElement::Timestamp(v, _)) => Some(v),
                _ => None,
            })
            .expect("SYN-ACK timestamps"),
    );
    let spoofed = SocketAddrV4::new(Ipv4Addr::new(SPOOF_NET[0], SPOOF_NET[1], 0, 1), 40000);
    let server = SocketAddrV4::new(lab.server_ip, p.port);
    // syn_template: ISN 1, TSval 1.
    let valid = leak(tcp_frame(
        client_mac,
        lab.server_mac,
        spoofed,
        server,
        2,
        cookie.wrapping_add(1),
        Some((2, tsval)),
    ));
    let bad = leak(tcp_frame(
        client_mac,
        lab.server_mac,
        spoofed,
        server,
        2,
        cookie.wrapping_add(1) ^ 0x5a5a_0000,
        Some((2, tsval)),
    ));
    let est = leak(tcp_frame(
        client_mac,
        lab.server_mac,
        est_src,
        server,
        1000,
        2000,
        Some((5, 6)),
    ));

    // (path, program, TC?, live frames?, through lab_syn_fresh?, frame, verdict)
    let cases = [
        ("SYN -> SYN-ACK", PROG_XDP, false, true, true, syn, XDP_TX),
        (
            "SYN -> SYN-ACK",
            "lab_reflect",
            false,
            true,
            true,
            syn,
            XDP_TX,
        ),
        (
            "SYN -> SYN-ACK",
            "lab_syn_all",
            false,
            true,
            true,
            syn,
            XDP_TX,
        ),
        (
            "SYN -> SYN-ACK",
            "lab_syn_no_lookup",
            false,
            true,
            true,
            syn,
            XDP_TX,
        ),
        (
            "SYN -> SYN-ACK",
            "lab_syn_no_csum",
            false,
            true,
            true,
            syn,
            XDP_TX,
        ),
        ("SYN", "lab_syn_mac", false, false, false, syn, XDP_DROP),
        ("SYN", "lab_syn_parse", false, false, false, syn, XDP_DROP),
        ("pass", "lab_pass", false, false, false, syn, XDP_PASS),
        ("valid ACK", PROG_XDP, false, false, false, valid, XDP_PASS),
        ("bad ACK", PROG_XDP, false, false, false, bad, XDP_DROP),
        ("established", PROG_XDP, false, false, false, est, XDP_PASS),
        (
            "valid ACK",
            "lab_ack_lookup_first",
            false,
            false,
            false,
            valid,
            XDP_PASS,
        ),
        (
            "valid ACK",
            "lab_ack_cookie_first",
            false,
            false,
            false,
            valid,
            XDP_PASS,
        ),
        (
            "bad ACK",
            "lab_ack_lookup_first",
            false,
            false,
            false,
            bad,
            XDP_DROP,
        ),
        (
            "bad ACK",
            "lab_ack_cookie_first",
            false,
            false,
            false,
            bad,
            XDP_DROP,
        ),
        (
            "established",
            "lab_ack_lookup_first",
            false,
            false,
            false,
            est,
            XDP_PASS,
        ),
        (
            "established",
            "lab_ack_cookie_first",
            false,
            false,
            false,
            est,
            XDP_PASS,
        ),
        (
            "valid ACK",
            "lab_ack_meta",
            false,
            true,
            false,
            valid,
            XDP_DROP,
        ),
        (
            "valid ACK",
            "lab_ack_no_meta",
            false,
            true,
            false,
            valid,
            XDP_DROP,
        ),
        ("valid ACK", "lab_tc_meta", true, false, false, valid, 0),
        ("valid ACK", "lab_tc_recheck", true, false, false, valid, 0),
    ]
    .map(|(path, program, tc, live, fresh, frame, expect)| Case {
        path,
        program,
        tc,
        live,
        fresh,
        frame,
        expect,
    });

    // Verdicts first: a path that does not do what it is named for is not timed.
    for c in &cases {
        let (_, got) = run_case(c, &mut shield, &mut labo, ifindex, 1, true);
        assert_eq!(
            got, c.expect,
            "{} on a {} frame: verdict {got}, expected {}",
            c.program, c.path, c.expect
        );
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..p.rounds {
        for (i, c) in cases.iter().enumerate() {
            if c.fresh {
                aim(c, &mut shield, &mut labo);
            }
            let repeat = if c.live {
                p.live_repeat
            } else {
                p.plain_repeat
            };
            samples[i].push(run_case(c, &mut shield, &mut labo, ifindex, repeat, false).0);
        }
    }
    // The programs' own time: single runs on fresh copies of the frame, statistics on (they
    // cost time themselves, hence a separate pass).
    let mut prog_ns: Vec<Option<f64>> = vec![None; cases.len()];
    match enable_stats(Stats::RunTime) {
        Ok(_fd) => {
            for (i, c) in cases.iter().enumerate() {
                let info = |s: &mut Ebpf, l: &mut Ebpf| {
                    let e = object(c, s, l);
                    if c.tc {
                        tc(e, c.program).info()
                    } else {
                        xdp(e, c.program).info()
                    }
                    .expect("program info")
                };
                let before = info(&mut shield, &mut labo);
                for _ in 0..p.stats_runs {
                    run_case(c, &mut shield, &mut labo, ifindex, 1, true);
                }
                let after = info(&mut shield, &mut labo);
                let n = after.run_count() - before.run_count();
                if n > 0 {
                    let t = (after.run_time() - before.run_time()).as_nanos() as f64;
                    prog_ns[i] = Some(t / n as f64);
                }
            }
        }
        Err(e) => res
            .notes
            .push(format!("BPF run-time statistics unavailable: {e}")),
    }
    for (i, c) in cases.iter().enumerate() {
        res.rows.push(Row {
            path: c.path,
            program: c.program,
            live: c.live,
            ns: median(samples[i].clone()),
            prog_ns: prog_ns[i],
        });
    }
    drop(established);
    res
}
