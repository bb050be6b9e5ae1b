//! The goals: each one's status (met, not met, not measured) and what was measured. They are
//! issue "Fast again"'s: the SYN path near the reflector, the established path near XDP_PASS,
//! far less CPU per SYN than the kernel's cookies, every legitimate client connected, a connect
//! p99 under the heaviest flood near the quiet one, and new connections at the kernel's pace.

use std::fmt::Write;

use super::{Kind, Run, ms, rate, ratio};

type Goal = (&'static str, &'static str, String);

fn judged(goal: &'static str, met: Option<bool>, text: String) -> Goal {
    let status = match met {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "not measured",
    };
    (goal, status, text)
}

impl Run {
    /// (goal, status, what was measured)
    pub fn goals(&self) -> Vec<Goal> {
        let x = syncookie_common::maps::PROG_XDP;
        let m = self.micro.as_ref();
        let syn = m.map(|m| {
            (
                ratio(
                    m.ns(x, "SYN -> SYN-ACK"),
                    m.ns("lab_reflect", "SYN -> SYN-ACK"),
                ),
                m.ns(x, "SYN -> SYN-ACK"),
                m.ns("lab_reflect", "SYN -> SYN-ACK"),
            )
        });
        let est = m.map(|m| {
            (
                ratio(m.ns(x, "established"), m.ns("lab_pass", "pass")),
                m.ns(x, "established"),
                m.ns("lab_pass", "pass"),
            )
        });
        let cpu = self.cpu_ratio(Kind::Cookies1);
        let flood = self.get(Kind::XdpNative);
        let quiet = self.get(Kind::XdpQuiet);
        let p99 = |o: &crate::scenario::Outcome| o.probe.pct(99.0);
        let tail = match (flood.and_then(p99), quiet.and_then(p99)) {
            (Some(f), Some(q)) => Some((f.as_secs_f64() / q.as_secs_f64().max(1e-9), f, q)),
            _ => None,
        };
        vec![
            judged(
                "a SYN path at most 2.5× a bare XDP reflector in live frames (aim: 2×)",
                syn.map(|(r, ..)| r <= 2.5),
                syn.map_or(String::new(), |(r, a, b)| {
                    format!("{r:.2}× ({a:.0} against {b:.0} ns per packet)")
                }),
            ),
            judged(
                "an established packet at most 2× XDP_PASS",
                est.map(|(r, ..)| r <= 2.0),
                est.map_or(String::new(), |(r, a, b)| {
                    format!("{r:.2}× ({a:.0} against {b:.0} ns per packet)")
                }),
            ),
            judged(
                "at least 6× less CPU per SYN than the kernel's own SYN cookies",
                cpu.map(|r| r >= 6.0),
                cpu.map_or(String::new(), |r| {
                    format!("{r:.1}× less than tcp_syncookies=1 (server CPU per SYN in the lab)")
                }),
            ),
            judged(
                "every legitimate connection succeeds under the heaviest flood",
                flood.map(|o| o.probe.ok == o.probe.attempts && o.probe.attempts > 0),
                flood.map_or(String::new(), |o| {
                    format!(
                        "{}/{} with native XDP, {} SYN/s offered",
                        o.probe.ok,
                        o.probe.attempts,
                        rate(o.rate(o.offered))
                    )
                }),
            ),
            judged(
                "connect p99 under the heaviest flood at most 2× the quiet p99 (same run)",
                tail.map(|(r, ..)| r <= 2.0),
                tail.map_or(String::new(), |(r, f, q)| {
                    format!(
                        "{r:.2}× ({} under flood, {} quiet)",
                        ms(Some(f)),
                        ms(Some(q))
                    )
                }),
            ),
            self.connrate_goal(),
        ]
    }

    pub(super) fn goals_md(&self) -> String {
        let mut s = String::new();
        for (goal, status, text) in self.goals() {
            let _ = writeln!(s, "- **{status}** — {goal}: {text}");
        }
        s
    }
}
