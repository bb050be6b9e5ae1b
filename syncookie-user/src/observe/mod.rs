//! What a running shield shows: its state (config, mode, keys, ports), its counters, and the
//! Prometheus metrics made of both. Read from the pins, by any process.

pub mod counters;
pub mod metrics;
pub mod state;
