//! Fuzzing: mutated frames never crash or TX garbage; random SYN options get Linux's answer.

use std::{collections::BTreeMap, time::Instant};

use rand::{Rng, SeedableRng, rngs::StdRng};
use syncookie::observe::counters;
use syncookie_common::{
    cookie::{self, Cookie, Flow, SynAttrs},
    maps::{Config, flags},
    proto::{TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN},
    stats::Counter,
};
use syncookie_tests::{
    frames::{
        Segment, arp_request, expected_synack, fix_ipv4_tcp_checksums, ipv4_offset, parse_synack,
        parse_synack6, tcp6, udp4,
    },
    require_root,
};

use crate::{
    CLIENT_PORT, CONFIG, KEY1, PORT, TCX_NEXT, XDP_DROP, XDP_PASS, XDP_TX,
    expect::{Want, cookie_for, expected_options, handshake_ack, linux_syn},
    harness::{Shield, XdpRun, action_name, assert_action, assert_untouched},
    window,
};

/// Fuzzed frames through XDP and TC (at least 100,000: rare paths need volume), besides the
/// sweep of every truncation of every corpus frame.
const FUZZ_RUNS: usize = 100_000;
const RANDOM_SYNS: usize = 5_000;

/// IPv6 extension headers for the corpus (the kernel's to judge, never answered): hop-by-hop and
/// destination options (PadN), a routing header with no segments left.
fn ext_chain() -> Vec<(u8, Vec<u8>)> {
    vec![
        (0, vec![1, 4, 0, 0, 0, 0]),
        (43, vec![4, 0, 0, 0, 0, 0]),
        (60, vec![1, 4, 0, 0, 0, 0]),
    ]
}

/// The ISN and TSval of the SYN-ACK the shield sends for `syn`.
fn reply_to(s: &Shield, syn: &Segment) -> (u32, u32) {
    let run = s.xdp(&syn.frame());
    assert_action(&run, XDP_TX, "a corpus SYN");
    if syn.ip6.is_some() {
        let r = parse_synack6(&run.frame).unwrap_or_else(|e| panic!("SYN-ACK: {e}"));
        (r.tcp.sequence_number, r.timestamps().expect("timestamps").0)
    } else {
        let r = parse_synack(&run.frame).unwrap_or_else(|e| panic!("SYN-ACK: {e}"));
        (r.tcp.sequence_number, r.timestamps().expect("timestamps").0)
    }
}

