//! The scenario table, the counters behind it and the ratios between the defences.

use std::fmt::Write;

use super::{Kind, Run, ms, ns, rate, ratio};

impl Run {
    /// The scenario table.
    pub fn table(&self) -> String {
        let mut s = String::from(
            "| scenario | offered SYN/s | SYNs reaching the server /s | SYN-ACKs sent /s | \
             server CPU busy | server CPU per SYN | legit connections OK | connect p50 | \
             connect p99 | legit bytes |\n\
             | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for (k, o) in &self.scenarios {
            if let Some(why) = &o.skipped {
                let _ = writeln!(s, "| {} | not run: {why} ||||||||| |", k.label());
                continue;
            }
            let legit = if o.probe.attempts == 0 {
                "– | – | – | –".to_string()
            } else {
                format!(
                    "{:.2} % ({}/{}) | {} | {} | {}",
                    100.0 * o.probe.success(),
                    o.probe.ok,
                    o.probe.attempts,
                    ms(o.probe.pct(50.0)),
                    ms(o.probe.pct(99.0)),
                    o.probe.bytes,
                )
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.0} % | {} | {legit} |",
                k.label(),
                rate(o.rate(o.offered)),
                rate(o.rate(o.arrived)),
                rate(o.rate(o.answered)),
                100.0 * o.server_busy / o.window,
                ns(o.cpu_per_syn()),
            );
        }
        s
    }

    /// Counters behind the table, per scenario.
    pub(super) fn details(&self) -> String {
        let mut s = String::new();
        for (k, o) in &self.scenarios {
            if o.skipped.is_some() {
                continue;
            }
            let _ = write!(
                s,
                "- {}: {:.2} s window; SYN-ACKs reaching the attacker {}; attacker CPU busy \
                 {:.0} %; NAPI threads (server, client) {:?}, the server's ran {:.2} s ({} per \
                 SYN); counters:",
                k.label(),
                o.window,
                if *k == Kind::Reflector {
                    "– (its answers are SYNs)".to_string()
                } else {
                    format!("{}/s", rate(o.rate(o.sunk)))
                },
                100.0 * o.attacker_busy / o.window,
                o.napi,
                o.napi_busy,
                ns(o.napi_busy * 1e9 / o.arrived.max(1) as f64),
            );
            for (name, v) in o.counters.iter().filter(|(_, v)| **v != 0) {
                let _ = write!(s, " {name} {v};");
            }
            s.push('\n');
        }
        s
    }

    /// CPU per SYN of kernel cookie mode `k` / the shield's (native XDP).
    pub fn cpu_ratio(&self, k: Kind) -> Option<f64> {
        let ours = self.get(Kind::XdpNative)?.cpu_per_syn();
        Some(self.get(k)?.cpu_per_syn() / ours)
    }

    pub(super) fn ratios(&self) -> String {
        let mut s = String::new();
        let Some(ours) = self.get(Kind::XdpNative) else {
            return s;
        };
        for k in [
            Kind::None,
            Kind::Cookies1,
            Kind::Cookies2,
            Kind::Synproxy,
            Kind::XdpSkb,
        ] {
            if let Some(o) = self.get(k) {
                let _ = write!(
                    s,
                    "- server CPU per SYN, {} / syncookie native XDP: **{:.1}×**",
                    k.label(),
                    ratio(o.cpu_per_syn(), ours.cpu_per_syn()),
                );
                if k == Kind::None {
                    s += " (it answers almost nothing: its SYN queue is full)\n";
                } else {
                    let _ = writeln!(
                        s,
                        "; SYN-ACKs sent per second, syncookie native / {}: {:.1}×",
                        k.short(),
                        ratio(ours.rate(ours.answered), o.rate(o.answered)),
                    );
                }
            }
        }
        if let Some(r) = self.get(Kind::Reflector) {
            let floor = r.cpu_per_syn();
            for k in [Kind::Cookies1, Kind::Cookies2] {
                if let Some(o) = self.get(k) {
                    let _ = writeln!(
                        s,
                        "- above the reflector's floor (the veth driver's receive and transmit, \
                         the part no defence avoids here), {} / syncookie native XDP: {:.1}× \
                         ({} against {})",
                        k.short(),
                        ratio(o.cpu_per_syn() - floor, ours.cpu_per_syn() - floor),
                        ns(o.cpu_per_syn() - floor),
                        ns(ours.cpu_per_syn() - floor),
                    );
                }
            }
            let _ = writeln!(
                s,
                "- server CPU per SYN, syncookie native XDP / bare XDP reflector: **{:.2}×** \
                 ({} against {}: the veth driver's receive and transmit, the same for both, \
                 are most of the reflector's)",
                ratio(ours.cpu_per_syn(), r.cpu_per_syn()),
                ns(ours.cpu_per_syn()),
                ns(r.cpu_per_syn()),
            );
        }
        s
    }
}
