//! The report of one run: what it measured (`Run`) and the number formats its parts share.
//!
//! The parts: the scenario table, the micro-benchmark tables, the ratios and the goals, as
//! Markdown (bench/results/results.md) and an SVG chart drawn by hand (bench/results/chart.svg).
//! How it all is measured is written once, for readers, in bench/README.md.

mod chart;
mod connrate;
mod document;
mod goals;
mod paths;
mod table;

use crate::{
    connrate::ConnRate,
    micro,
    scenario::{Kind, Outcome},
};

/// Everything one run measured, and how.
pub struct Run {
    pub command: String,
    pub machine: String,
    pub date: String,
    pub params: String,
    pub scenarios: Vec<(Kind, Outcome)>,
    pub micro: Option<micro::Results>,
    /// New connections per second without a flood, per setup.
    pub connrate: Vec<ConnRate>,
}

pub fn rate(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.0} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn ns(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x >= 100.0 {
        format!("{x:.0} ns")
    } else {
        format!("{x:.1} ns")
    }
}

fn ms(d: Option<std::time::Duration>) -> String {
    d.map_or("–".into(), |d| format!("{:.2} ms", d.as_secs_f64() * 1e3))
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

impl Run {
    fn get(&self, k: Kind) -> Option<&Outcome> {
        self.scenarios
            .iter()
            .find(|(x, o)| *x == k && o.skipped.is_none())
            .map(|(_, o)| o)
    }
}
