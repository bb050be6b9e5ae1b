//! The syncookie daemon as a library: load and attach the programs (`bpf`), read and set what
//! the host's kernel and network decide (`host`), run the daemon's tasks (`daemon`), rotate
//! cookie keys (`keys`), read counters and state (`observe`). The `syncookie` binary is a thin
//! CLI over it (`cli`: flags, config merging, printing); the tests use it directly.

pub mod bpf;
pub mod config;
pub mod daemon;
pub mod host;
pub mod keys;
pub mod observe;
pub mod policy;

/// The shield's eBPF object (syncookie-ebpf), built by build.rs: the only object the daemon
/// loads (and only the shield: tests/src/lib.rs checks its programs and maps).
pub static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/syncookie.bpf.o"));
