//! Map names and the `#[repr(C)]` values the eBPF program and userspace exchange. Every struct is
//! padding-free (fields in size order) and its size is asserted, so both sides agree byte for byte.

/// Names of the maps and programs as they appear in the object and under the pin directory.
pub const MAP_CONFIG: &str = "SC_CONFIG";
pub const MAP_EPOCH: &str = "SC_EPOCH";
pub const MAP_KEYS: &str = "SC_KEYS";
pub const MAP_PORTS: &str = "SC_PORTS";
pub const MAP_STATS: &str = "SC_STATS";
pub const MAP_LOCAL_ADDRS: &str = "SC_LOCAL_ADDRS";
pub const MAP_LOCAL_MACS: &str = "SC_LOCAL_MACS";
/// The fast path of the locality check (see [`LocalHints`]).
pub const MAP_LOCAL_HINTS: &str = "SC_LOCAL_HINTS";
/// The interface's reverse-path filter, mirrored (see [`RPF_PASSES`]).
pub const MAP_RPF: &str = "SC_RPF";
pub const MAP_RPF_ON: &str = "SC_RPF_ON";
pub const MAP_BUDGET: &str = "SC_BUDGET";
pub const MAP_AUTO: &str = "SC_AUTO";
pub const MAP_PREFIX_BUDGET: &str = "SC_PREFIX_BUDGET";
pub const MAP_SYNACK_BUDGET: &str = "SC_SYNACK_BUDGET";
pub const MAP_NO_META: &str = "SC_NO_META";
/// Per-CPU scratch space: the XDP program passes parsed values through it so that the verifier
/// checks what follows once (see `forget` in the eBPF crate).
pub const MAP_SCRATCH: &str = "SC_SCRATCH";
/// aya-log's ring buffer: the programs' own messages (rare events), read by the daemon.
pub const MAP_LOGS: &str = "AYA_LOGS";
/// Kernel-cookie mode (see [`kernel_cookies`]).
pub const MAP_KC_CONF: &str = "SC_KC_CONF";
pub const MAP_KC_REFRESH: &str = "SC_KC_REFRESH";
/// Kernel-cookie mode's tail call to its SYN-ACK writer with options, and its per-CPU scratch
/// (the stamp probe's ACK header, the cookie handed to the tail call).
pub const MAP_KC_TAIL: &str = "SC_KC_TAIL";
pub const MAP_KC_SCRATCH: &str = "SC_KC_SCRATCH";
/// SYN-ACKs sent recently, for the daemon to send again when no ACK came (see [`Resend`]).
pub const MAP_RESEND: &str = "SC_RESEND";
/// `auto` mode's count of SYNs no handshake answered this second, shared by the CPUs.
pub const MAP_AUTO_UNANSWERED: &str = "SC_AUTO_UNANSWERED";
pub const MAP_RESEND_BUDGET: &str = "SC_RESEND_BUDGET";
pub const MAP_RESEND_SCRATCH: &str = "SC_RESEND_SCRATCH";
pub const MAP_RESEND_KEY: &str = "SC_RESEND_KEY";
/// Handshakes TC handed off a moment ago (see [`Handed`]).
pub const MAP_HANDED: &str = "SC_HANDED";
/// A load-time constant of the shield's object: the stages the bench leaves out, one at a time,
/// to price them (see [`stage`]). 0, the default, keeps every stage, and the verifier removes
/// the checks of a constant: production programs are unchanged by them.
pub const GLOBAL_SKIP: &str = "SC_SKIP";

/// The stages of the SYN and ACK paths [`GLOBAL_SKIP`] can leave out (bits).
pub mod stage;

mod handoff;
mod local;
mod resend;

pub use handoff::*;
pub use local::*;
pub use resend::*;

/// Every map of the shield's object.
pub const SHIELD_MAPS: &[&str] = &[
    MAP_CONFIG,
    MAP_EPOCH,
    MAP_KEYS,
    MAP_PORTS,
    MAP_STATS,
    MAP_BUDGET,
    MAP_AUTO,
    MAP_PREFIX_BUDGET,
    MAP_SYNACK_BUDGET,
    MAP_NO_META,
    MAP_SCRATCH,
    MAP_LOGS,
    MAP_LOCAL_ADDRS,
    MAP_LOCAL_MACS,
    MAP_LOCAL_HINTS,
    MAP_RPF,
    MAP_RPF_ON,
    MAP_KC_CONF,
    MAP_KC_REFRESH,
    MAP_KC_TAIL,
    MAP_KC_SCRATCH,
    MAP_RESEND,
    MAP_RESEND_BUDGET,
    MAP_RESEND_SCRATCH,
    MAP_RESEND_KEY,
    MAP_AUTO_UNANSWERED,
    MAP_HANDED,
];
pub const PROG_XDP: &str = "syncookie_xdp";
/// The same program built as an `freplace` extension, for a slot of libxdp's multi-program
/// dispatcher (the kernel keeps 15 characters of a program's name: this one fits).
pub const PROG_XDP_EXT: &str = "syncookie_ext";
/// Pinned bpf_links (next to the maps): the shield stays attached if the daemon dies, and the
/// next `run` takes the links over and swaps its programs in atomically.
pub const LINK_XDP: &str = "link_xdp";
pub const LINK_TC: &str = "link_tc";
pub const PROG_TC: &str = "syncookie_tc";
/// The kfunc the TC program calls; exported through bpf-linker, patched in before load.
pub const KFUNC_ASSIGN_REQSK: &str = "bpf_sk_assign_tcp_reqsk";

