//! The lab's eBPF programs: helpers for the tests, the demo and the benchmark, never attached
//! by the shield. Names and map indices are in `syncookie_common::lab`.
//! - `lab.rs`: the test lab's wire (veth peer pass, a lost ACK on demand, SYN-ACK counting);
//! - `trunk.rs`: VLAN tags put into frames and taken off again (an emulated trunk);
//! - `flood.rs`: live-frames programs (the spoofed SYN flood, a fresh SYN for timing);
//! - `bench.rs`: the reflector, counters, and the shield's own packet code in the orders the
//!   benchmark compares.
#![no_std]
#![no_main]

mod bench;
mod flood;
mod lab;
mod maps;
mod trunk;

syncookie_ebpf::license!();
