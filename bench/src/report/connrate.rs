//! The new-connection rate: a table (each setup beside the kernel alone) and its goal.

use std::fmt::Write;

use super::{Run, ratio};
use syncookie::policy::ModeArg;

use crate::connrate::{ConnRate, Setup};

/// The shield in `always` keeps at least this share of the kernel's new connections per second.
const GOAL: f64 = 0.9;

impl Run {
    fn conn(&self, s: Setup) -> Option<&ConnRate> {
        self.connrate
            .iter()
            .find(|r| r.setup == Some(s) && r.skipped.is_none())
    }

    pub(super) fn connrate_md(&self) -> String {
        let kernel = self.conn(Setup::Kernel);
        let mut s = String::from(
            "`ab -c C -t T` from the client namespace, every request a new connection (HTTP/1.0, \
             the server closes), the server's tcp_max_tw_buckets 0; one fresh lab per setup and \
             round, the setups in turn, the rounds summed. Server CPU: busy time of the server's CPU per connection; XDP, TC: the shield's \
             programs' own run time per connection (BPF statistics; TC's includes \
             bpf_sk_assign_tcp_reqsk); 99 %, longest: ab's request times (connect to last \
             byte; a lost segment shows as 200 ms and more).\n\n\
             | setup | connections/s | of the kernel's | failed | 99 % within | longest | server \
             CPU per connection | XDP | TC | counters |\n| --- | ---: | ---: | ---: | ---: | ---: \
             | ---: | ---: | ---: | --- |\n",
        );
        for r in &self.connrate {
            let label = r.setup.map_or("?", Setup::label);
            if let Some(why) = &r.skipped {
                let _ = writeln!(
                    s,
                    "| {label} | not run: {} | | | | | | | | |",
                    why.lines().next().unwrap_or("")
                );
                continue;
            }
            let share = kernel.map_or(f64::NAN, |k| ratio(r.per_sec(), k.per_sec()));
            let ns = |x: Option<f64>| x.map_or("–".into(), |x| format!("{x:.0} ns"));
            let counters: Vec<String> =
                r.counters.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(
                s,
                "| {label} | {:.0} | {:.0} % | {} | {} ms | {} ms | {:.1} µs | {} | {} | {} |",
                r.per_sec(),
                100.0 * share,
                r.failed,
                r.p99_ms,
                r.max_ms,
                r.server_ns / 1e3,
                ns(r.xdp_ns),
                ns(r.tc_ns),
                counters.join(", "),
            );
        }
        if let (Some(k), Some(a)) = (kernel, self.conn(Setup::Shield(ModeArg::Always))) {
            let extra = a.server_ns - k.server_ns;
            let progs = a.xdp_ns.unwrap_or(0.0) + a.tc_ns.unwrap_or(0.0);
            let _ = write!(
                s,
                "\nWhere `always` spends its time over the kernel alone: {:.1} µs more server CPU \
                 per connection, of which the programs {:.1} µs (XDP {:.1}, TC {:.1}); the rest, \
                 {:.1} µs, is the kernel's side of the handoff (the child socket made from the \
                 request socket TC hands it, in place of its own SYN queue) and the transmission \
                 of the SYN-ACK from XDP.",
                extra / 1e3,
                progs / 1e3,
                a.xdp_ns.unwrap_or(0.0) / 1e3,
                a.tc_ns.unwrap_or(0.0) / 1e3,
                (extra - progs) / 1e3,
            );
        }
        s
    }

    /// (goal, status, what was measured) for the new-connection rate.
    pub(super) fn connrate_goal(&self) -> (&'static str, &'static str, String) {
        const GOAL_TEXT: &str = "new connections at the kernel's pace: the shield in `always` at >= 90 % of the kernel's";
        match (
            self.conn(Setup::Kernel),
            self.conn(Setup::Shield(ModeArg::Always)),
        ) {
            (Some(k), Some(a)) => {
                let share = ratio(a.per_sec(), k.per_sec());
                (
                    GOAL_TEXT,
                    if share >= GOAL && a.failed == 0 {
                        "met"
                    } else {
                        "NOT met"
                    },
                    format!(
                        "{:.0} % ({:.0} against {:.0} connections/s, {} failed)",
                        100.0 * share,
                        a.per_sec(),
                        k.per_sec(),
                        a.failed
                    ),
                )
            }
            _ => (GOAL_TEXT, "not measured", String::new()),
        }
    }
}