/// Kernel-cookie mode, for kernels without [`KFUNC_ASSIGN_REQSK`] (6.0-6.8): the XDP program
/// answers SYNs with the kernel's own cookies (`bpf_tcp_raw_gen_syncookie_ipv4`) and passes
/// ACKs that carry one to the kernel, which makes the connection in `cookie_v4_check()` if the
/// listener's overflow stamp is recent. One SYN per local address and port every
/// `SC_KC_CONF[KC_REFRESH_NS]` goes to the kernel (tcp_syncookies=2: it answers with a cookie
/// and renews the stamp); so does every SYN while the kernel would refuse our cookies.
pub mod kernel_cookies {
    pub const PROG_XDP: &str = "syncookie_kc_xdp";
    /// The SYN-ACK with every option (tcp_timestamps=2), reached by a tail call from
    /// [`PROG_XDP`] through `SC_KC_TAIL[0]`: a program of its own, so that the verifier checks
    /// the option walk apart from the rest (together they passed its 1M budget).
    pub const PROG_SYNACK: &str = "syncookie_kc_synack";
    /// Its `freplace` twin for libxdp's dispatcher (see [`super::PROG_XDP_EXT`]).
    pub const PROG_XDP_EXT: &str = "syncookie_kcext";
    /// A load-time constant of the shield's object: 1 where the raw cookie helpers (6.0+) are
    /// missing (Linux 5.x): cookies are made and checked on the listener
    /// (`bpf_tcp_gen_syncookie`, which stamps its overflow: no refresh SYNs), the fine clock
    /// stands in for the coarse one (5.11+), and MPTCP listeners are taken as plain ones
    /// (`bpf_skc_to_mptcp_sock` is 5.19+). 0, the default, keeps the 6.x programs as they are.
    pub const GLOBAL_LISTENER: &str = "SC_KC_LISTENER";
    /// `SC_KC_CONF` index: nanoseconds between refresh SYNs per address and port.
    pub const KC_REFRESH_NS: u32 = 0;
    pub const KC_CONF_LEN: u32 = 1;
    /// The stamp lasts 120 s (TCP_SYNCOOKIE_VALID); a refresh every 30 s leaves 90 s of margin.
    pub const DEFAULT_REFRESH_SECS: u64 = 30;
    /// `SC_KC_REFRESH`: (destination << 16 | port) -> when a SYN last went to the kernel. An
    /// IPv6 destination is folded to 32 bits: two addresses that collide share a refresh
    /// period, and a SYN the kernel would refuse our cookie for goes to it anyway.
    pub const REFRESH_ENTRIES: u32 = 4096;

    /// `daddr`: big-endian words, IPv4 in `[0]` and the rest zero.
    #[inline(always)]
    pub const fn refresh_key(daddr: &[u32; 4], dport: u16) -> u64 {
        let folded = daddr[0] ^ daddr[1] ^ daddr[2] ^ daddr[3];
        ((folded as u64) << 16) | dport as u64
    }
}

/// A cookie key. `epoch` 0 marks an empty slot.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Key {
    pub k0: u64,
    pub k1: u64,
    pub epoch: u64,
}
const _: () = assert!(size_of::<Key>() == 24);

/// Secrets never reach logs: only the epoch is shown.
impl core::fmt::Debug for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Key")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// `SC_KEYS` entries: the two slots a cookie can name, and the key that last left a slot (kept
/// only to tell an expired cookie from a forged one in the counters).
pub const KEY_SLOTS: u32 = 2;
pub const KEY_RETIRED: u32 = 2;
pub const KEYS_LEN: u32 = 3;

/// `SC_PORTS`: a bitmap of protected TCP ports, 32 ports per entry.
pub const PORTS_LEN: u32 = 65536 / 32;

#[inline(always)]
pub const fn port_word(port: u16) -> (u32, u32) {
    ((port >> 5) as u32, 1 << (port & 31))
}

