//! Fuzzing: mutated frames never crash or TX garbage; random SYN options get Linux's answer.

use std::{collections::BTreeMap, time::Instant};

use rand::{Rng, SeedableRng, rngs::StdRng};
use syncookie_common::{
    cookie::{self, Cookie, Flow, SynAttrs},
    proto::TCP_SYN,
    stats::Counter,
};
use syncookie_tests::{
    frames::{
        Segment, arp_request, expected_synack, fix_ipv4_tcp_checksums, ipv4_offset, parse_synack,
        tcp6, udp4,
    },
    require_root,
};

use crate::{
    CLIENT_PORT, CONFIG, KEY1, PORT, XDP_DROP, XDP_PASS, XDP_TX,
    expect::{Want, cookie_for, expected_options, handshake_ack, linux_syn, synack_of_linux_syn},
    harness::{Shield, XdpRun, action_name, assert_action, assert_untouched},
    window,
};

const FUZZ_RUNS: usize = 30_000;
const RANDOM_SYNS: usize = 5_000;

/// Valid frames the fuzzer starts from.
fn fuzz_corpus(s: &Shield) -> Vec<Vec<u8>> {
    let (isn, tsval) = synack_of_linux_syn(s);
    vec![
        linux_syn().frame(),
        linux_syn().with_vlans(&[5, 6]).frame(),
        Segment::syn(CLIENT_PORT, PORT, 99).frame(),
        handshake_ack(&linux_syn(), isn, Some(tsval)).frame(),
        handshake_ack(&linux_syn(), isn ^ 0x100, None).frame(),
        udp4(1, PORT, &[0; 8]),
        tcp6(&linux_syn()),
        arp_request(),
    ]
}

/// TCP option bytes: known options with random values, in random order, mixed with garbage.
fn random_tcp_options(rng: &mut StdRng) -> Vec<u8> {
    let target = rng.random_range(0..=10) * 4;
    let mut o = Vec::new();
    while o.len() < target {
        match rng.random_range(0..9) {
            0 => o.extend([2, 4, rng.random(), rng.random()]),
            1 => o.extend([4, 2]),
            2 => {
                o.extend([8, 10]);
                o.extend(rng.random::<[u8; 8]>());
            }
            3 => o.extend([3, 3, rng.random_range(0..20)]),
            4 => o.push(1),
            5 => o.push(0),
            6 => o.extend([rng.random_range(5..40), rng.random_range(0..45)]),
            7 => o.extend([19, 18]),
            _ => o.push(rng.random()),
        }
    }
    o.truncate(target);
    o
}

/// A SYN-like segment with random options, IP options, flags, payload and tags.
fn random_syn_segment(rng: &mut StdRng) -> Segment {
    let mut seg = Segment::syn(rng.random(), PORT, rng.random());
    if rng.random_bool(0.3) {
        seg.flags = rng.random();
    }
    seg.raw_options = Some(random_tcp_options(rng));
    seg.window = rng.random();
    seg.ttl = rng.random();
    if rng.random_bool(0.2) {
        seg.ip_options = vec![1; rng.random_range(1..=10) * 4];
    }
    if rng.random_bool(0.2) {
        seg.payload = (0..rng.random_range(1..64)).map(|_| rng.random()).collect();
    }
    let tags: Vec<u16> = (0..rng.random_range(0..=2))
        .map(|_| rng.random_range(1..4095))
        .collect();
    seg.with_vlans(&tags)
}

/// [`random_syn_segment`] as a frame, checksums right.
fn random_syn(rng: &mut StdRng) -> Vec<u8> {
    random_syn_segment(rng).frame()
}

fn mutate(rng: &mut StdRng, mut f: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.random_range(1..=6) {
        let i = rng.random_range(0..f.len());
        f[i] = rng.random();
    }
    f
}

/// One fuzzed frame (at least 14 bytes: the kernel's minimum) and how it was made.
fn fuzz_frame(rng: &mut StdRng, corpus: &[Vec<u8>]) -> (&'static str, Vec<u8>) {
    let base = corpus[rng.random_range(0..corpus.len())].clone();
    let len = base.len();
    match rng.random_range(0..7) {
        0 => (
            "random bytes",
            (0..rng.random_range(14..160))
                .map(|_| rng.random())
                .collect(),
        ),
        1 => ("bytes flipped", mutate(rng, base)),
        2 => ("truncated", base[..rng.random_range(14..len)].to_vec()),
        3 => {
            let mut f = base;
            f.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>()));
            ("trailing bytes", f)
        }
        4 => {
            let f = mutate(rng, base);
            (
                "flipped and truncated",
                f[..rng.random_range(14..=len)].to_vec(),
            )
        }
        5 => ("random SYN", random_syn(rng)),
        _ => {
            let syn = random_syn(rng);
            let mut f = mutate(rng, syn);
            if ipv4_offset(&f).is_some() && rng.random_bool(0.5) {
                fix_ipv4_tcp_checksums_lax(&mut f);
            }
            ("random SYN, flipped, checksums fixed", f)
        }
    }
}

