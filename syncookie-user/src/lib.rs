//! The syncookie daemon as a library: load and attach the programs, rotate cookie keys, read
//! counters. The `syncookie` binary is a thin CLI over it; the tests use it directly.

pub mod counters;
pub mod keys;
pub mod kfunc;
pub mod loader;
pub mod pins;
pub mod sysctl;

/// The eBPF object built by build.rs from syncookie-ebpf.
pub static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/syncookie.bpf.o"));

/// Test-lab programs (veth peer pass, lost-ACK emulation, flood generator): see
/// syncookie-ebpf/src/bin/lab/. Used by the tests, `cargo xtask demo` and the benchmarks.
pub static LAB_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lab.bpf.o"));
