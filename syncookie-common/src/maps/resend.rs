//! SYN-ACKs the daemon sends again when the handshake's last ACK does not come.

/// The kernel re-sends a SYN-ACK when the handshake's last ACK does not come (1 s, then 2 s
/// later...): a client whose ACK was lost is established and waits for the server, which a
/// server-first protocol (SSH, SMTP, FTP, IMAP, MySQL) never speaks without that ACK. A cookie
/// server keeps no state; instead XDP remembers each SYN-ACK it sends in [`MAP_RESEND`](super::MAP_RESEND), an LRU
/// table of [`RESEND_ENTRIES`], at most [`RESEND_PER_SEC`] new entries per second and CPU (a
/// flood fills no more), and forgets it when the ACK's cookie checks. The daemon sends what
/// is still there after [`RESEND_AFTER_NS`] again (the same frame, so the same cookie and
/// TSval), once more [`RESEND_AGAIN_NS`] after that, then forgets it. The client answers the
/// repeated SYN-ACK with its ACK again (RFC 9293 3.10.7.4; RFC 5961's challenge ACK).
pub const RESEND_ENTRIES: u32 = 16384;
pub const RESEND_PER_SEC: u32 = 2048;
pub const RESEND_AFTER_NS: u64 = 1_000_000_000;
pub const RESEND_AGAIN_NS: u64 = 2_000_000_000;
/// Room for the longest SYN-ACK we write: Ethernet, two VLAN tags, IPv6, TCP with 20 bytes of
/// options (102 bytes).
pub const RESEND_FRAME: usize = 112;

/// A SYN-ACK's connection, as the SYN and the ACK name it (the client's side first).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ResendKey {
    pub saddr: [u32; 4],
    pub daddr: [u32; 4],
    pub sport: u16,
    pub dport: u16,
}
const _: () = assert!(size_of::<ResendKey>() == 36);

/// A SYN-ACK to send again: its frame as XDP sent it, where and when.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resend {
    /// CLOCK_MONOTONIC (coarse) when it was first sent.
    pub sent_ns: u64,
    pub ifindex: u32,
    pub len: u16,
    /// Times the daemon has sent it again.
    pub tries: u8,
    pub _pad: u8,
    pub frame: [u8; RESEND_FRAME],
}
const _: () = assert!(size_of::<Resend>() == 128);
