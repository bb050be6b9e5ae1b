//! The goals: each one's status (met, partly met, not met, not measured) and what was measured.

use std::fmt::Write;

use super::{Kind, Run, ms, rate, ratio};

impl Run {
    /// (goal, status, what was measured)
    pub fn goals(&self) -> Vec<(&'static str, &'static str, String)> {
        let mut g = Vec::new();
        let (c1, c2) = (
            self.cpu_ratio(Kind::Cookies1),
            self.cpu_ratio(Kind::Cookies2),
        );
        let status = match (c1, c2) {
            (Some(a), Some(b)) if a >= 10.0 && b >= 10.0 => "met",
            (Some(a), Some(b)) if a >= 10.0 || b >= 10.0 => "partly met",
            (None, None) => "not measured",
            _ => "NOT met",
        };
        let show = |r: Option<f64>| r.map_or("not measured".into(), |r| format!("{r:.1}×"));
        g.push((
            "at least 10× less CPU per SYN than the kernel's own SYN cookies",
            status,
            format!(
                "{} less than tcp_syncookies=1 (the default), {} less than tcp_syncookies=2",
                show(c1),
                show(c2)
            ),
        ));
        g.push(match self.get(Kind::XdpNative) {
            Some(o) => (
                "at least 99.9 % of legitimate connections succeed under the heaviest flood",
                if o.probe.success() >= 0.999 {
                    "met"
                } else {
                    "NOT met"
                },
                format!(
                    "{:.2} % ({}/{}) with native XDP, {} SYN/s offered (as fast as the \
                     generator goes when --rate is 0), p99 connect {}",
                    100.0 * o.probe.success(),
                    o.probe.ok,
                    o.probe.attempts,
                    rate(o.rate(o.offered)),
                    ms(o.probe.pct(99.0)),
                ),
            ),
            None => ("legitimate success rate", "not measured", String::new()),
        });
        let x = syncookie_common::maps::PROG_XDP;
        let micro = self.micro.as_ref().map(|m| {
            (
                ratio(
                    m.ns(x, "SYN -> SYN-ACK"),
                    m.ns("lab_reflect", "SYN -> SYN-ACK"),
                ),
                ratio(
                    m.prog_ns(x, "SYN -> SYN-ACK"),
                    m.prog_ns("lab_reflect", "SYN -> SYN-ACK"),
                ),
            )
        });
        let lab = match (self.get(Kind::XdpNative), self.get(Kind::Reflector)) {
            (Some(o), Some(r)) => Some(ratio(o.cpu_per_syn(), r.cpu_per_syn())),
            _ => None,
        };
        let status = match (micro, lab) {
            (Some((m, _)), _) if m <= 2.0 => "met",
            (_, Some(l)) if l <= 2.0 => "partly met",
            (None, None) => "not measured",
            _ => "NOT met",
        };
        g.push((
            "a SYN path that costs at most twice a bare XDP reflector",
            status,
            format!(
                "BPF_PROG_TEST_RUN live frames (program + transmission): {}; programs alone \
                 (BPF statistics): {}; server CPU per SYN in the lab (driver, program, \
                 transmission): {}",
                micro.map_or("not measured".into(), |m| format!("{:.2}×", m.0)),
                micro.map_or("not measured".into(), |m| format!("{:.2}×", m.1)),
                lab.map_or("not measured".into(), |l| format!("{l:.2}×")),
            ),
        ));
        g.push(self.connrate_goal());
        g
    }

    pub(super) fn goals_md(&self) -> String {
        let mut s = String::new();
        for (goal, status, text) in self.goals() {
            let _ = writeln!(s, "- **{status}** — {goal}: {text}");
        }
        s
    }
}
