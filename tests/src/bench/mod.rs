//! The benchmark's parts: a two-namespace lab tuned for measuring (one CPU for the attacker and
//! the clients, one for the server), the echo server, the legitimate-client prober, the
//! scenarios (kernel defences and the shield), the BPF_PROG_TEST_RUN micro-benchmarks, and the
//! report (Markdown table, SVG chart, README section).

pub mod cpu;
pub mod lab;
pub mod micro;
pub mod prober;
pub mod report;
pub mod scenario;
pub mod server;