/// `SC_CONFIG` flags.
pub mod flags {
    /// Offer timestamps when the client does (net.ipv4.tcp_timestamps).
    pub const TIMESTAMPS: u32 = 1 << 0;
    /// Offer SACK when the client does (net.ipv4.tcp_sack).
    pub const SACK: u32 = 1 << 1;
    /// Offer window scaling when the client does (net.ipv4.tcp_window_scaling).
    pub const WSCALE: u32 = 1 << 2;
    /// Accept ECN when the client asks (net.ipv4.tcp_ecn != 0).
    pub const ECN: u32 = 1 << 3;
    /// TC re-checks cookies itself when no XDP metadata arrives: set by the daemon for generic
    /// XDP; native drivers without metadata room are detected by the XDP program itself
    /// (`SC_NO_META`).
    pub const TC_RECHECK: u32 = 1 << 4;
    /// Keys are derived from a fleet master key and the wall clock: `syncookie rotate` must not
    /// put a random key in (the other hosts would not have it).
    pub const FLEET: u32 = 1 << 5;
    /// Protect IPv6 too: set unless IPv6 is disabled on the interface (then its frames, which
    /// the kernel drops, pass untouched and count as not inspected).
    pub const IPV6: u32 = 1 << 6;
    /// Kernel-cookie mode: the kernel's own cookies (`syncookie_kc_xdp`), no TC program.
    pub const KERNEL_COOKIES: u32 = 1 << 7;
    /// Kernel-cookie mode with net.ipv4.tcp_timestamps=2: SYN-ACKs to timestamp clients carry
    /// window scaling, SACK and ECN in the kernel's own timestamp cookie (`kernel_ts`).
    pub const KERNEL_TS: u32 = 1 << 8;
}

/// `SC_CONFIG[0]`: how to answer, set by the daemon from the kernel's settings.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub flags: u32,
    /// Handshake ACKs with a bad or expired cookie passed to the kernel per second and CPU, so
    /// that it resets them as it would without us (a client with a stale cookie learns at once);
    /// beyond this budget they are dropped (we are not a reflector).
    pub rst_per_sec: u32,
    /// `auto` mode: SYNs per second and CPU to protected ports that engage the shield (it stays
    /// engaged while they stay above half of it, and [`AUTO_HOLD_NS`] after).
    pub engage_per_sec: u32,
    /// SYN-ACK budget: per second and CPU in all (0: no limit), and per second to one client
    /// prefix (/24 for IPv4, /48 for IPv6; 0: no limit). SYNs beyond it are dropped: we are no reflector.
    pub synack_per_sec: u32,
    pub synack_per_prefix: u32,
    /// The (unscaled) window of our SYN-ACK, as the kernel computes it for its own
    /// (tcp_openreq_init_rwin()): the receive space rounded down to a multiple of the MSS less
    /// the timestamp option, so it differs with and without timestamps.
    pub window: u16,
    pub window_ts: u16,
    /// Our own MSS, advertised in the SYN-ACK, per family.
    pub mss_v4: u16,
    pub mss_v6: u16,
    /// The window-scale shift we advertise and hand to the kernel (`rcv_wscale`).
    pub wscale: u8,
    /// TTL of the IPv4 SYN-ACK (net.ipv4.ip_default_ttl).
    pub ttl: u8,
    /// [`Mode`] as a byte; the daemon changes it live (`syncookie mode`).
    pub mode: u8,
    /// Hop limit of the IPv6 SYN-ACK (the interface's net.ipv6.conf.IF.hop_limit).
    pub hop_limit: u8,
    /// The IPv6 SYN-ACK's windows, as `window`/`window_ts` for `mss_v6`: the kernel rounds the
    /// receive space to the family's MSS, so they differ from IPv4's (64800/64260 at MTU 1500).
    pub window_v6: u16,
    pub window_ts_v6: u16,
}
const _: () = assert!(size_of::<Config>() == 36);

/// How the shield treats SYNs.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every SYN to a protected port gets a cookie.
    Always = 0,
    /// SYNs go to the kernel until their rate passes `engage_per_sec`, then cookies.
    Auto = 1,
    /// Nothing answered, nothing dropped: the counters say what would have been done.
    Monitor = 2,
}

impl Mode {
    pub const fn from_u8(v: u8) -> Option<Mode> {
        match v {
            0 => Some(Mode::Always),
            1 => Some(Mode::Auto),
            2 => Some(Mode::Monitor),
            _ => None,
        }
    }
}

/// How long `auto` stays engaged after the SYN rate fell below half the threshold.
pub const AUTO_HOLD_NS: u64 = 10_000_000_000;

/// `SC_AUTO`, per CPU: the SYN rate of the current second (2^30 ns units) and until when the
/// shield is engaged (coarse ns).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AutoState {
    pub second: u64,
    pub syns: u64,
    pub engaged_until: u64,
}
const _: () = assert!(size_of::<AutoState>() == 24);

/// `SC_PREFIX_BUDGET` entries (an LRU hash keyed by the client prefix): SYN-ACKs sent to the
/// prefix in the current second. Shared by the CPUs (approximate under races).
pub const PREFIX_BUDGET_ENTRIES: u32 = 65536;

/// `SC_BUDGET`: per CPU, the current second (in 2^30 ns units) and the bad ACKs passed in it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    pub second: u64,
    pub used: u64,
}
const _: () = assert!(size_of::<Budget>() == 16);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: as below.
    unsafe impl aya::Pod for super::ResendKey {}
    // SAFETY: as below.
    unsafe impl aya::Pod for super::Resend {}
    // SAFETY: plain-old-data, repr(C), no padding (sizes asserted above).
    unsafe impl aya::Pod for super::Key {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Config {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::HandoffMeta {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::AutoState {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::LocalHints {}
}
