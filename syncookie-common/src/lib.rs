//! Shared between the eBPF program, the daemon and the tests: the SYN-cookie codec, map layouts,
//! counter ids and protocol constants. `no_std` and dependency-free so the eBPF crate can use it.
#![no_std]

pub mod cookie;
pub mod kernel_ts;
#[cfg(feature = "lab")]
pub mod lab;
pub mod maps;
pub mod proto;
pub mod siphash;
pub mod stats;