/// Fixes checksums when the (mutated) headers still describe a frame that holds them.
fn fix_ipv4_tcp_checksums_lax(f: &mut [u8]) {
    let Some(l3) = ipv4_offset(f) else { return };
    let ihl = usize::from(f.get(l3).copied().unwrap_or(0) & 0x0f) * 4;
    let Some(tot) = f
        .get(l3 + 2..l3 + 4)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    else {
        return;
    };
    if ihl >= 20 && tot >= ihl + 20 && l3 + tot <= f.len() {
        fix_ipv4_tcp_checksums(f);
    }
}

/// Whatever was fuzzed, a TX must be a well-formed SYN-ACK answering the input's flow, carrying
/// a cookie our own codec accepts for that flow.
fn check_fuzzed_reply(input: &[u8], run: &XdpRun) -> Result<(), String> {
    let r = parse_synack(&run.frame)?;
    if !run.meta.is_empty() {
        return Err("metadata on a TX".into());
    }
    let l3 = ipv4_offset(input).ok_or("TX of a frame that is not IPv4")?;
    let ihl = usize::from(input[l3] & 0x0f) * 4;
    let be16 = |at: usize| u16::from_be_bytes([input[at], input[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes(input[at..at + 4].try_into().unwrap());
    let (src, dst) = (be32(l3 + 12), be32(l3 + 16));
    let (sport, dport, seq) = (be16(l3 + ihl), be16(l3 + ihl + 2), be32(l3 + ihl + 4));
    let checks = [
        (
            "MACs swapped",
            r.eth.destination[..] == input[6..12] && r.eth.source[..] == input[..6],
        ),
        ("tags kept", run.frame[12..l3] == input[12..l3]),
        (
            "addresses swapped",
            (r.ip.source, r.ip.destination) == (dst.to_be_bytes(), src.to_be_bytes()),
        ),
        (
            "ports swapped",
            (r.tcp.source_port, r.tcp.destination_port) == (dport, sport),
        ),
        (
            "ack = seq + 1",
            r.tcp.acknowledgment_number == seq.wrapping_add(1),
        ),
        ("TTL", r.ip.time_to_live == CONFIG.ttl),
        (
            "window",
            r.tcp.window_size == window(r.timestamps().is_some()),
        ),
    ];
    if let Some((what, _)) = checks.iter().find(|(_, ok)| !ok) {
        return Err(format!("{what}: {r:?}"));
    }
    let flow = Flow::v4(src, dst, sport, dport);
    let tsecr = r.timestamps().map(|(val, _)| val);
    cookie::check(&KEY1, &flow, seq, r.tcp.sequence_number, tsecr)
        .map(|_| ())
        .ok_or_else(|| format!("the SYN-ACK's cookie does not check: {r:?}"))
}

fn fuzz_seed() -> u64 {
    std::env::var("SYNCOOKIE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random)
}

#[test]
fn fuzzed_frames_never_crash_or_tx_garbage() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen();
    let seed = fuzz_seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let corpus = fuzz_corpus(&s);
    let started = Instant::now();
    let mut verdicts = BTreeMap::new();
    for i in 0..FUZZ_RUNS {
        let (how, input) = fuzz_frame(&mut rng, &corpus);
        let run = s.xdp(&input);
        let what = || format!("run {i} ({how}; SYNCOOKIE_FUZZ_SEED={seed}) on {input:02x?}");
        match run.action {
            XDP_PASS | XDP_DROP => {}
            XDP_TX => check_fuzzed_reply(&input, &run)
                .unwrap_or_else(|e| panic!("{}: bad SYN-ACK: {e}", what())),
            a => panic!("{}: {}", what(), action_name(a)),
        }
        *verdicts.entry(action_name(run.action)).or_insert(0u64) += 1;
    }
    eprintln!(
        "{FUZZ_RUNS} fuzzed frames in {:?} (seed {seed}): {verdicts:?}",
        started.elapsed()
    );
    let tx = verdicts.get("XDP_TX").copied().unwrap_or(0);
    assert!(
        tx > 0,
        "no fuzzed frame was answered: the TX path went untested (seed {seed})"
    );
    // The corpus's own SYN went out too.
    assert_eq!(
        s.counters().get(Counter::SynackSent),
        tx + 1,
        "synack_sent vs TX verdicts"
    );
}

/// A SYN's options as Linux's tcp_parse_options() reads them, within the program's documented
/// budget of 8 option items (a NOP pair counts as one; see parse::MAX_OPTION_ITEMS).
#[derive(Debug, Default)]
struct Offer {
    mss: u16,
    wscale: Option<u8>,
    sack: bool,
    tsval: Option<u32>,
    /// TCP-MD5, TCP-AO or MPTCP: the kernel's business.
    kernel_only: bool,
}

fn parse_offer(opts: &[u8]) -> Offer {
    let mut o = Offer::default();
    let mut i = 0;
    for _ in 0..8 {
        let Some(&kind) = opts.get(i) else { break };
        match kind {
            0 => break,
            1 => i += if opts.get(i + 1) == Some(&1) { 2 } else { 1 },
            _ => {
                let len = usize::from(opts.get(i + 1).copied().unwrap_or(0));
                if len < 2 || i + len > opts.len() {
                    break;
                }
                let body = &opts[i + 2..i + len];
                match (kind, len) {
                    // Linux ignores an MSS of 0.
                    (2, 4) if body != [0, 0] => o.mss = u16::from_be_bytes([body[0], body[1]]),
                    (3, 3) => o.wscale = Some(body[0]),
                    (4, 2) => o.sack = true,
                    (8, 10) => o.tsval = Some(u32::from_be_bytes(body[..4].try_into().unwrap())),
                    (19 | 29 | 30, _) => o.kernel_only = true,
                    _ => {}
                }
                i += len;
            }
        }
    }
    o
}

/// The SYN-ACK the program must send for `syn` (offering `o`), given the TSval it chose.
fn expected_reply(syn: &Segment, o: &Offer, reply_tsval: u32) -> (Vec<u8>, Cookie) {
    let client_mss = if o.mss == 0 {
        536
    } else {
        o.mss.min(CONFIG.mss_v4)
    };
    let a = SynAttrs {
        mss_idx: cookie::mss_index(false, client_mss),
        wscale: cookie::wscale_field(o.wscale),
        sack: o.sack,
        ecn: false,
    };
    let c = cookie_for(&KEY1, syn, a, o.tsval.is_some());
    let want = Want {
        ece: false,
        sack: o.sack,
        tsecr: o.tsval,
        wscale: o.wscale.is_some(),
    };
    let tsval = (reply_tsval & !0xff) | u32::from(c.ts_bits);
    let opts = expected_options(&want, tsval);
    let frame = expected_synack(
        syn,
        c.isn,
        window(o.tsval.is_some()),
        CONFIG.ttl,
        false,
        &opts,
    );
    (frame, c)
}

/// Differential: SYNs with random options (known ones with random values, in random order,
/// garbage, MD5), random IP options, payload and VLAN tags must get exactly the SYN-ACK that
/// Linux's reading of the options implies, or pass when they carry TCP-MD5/AO/MPTCP.
#[test]
fn random_syn_options_get_the_answer_linux_parsing_implies() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen();
    let seed = fuzz_seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tx = 0;
    for i in 0..RANDOM_SYNS {
        let syn = random_syn_segment(&mut rng).with_flags(TCP_SYN);
        let input = syn.frame();
        let offer = parse_offer(syn.raw_options.as_deref().unwrap_or_default());
        let run = s.xdp(&input);
        let what = format!("SYN {i} (SYNCOOKIE_FUZZ_SEED={seed}), {offer:?}: {input:02x?}");
        if offer.kernel_only {
            assert_untouched(&run, &input, XDP_PASS, &what);
            continue;
        }
        assert_action(&run, XDP_TX, &what);
        let reply_tsval = parse_synack(&run.frame)
            .ok()
            .and_then(|r| r.timestamps())
            .map_or(0, |(v, _)| v);
        let (want, _) = expected_reply(&syn, &offer, reply_tsval);
        assert_eq!(run.frame, want, "{what}: SYN-ACK");
        tx += 1;
    }
    assert!(
        tx > RANDOM_SYNS / 2,
        "only {tx} SYNs answered (seed {seed})"
    );
}
