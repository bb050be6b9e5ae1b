//! Packet tests: the real XDP (`syncookie_xdp`) and TC (`syncookie_tc`) programs, loaded from the
//! object the daemon ships, run by `BPF_PROG_TEST_RUN` on crafted frames. Replies are taken apart
//! with etherparse and expected cookies computed with `syncookie_common::cookie`, against a key
//! the test installs. Every test runs in its own network namespace, entered by the test thread
//! (the programs' socket lookups see only that test's sockets), with its own pin directory; both
//! go away when the test ends, even on panic.
//!
//! - [`harness`]: the namespace, the pins, the loaded programs, running them, verdict checks.
//! - [`expect`]: expected cookies, SYN-ACKs and handoff metadata.
//! - [`syn`], [`ack`], [`passthrough`]: SYNs, ACKs, and what the programs must leave alone.
//! - [`locality`]: only what is for this host (its MACs, its local routes) is answered or dropped.
//! - [`fuzz`]: fuzzed frames, and random SYN options against Linux's reading of them.
//! - [`tc`]: the TC program, in test runs and with live frames through `lo`.

mod ack;
mod expect;
mod forgery;
mod fuzz;
mod harness;
mod ipv6;
mod kc_ipv6;
mod kc_listener;
mod kernel_cookies;
mod locality;
mod martian;
mod passthrough;
mod policy;
mod syn;
mod tc;

use syncookie_common::{
    maps::{Config, Key, flags},
    proto::{
        DEFAULT_TTL, DEFAULT_WINDOW, DEFAULT_WINDOW_TS, DEFAULT_WINDOW_TS_V6, DEFAULT_WINDOW_V6,
    },
};

/// The protected port, and one that is not.
const PORT: u16 = 8080;
const OTHER_PORT: u16 = 9090;
const CLIENT_PORT: u16 = 40000;
const CLIENT_ISN: u32 = 0x1234_5678;
const CLIENT_TSVAL: u32 = 0x0abc_def0;
const CLIENT_WSCALE: u8 = 7;
const MSS: u16 = 1460;

/// The key the tests install for epoch 1: expected cookies are computed with it.
const KEY1: Key = Key {
    k0: 0x0123_4567_89ab_cdef,
    k1: 0x0fed_cba9_8765_4321,
    epoch: 1,
};

/// What the daemon writes on a default Linux host: timestamps, SACK and window scaling on.
const CONFIG: Config = Config {
    flags: flags::TIMESTAMPS | flags::SACK | flags::WSCALE | flags::IPV6,
    rst_per_sec: RST_PER_SEC,
    window: DEFAULT_WINDOW,
    window_ts: DEFAULT_WINDOW_TS,
    mss_v4: MSS,
    mss_v6: 1440,
    wscale: 7,
    ttl: DEFAULT_TTL,
    engage_per_sec: 0,
    synack_per_sec: 0,
    synack_per_prefix: 0,
    mode: 0,
    hop_limit: DEFAULT_TTL,
    window_v6: DEFAULT_WINDOW_V6,
    window_ts_v6: DEFAULT_WINDOW_TS_V6,
};

/// Bad-cookie ACKs passed to the kernel per second and CPU: none, unless a test says otherwise.
const RST_PER_SEC: u32 = 0;

/// The SYN-ACK's window for a SYN with or without timestamps.
const fn window(ts: bool) -> u16 {
    if ts { CONFIG.window_ts } else { CONFIG.window }
}

const PIN_ROOT: &str = "/sys/fs/bpf/syncookie-test";

/// `enum xdp_action` (include/uapi/linux/bpf.h).
const XDP_ABORTED: u32 = 0;
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
/// `TC_ACT_UNSPEC` (-1): TCX_NEXT, the next program on the hook (or the stack) decides.
const TCX_NEXT: u32 = u32::MAX;
