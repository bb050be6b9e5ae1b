/// The SYN's TCP checksum check (taken as valid).
pub const CHECKSUM: u32 = 1 << 0;
/// The SYN's option walk, its scratch pass and the past-the-walk check (a Linux SYN's
/// options taken instead: MSS 1460, SACK, timestamps, window scale 7).
pub const OPTIONS: u32 = 1 << 1;
/// The kernel's checks before TCP: martian sources, IPv4 header, source routes, IP options.
pub const MARTIAN: u32 = 1 << 2;
/// The socket lookup (SYN and ACK: a listener taken as found).
pub const LOOKUP: u32 = 1 << 3;
/// Locality: for this host (MAC, destination), from this host, the rp_filter mirror.
pub const LOCALITY: u32 = 1 << 4;
/// The SYN-ACK budgets (SYN: taken; ACK: refunded) and `auto`'s bookkeeping of completed
/// handshakes.
pub const BUDGET: u32 = 1 << 5;
/// The resend table (SYN: remembered; ACK: forgotten).
pub const RESEND: u32 = 1 << 6;
/// The ACK's XDP metadata for TC.
pub const METADATA: u32 = 1 << 7;
/// The per-CPU counter at the exit.
pub const COUNTERS: u32 = 1 << 8;
