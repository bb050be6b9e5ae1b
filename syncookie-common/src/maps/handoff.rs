//! What passes from XDP to TC for a checked ACK, what TC gives the kernel, and TC's memory of
//! the handshakes it handed off.

/// What XDP hands to TC in the frame's metadata for an ACK whose cookie it checked.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HandoffMeta {
    /// [`HANDOFF_MAGIC`]: metadata only our XDP program writes.
    pub magic: u32,
    /// The ACK's TSval and TSecr (0 without timestamps).
    pub tsval: u32,
    pub tsecr: u32,
    pub mss: u16,
    /// The client's window-scale shift, or `cookie::WSCALE_NONE`.
    pub snd_wscale: u8,
    /// `META_*` bits.
    pub flags: u8,
}
const _: () = assert!(size_of::<HandoffMeta>() == 16);
pub const HANDOFF_MAGIC: u32 = 0x5c00_c1e5;
pub const META_SACK: u8 = 1 << 0;
pub const META_TS: u8 = 1 << 1;
pub const META_ECN: u8 = 1 << 2;

/// The kernel's `struct bpf_tcp_req_attrs` (include/linux/bpf.h... net/core/filter.c), the
/// argument of `bpf_sk_assign_tcp_reqsk`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReqAttrs {
    pub rcv_tsval: u32,
    pub rcv_tsecr: u32,
    pub mss: u16,
    pub rcv_wscale: u8,
    pub snd_wscale: u8,
    pub ecn_ok: u8,
    pub wscale_ok: u8,
    pub sack_ok: u8,
    pub tstamp_ok: u8,
    pub usec_ts_ok: u8,
    pub reserved: [u8; 3],
}
const _: () = assert!(size_of::<ReqAttrs>() == 20);

/// A client that sends its first data right behind its ACK (HTTP, TLS) can have both in one
/// receive batch: XDP checks, and TC sees, both before the stack has made the connection from
/// the first, so both carry a valid cookie and no socket exists yet. Handing off the second as
/// well makes the kernel build a second child, find the first in its table and drop the
/// segment: the client sends it again after its retransmission timeout (200 ms and more). So
/// TC remembers each handoff for [`HANDED_WINDOW_NS`] in [`MAP_HANDED`](super::MAP_HANDED), and a segment of the
/// same handshake within that time goes to the stack as it is, which delivers it to the socket
/// the first made. The window is far below the shortest time in which a client sends anything
/// again (a tail-loss probe: 10 ms), so a retransmission after a failed handoff is handed off
/// again. The table is per CPU (one batch is one CPU's) and direct-mapped: [`HANDED_SLOTS`]
/// slots indexed by a hash of the handshake, cheaper than a hash map's insert on every
/// handoff; a batch holds at most 64 frames, and two handshakes meeting in a slot within the
/// window only bring the old behaviour back for the first one.
pub const HANDED_SLOTS: u32 = 256;
pub const HANDED_WINDOW_NS: u64 = 5_000_000;

/// A handshake as its ACK names it (the connection and the cookie it acknowledges), and when
/// TC handed it off.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Handed {
    pub at_ns: u64,
    pub saddr: [u32; 4],
    pub daddr: [u32; 4],
    pub ack: u32,
    pub sport: u16,
    pub dport: u16,
}
const _: () = assert!(size_of::<Handed>() == 48);
