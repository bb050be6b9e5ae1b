//! Micro-benchmarks with BPF_PROG_TEST_RUN: the run, from the lab to the results.
//!
//! ns per packet of the shield's paths beside a minimal reflector and a pass-only program, all
//! in one lab and one run.
//!
//! Rewriting paths (the SYN path, the reflector) run in live-frames mode, where XDP_TX really
//! transmits onto the veth. Live-frames runs recycle their pages with the bytes the program and
//! the receiver left (a SYN answered once comes back as our SYN-ACK), so these go through
//! `lab_syn_fresh`, which writes the SYN template over the frame and tail-calls the program
//! timed (the reflector goes through the same wrapper). `lab_syn_*` run the shield's SYN path
//! from its own modules with one step left out at a time, to show what each step costs.
//! Paths that do not rewrite the frame (ACKs, an established flow, pass) run with a plain
//! repeat. Time per packet is the kernel's own measure of the run (the test timer, without the
//! call's setup: each run with repetitions swaps the XDP dispatcher, milliseconds); each figure
//! is the median of several rounds run in turn. The programs' own run time (BPF_ENABLE_STATS,
//! run_time_ns / run_cnt) comes from a separate pass of single runs on fresh copies of the
//! frame, since the statistics cost time themselves.

mod compare;
mod paths;
mod runner;
mod setup;
pub mod stages;

use crate::{
    cpu,
    lab::{BenchLab, Cpus},
};
use runner::{Case, median};
use setup::{Frames, Objects, Sockets};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub live_repeat: u32,
    pub plain_repeat: u32,
    /// Single runs per program for its own run time (BPF statistics).
    pub stats_runs: u32,
    pub rounds: usize,
    pub port: u16,
    pub cpus: Cpus,
}

/// One timed path.
#[derive(Clone, Debug)]
pub struct Row {
    pub path: &'static str,
    pub program: &'static str,
    pub live: bool,
    pub ns: f64,
    /// The program's own run time per packet (BPF statistics), where measured.
    pub prog_ns: Option<f64>,
}

#[derive(Clone, Debug, Default)]
pub struct Results {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

impl Results {
    pub fn ns(&self, program: &str, path: &str) -> f64 {
        self.row(program, path).map_or(f64::NAN, |r| r.ns)
    }

    pub fn prog_ns(&self, program: &str, path: &str) -> f64 {
        self.row(program, path)
            .and_then(|r| r.prog_ns)
            .unwrap_or(f64::NAN)
    }

    fn row(&self, program: &str, path: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.program == program && r.path == path)
    }
}

pub fn run(p: &Params) -> Results {
    let mut res = Results::default();
    let mut lab = BenchLab::new();
    lab.sysctl("net.ipv4.tcp_syncookies", "1");
    lab.pin_napi(p.cpus);
    // Timed on the server's CPU; what XDP_TX sends is drained by the client's NAPI thread on
    // the other CPU (lab_sink drops it), so it is not part of the figures.
    let _ = cpu::pin(0, p.cpus.server);
    let _in = lab.server.enter();
    let ifindex = nix::net::if_::if_nametoindex(lab.server_if.as_str())
        .unwrap_or_else(|e| panic!("ifindex of {}: {e}", lab.server_if));

    let sockets = Sockets::open(&lab, p.port);
    let mut objects = Objects::load(&lab, p.port);
    let frames = Frames::new(&lab, &mut objects, ifindex, p.port, sockets.est_src);
    let cases: Vec<Case> = paths::cases(&frames)
        .into_iter()
        .chain(compare::cases(&frames))
        .chain(stages::cases(&frames))
        .collect();
    let Objects { shield, labo, .. } = &mut objects;

    runner::check(&cases, shield, labo, ifindex);
    let samples = runner::time(&cases, shield, labo, ifindex, p);
    let prog_ns = runner::prog_times(&cases, shield, labo, ifindex, p.stats_runs, &mut res.notes);
    for (i, c) in cases.iter().enumerate() {
        res.rows.push(Row {
            path: c.path,
            program: c.program,
            live: c.live,
            ns: median(samples[i].clone()),
            prog_ns: prog_ns[i],
        });
    }
    drop(sockets.established);
    res
}