/// Valid frames the fuzzer starts from: IPv4 and IPv6 SYNs (VLAN tags, IP options, extension
/// headers, partial checksums), their valid ACKs, a bad ACK, UDP, ARP.
fn fuzz_corpus(s: &Shield) -> Vec<Vec<u8>> {
    let mut with_options = linux_syn();
    with_options.ip_options = vec![1; 8];
    let syns = [
        linux_syn(),
        linux_syn().with_vlans(&[5, 6]),
        with_options,
        linux_syn().v6(),
        linux_syn().v6().with_vlans(&[7]),
        linux_syn().with_ext(&ext_chain()),
    ];
    let mut corpus: Vec<Vec<u8>> = syns.iter().map(Segment::frame).collect();
    for syn in &syns[..4] {
        let (isn, tsval) = reply_to(s, syn);
        corpus.push(handshake_ack(syn, isn, Some(tsval)).frame());
    }
    corpus.extend([
        linux_syn().frame_with_partial_checksum(),
        Segment::syn(CLIENT_PORT, PORT, 99).frame(),
        handshake_ack(&linux_syn(), 0x1234_5678, None).frame(),
        udp4(1, PORT, &[0; 8]),
        tcp6(&linux_syn()),
        arp_request(),
    ]);
    corpus
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

/// A random IPv6 extension chain: up to 5 headers (hop-by-hop, routing, destination options,
/// fragment, AH, unknown), random lengths and contents.
fn random_ext_chain(rng: &mut StdRng) -> Vec<(u8, Vec<u8>)> {
    (0..rng.random_range(0..=5))
        .map(|_| {
            let kind = [0, 43, 60, 60, 44, 51, 135][rng.random_range(0..7)];
            let len = rng.random_range(0..4) * 8 + 6;
            (kind, (0..len).map(|_| rng.random()).collect())
        })
        .collect()
}

/// A SYN-like IPv4 segment with random options, IP options, flags, payload and tags.
fn random_syn_v4(rng: &mut StdRng) -> Segment {
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

/// [`random_syn_v4`], or the same over IPv6 with a random extension chain.
fn random_syn_segment(rng: &mut StdRng) -> Segment {
    let seg = random_syn_v4(rng);
    if rng.random_bool(0.3) {
        seg.with_ext(&random_ext_chain(rng))
    } else {
        seg
    }
}

fn mutate(rng: &mut StdRng, mut f: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.random_range(1..=6) {
        let i = rng.random_range(0..f.len());
        f[i] = rng.random();
    }
    f
}

/// Sets a random 16-bit length field (IPv4 total length, IPv6 payload length) to a random value.
fn bad_length(rng: &mut StdRng, mut f: Vec<u8>) -> Vec<u8> {
    if let Some((l3, v6)) = l3_of(&f) {
        let at = if v6 { l3 + 4 } else { l3 + 2 };
        if at + 2 <= f.len() {
            let v: u16 = match rng.random_range(0..3) {
                0 => rng.random(),
                1 => (f.len() - l3) as u16 + rng.random_range(1..40),
                _ => rng.random_range(0..40),
            };
            f[at..at + 2].copy_from_slice(&v.to_be_bytes());
        }
    }
    f
}

/// One fuzzed frame (at least 14 bytes: the kernel's minimum) and how it was made.
fn fuzz_frame(rng: &mut StdRng, corpus: &[Vec<u8>]) -> (&'static str, Vec<u8>) {
    let base = corpus[rng.random_range(0..corpus.len())].clone();
    let len = base.len();
    match rng.random_range(0..9) {
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
        5 => ("bad length", bad_length(rng, base)),
        6 => ("random SYN", random_syn_segment(rng).frame()),
        7 => {
            let seg = random_syn_segment(rng);
            (
                "random SYN, partial checksum",
                seg.frame_with_partial_checksum(),
            )
        }
        _ => {
            let syn = random_syn_segment(rng).frame();
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

/// Whether the frame's own EtherType is IPv4 or IPv6 and the frame ends inside that header.
fn ip_header_cut(f: &[u8]) -> bool {
    match u16::from_be_bytes([f[12], f[13]]) {
        0x0800 => f.len() < 14 + 20,
        0x86dd => f.len() < 14 + 40,
        _ => false,
    }
}

/// The IP header's offset past up to two VLAN tags, and whether it is IPv6 (by EtherType).
fn l3_of(f: &[u8]) -> Option<(usize, bool)> {
    let mut at = 12;
    for _ in 0..=2 {
        let et = u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]);
        match et {
            0x8100 | 0x88a8 => at += 4,
            0x0800 => return Some((at + 2, false)),
            0x86dd => return Some((at + 2, true)),
            _ => return None,
        }
    }
    None
}

/// The test's own reading of a frame, independent of the program's: where its TCP header is
/// (if it is TCP, not a fragment, IPv6 without extension headers: those are the kernel's), its
/// destination port and flags. Lax: lengths are not checked against the frame.
fn tcp_of(f: &[u8]) -> Option<(usize, u16, u8)> {
    let (l3, v6) = l3_of(f)?;
    let l4 = if v6 {
        (*f.get(l3 + 6)? == 6).then_some(l3 + 40)?
    } else {
        let ihl = usize::from(f.get(l3)? & 0x0f) * 4;
        let frag = u16::from_be_bytes([*f.get(l3 + 6)?, *f.get(l3 + 7)?]) & 0x3fff;
        (*f.get(l3 + 9)? == 6 && frag == 0).then_some(l3 + ihl)?
    };
    Some((
        l4,
        u16::from_be_bytes([*f.get(l4 + 2)?, *f.get(l4 + 3)?]),
        *f.get(l4 + 13)?,
    ))
}

/// Whatever was fuzzed, a TX must be a well-formed SYN-ACK (both checksums verified by the
/// parsers) answering a SYN to the protected port: MACs and addresses swapped, tags kept, the
/// ports, ack = seq + 1, TTL or hop limit and window as configured, and a cookie our own codec
/// accepts for the input's flow.
fn check_fuzzed_reply(input: &[u8], run: &XdpRun) -> Result<(), String> {
    if !run.meta.is_empty() {
        return Err("metadata on a TX".into());
    }
    let (l3, v6) = l3_of(input).ok_or("TX of a frame that is not IP")?;
    let l4 = match tcp_of(input) {
        Some((l4, PORT, f)) if f & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN) == TCP_SYN => l4,
        other => {
            return Err(format!(
                "TX of a frame that is not a SYN to the port: {other:?}"
            ));
        }
    };
    let be16 = |at: usize| u16::from_be_bytes([input[at], input[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes(input[at..at + 4].try_into().unwrap());
    let (sport, dport, seq) = (be16(l4), be16(l4 + 2), be32(l4 + 4));
    let (eth, tcp, ts, flow, ip_ok, window) = if v6 {
        let r = parse_synack6(&run.frame)?;
        let words = |at: usize| [0, 4, 8, 12].map(|i| be32(at + i));
        let swapped = r.ip.source[..] == input[l3 + 24..l3 + 40]
            && r.ip.destination[..] == input[l3 + 8..l3 + 24];
        let ts = r.timestamps();
        let window = if ts.is_some() {
            CONFIG.window_ts_v6
        } else {
            CONFIG.window_v6
        };
        let flow = Flow::v6(words(l3 + 8), words(l3 + 24), sport, dport);
        let ip_ok = swapped && r.ip.hop_limit == CONFIG.hop_limit;
        (r.eth, r.tcp, ts, flow, ip_ok, window)
    } else {
        let r = parse_synack(&run.frame)?;
        let (src, dst) = (be32(l3 + 12), be32(l3 + 16));
        let swapped = (r.ip.source, r.ip.destination) == (dst.to_be_bytes(), src.to_be_bytes());
        let ts = r.timestamps();
        let flow = Flow::v4(src, dst, sport, dport);
        let ip_ok = swapped && r.ip.time_to_live == CONFIG.ttl;
        (r.eth, r.tcp, ts, flow, ip_ok, window(ts.is_some()))
    };
    let checks = [
        (
            "MACs swapped",
            eth.destination[..] == input[6..12] && eth.source[..] == input[..6],
        ),
        ("tags kept", run.frame[12..l3] == input[12..l3]),
        ("addresses swapped, TTL or hop limit", ip_ok),
        (
            "ports swapped",
            (tcp.source_port, tcp.destination_port) == (dport, sport),
        ),
        (
            "ack = seq + 1",
            tcp.acknowledgment_number == seq.wrapping_add(1),
        ),
        ("window", tcp.window_size == window),
    ];
    if let Some((what, _)) = checks.iter().find(|(_, ok)| !ok) {
        return Err(format!("{what}: {tcp:?}"));
    }
    let tsecr = ts.map(|(val, _)| val);
    cookie::check(&KEY1, &flow, seq, tcp.sequence_number, tsecr)
        .map(|_| ())
        .ok_or_else(|| format!("the SYN-ACK's cookie does not check: {tcp:?}"))
}

/// The counters that give a frame's reason (all but `syn_seen`, which comes with another).
fn reasons(c: &counters::Snapshot) -> Vec<u64> {
    Counter::ALL
        .iter()
        .filter(|c| **c != Counter::SynSeen)
        .map(|k| c.get(*k))
        .collect()
}

/// Checks one fuzzed frame's XDP verdict and what it counted (`before` and `after` the run):
/// never aborted; a TX is a SYN-ACK to a SYN to the port; a drop is of a frame to the port and
/// counted as one; a pass leaves the frame as it was (metadata only with `ack_valid`); each
/// frame counts at most one reason, exactly one when it is a SYN or handshake ACK to the port,
/// and none but `not_inspected` when it is not to the port.
fn check_fuzzed_run(
    input: &[u8],
    run: &XdpRun,
    before: &counters::Snapshot,
    after: &counters::Snapshot,
) -> Result<(), String> {
    let d = |c: Counter| after.get(c) - before.get(c);
    let counted: u64 = reasons(after)
        .iter()
        .zip(reasons(before))
        .map(|(a, b)| a - b)
        .sum();
    let tcp = tcp_of(input);
    let ours = matches!(tcp, Some((_, PORT, _)));
    if counted > 1 || d(Counter::SynSeen) > 1 {
        return Err(format!("{counted} reasons counted for one frame"));
    }
    if let Some((_, PORT, f)) = tcp {
        let judged = f & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN) == TCP_SYN
            || (f & (TCP_SYN | TCP_RST) == 0 && f & TCP_ACK != 0);
        if judged && counted != 1 {
            return Err(format!(
                "a SYN or ACK to the port (flags {f:#x}) counted {counted}"
            ));
        }
    } else if counted != d(Counter::NotInspected) || d(Counter::SynSeen) != 0 {
        return Err("a frame not to the port counted as ours".into());
    }
    match run.action {
        XDP_TX if d(Counter::SynackSent) == 1 => check_fuzzed_reply(input, run),
        XDP_TX => Err("a TX not counted as synack_sent".into()),
        XDP_DROP if !ours => Err("dropped a frame not to the port".into()),
        XDP_DROP => {
            let why = [
                Counter::Malformed,
                Counter::AckBadCookie,
                Counter::AckExpired,
                Counter::SynDroppedBudget,
            ];
            if why.iter().map(|c| d(*c)).sum::<u64>() == 1 {
                Ok(())
            } else {
                Err("a drop not counted as one".into())
            }
        }
        XDP_PASS if run.frame != input => Err("passed a changed frame".into()),
        XDP_PASS if !run.meta.is_empty() && d(Counter::AckValid) != 1 => {
            Err("metadata without ack_valid".into())
        }
        XDP_PASS => Ok(()),
        a => Err(action_name(a)),
    }
}

fn fuzz_seed() -> u64 {
    std::env::var("SYNCOOKIE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random)
}

/// Every frame, fuzzed or a truncation, through XDP (checked by [`check_fuzzed_run`]) and both
/// ways of TC: with metadata expected it passes everything on (TCX_NEXT) unchanged and counts
/// nothing; re-checking cookies itself (TC_RECHECK) it may only count a refused handoff.
#[test]
fn fuzzed_frames_through_xdp_and_tc() {
    require_root!();
    // Each shield enters its own namespace for the thread: the one made last is where the
    // programs run (and find the listeners), so `recheck`'s TC sees `s`'s sockets.
    let recheck = Shield::with_config(Config {
        flags: CONFIG.flags | flags::TC_RECHECK,
        ..CONFIG
    });
    let s = Shield::new();
    s.enable_v6();
    let (_l, _l6) = (s.listen(), s.listen6());
    let seed = fuzz_seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let corpus = fuzz_corpus(&s);
    let truncations = corpus
        .iter()
        .flat_map(|f| (14..f.len()).map(|n| ("truncated (sweep)", f[..n].to_vec())));
    let fuzzed = (0..FUZZ_RUNS).map(|_| fuzz_frame(&mut rng, &corpus));
    let started = Instant::now();
    let mut verdicts = BTreeMap::new();
    let mut before = s.counters();
    let mut n = 0;
    for (i, (how, input)) in truncations.chain(fuzzed).enumerate() {
        let what = || format!("frame {i} ({how}; SYNCOOKIE_FUZZ_SEED={seed}) {input:02x?}");
        let run = s.xdp(&input);
        let after = s.counters();
        check_fuzzed_run(&input, &run, &before, &after)
            .unwrap_or_else(|e| panic!("{}: XDP: {e}", what()));
        before = after;
        *verdicts.entry(action_name(run.action)).or_insert(0u64) += 1;
        for (shield, name) in [(&s, "TC"), (&recheck, "TC re-checking")] {
            let (verdict, out) = match shield.try_tc(&input) {
                Ok(r) => r,
                // No skb for an IP frame cut inside its IP header: the kernel refuses the run.
                Err(_) if ip_header_cut(&input) => continue,
                Err(e) => panic!("{}: {name}: {e}", what()),
            };
            assert!(
                verdict == TCX_NEXT && out == input,
                "{}: {name} returned {verdict} and {} the frame",
                what(),
                if out == input { "kept" } else { "changed" }
            );
        }
        n += 1;
    }
    eprintln!(
        "{n} frames in {:?} (seed {seed}): {verdicts:?}",
        started.elapsed()
    );
    assert!(n >= FUZZ_RUNS);
    for v in ["XDP_TX", "XDP_DROP", "XDP_PASS"] {
        assert!(
            verdicts.get(v).copied().unwrap_or(0) > 0,
            "no fuzzed frame got {v}: that path went untested (seed {seed})"
        );
    }
    let c = s.counters();
    let handoffs = (c.get(Counter::HandoffOk), c.get(Counter::HandoffFailed));
    assert_eq!(handoffs, (0, 0), "TC without metadata: {}", c.table());
    let c = recheck.counters();
    assert_eq!(c.get(Counter::HandoffOk), 0, "{}", c.table());
}

/// A SYN's options as Linux's tcp_parse_options() reads them, within the program's documented
/// budget of 8 option items (a NOP pair counts as one; see parse::MAX_OPTION_ITEMS); anything
/// but EOL after them makes the SYN the kernel's.
#[derive(Debug, Default)]
struct Offer {
    mss: u16,
    wscale: Option<u8>,
    sack: bool,
    tsval: Option<u32>,
    /// TCP-MD5, TCP-AO or MPTCP: the kernel's business.
    kernel_only: bool,
    /// Bytes left after 8 items that do not start with EOL: the kernel's too.
    past_the_walk: bool,
}

fn parse_offer(opts: &[u8]) -> Offer {
    let mut o = Offer::default();
    let mut i = 0;
    for item in 0..=8 {
        let Some(&kind) = opts.get(i) else { break };
        if item == 8 {
            o.past_the_walk = kind != 0;
            break;
        }
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
    let client_mss = if o.mss == 0 { 536 } else { o.mss };
    let a = SynAttrs {
        mss: client_mss,
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
    let tsval = (reply_tsval & 0xff00) | c.ts_word;
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
        let syn = random_syn_v4(&mut rng).with_flags(TCP_SYN);
        let input = syn.frame();
        let offer = parse_offer(syn.raw_options.as_deref().unwrap_or_default());
        let run = s.xdp(&input);
        let what = format!("SYN {i} (SYNCOOKIE_FUZZ_SEED={seed}), {offer:?}: {input:02x?}");
        // TCP-MD5/AO/MPTCP, or an MSS below what the handoff takes (timestamps or not): the
        // kernel's.
        let small_mss = offer.mss != 0 && offer.mss < 536;
        if offer.kernel_only || small_mss || offer.past_the_walk {
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
