//! The report: the scenario table, the micro-benchmark tables, the ratios and the goals, as
//! Markdown (bench/results/results.md and the README section) and an SVG chart drawn by hand.

use std::fmt::Write;

use super::{
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
    fn details(&self) -> String {
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

    fn ratios(&self) -> String {
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
        g
    }

    fn goals_md(&self) -> String {
        let mut s = String::new();
        for (goal, status, text) in self.goals() {
            let _ = writeln!(s, "- **{status}** — {goal}: {text}");
        }
        s
    }

    fn micro_md(&self) -> String {
        let Some(m) = &self.micro else {
            return "Not run (--no-micro).\n".into();
        };
        let x = syncookie_common::maps::PROG_XDP;
        let reflect = m.ns("lab_reflect", "SYN -> SYN-ACK");
        let pass = m.ns("lab_pass", "pass");
        let mut s = String::from(
            "| path | program | mode | ns per packet | × reflector | × pass-only | program alone \
             (BPF stats) |\n| --- | --- | --- | ---: | ---: | ---: | ---: |\n",
        );
        for (path, prog) in [
            ("SYN -> SYN-ACK", x),
            ("SYN -> SYN-ACK", "lab_reflect"),
            ("pass", "lab_pass"),
            ("valid ACK", x),
            ("bad ACK", x),
            ("established", x),
        ] {
            let Some(r) = m.rows.iter().find(|r| r.path == path && r.program == prog) else {
                continue;
            };
            let _ = writeln!(
                s,
                "| {path} | `{prog}` | {} | {} | {:.2} | {:.1} | {} |",
                if r.live {
                    "live frames, XDP_TX"
                } else {
                    "plain repeat"
                },
                ns(r.ns),
                r.ns / reflect,
                r.ns / pass,
                r.prog_ns.map_or("–".into(), ns),
            );
        }
        let (syn_p, refl_p) = (
            m.prog_ns(x, "SYN -> SYN-ACK"),
            m.prog_ns("lab_reflect", "SYN -> SYN-ACK"),
        );
        let _ = writeln!(
            s,
            "\nSYN path / reflector: **{:.2}×** per packet with transmission (live frames), \
             {:.2}× for the programs alone (BPF statistics: {} against {}).\n",
            ratio(m.ns(x, "SYN -> SYN-ACK"), reflect),
            ratio(syn_p, refl_p),
            ns(syn_p),
            ns(refl_p),
        );

        // Where the SYN path's time goes.
        let all = m.ns("lab_syn_all", "SYN -> SYN-ACK");
        let _ = writeln!(
            s,
            "**Where the SYN path's time goes** (the shield's own modules, one step left out at a \
             time; live frames through the same wrapper as the reflector): the whole path {} \
             (the shield's program: {}); without the listener lookup {} → the lookup costs \
             **{:.0} ns**; without verifying the SYN's checksum {} → the check costs **{:.0} \
             ns**; the cookie's SipHash-2-4 MAC alone (plain repeat, against parsing alone): \
             **{:.0} ns**; the reflector's whole path {}; what remains, about {:.0} ns, is the \
             rest of the SYN-ACK: option parsing, the clock read for TSval, map reads, resizing \
             the frame, writing the headers and options and their checksums.\n",
            ns(all),
            ns(m.ns(x, "SYN -> SYN-ACK")),
            ns(m.ns("lab_syn_no_lookup", "SYN -> SYN-ACK")),
            all - m.ns("lab_syn_no_lookup", "SYN -> SYN-ACK"),
            ns(m.ns("lab_syn_no_csum", "SYN -> SYN-ACK")),
            all - m.ns("lab_syn_no_csum", "SYN -> SYN-ACK"),
            m.ns("lab_syn_mac", "SYN") - m.ns("lab_syn_parse", "SYN"),
            ns(reflect),
            all - reflect
                - (all - m.ns("lab_syn_no_lookup", "SYN -> SYN-ACK"))
                - (all - m.ns("lab_syn_no_csum", "SYN -> SYN-ACK"))
                - (m.ns("lab_syn_mac", "SYN") - m.ns("lab_syn_parse", "SYN")),
        );

        // Lookup-first against cookie-first.
        let lf = |p| m.ns("lab_ack_lookup_first", p);
        let cf = |p| m.ns("lab_ack_cookie_first", p);
        s += "**ACKs: socket lookup first, or cookie first?** The shield's parse, lookup and \
              cookie code in both orders (`lab_ack_lookup_first`, `lab_ack_cookie_first`, plain \
              repeat):\n\n| ACK | lookup first | cookie first | cookie first − lookup first |\n\
              | --- | ---: | ---: | ---: |\n";
        for p in ["valid ACK", "bad ACK", "established"] {
            let _ = writeln!(
                s,
                "| {p} | {} | {} | {:+.1} ns |",
                ns(lf(p)),
                ns(cf(p)),
                cf(p) - lf(p)
            );
        }
        let save = lf("valid ACK") - cf("valid ACK");
        let cost = cf("established") - lf("established");
        let verdict = if cost > 0.0 && (save <= 0.0 || cost >= save) {
            "lookup first (the shield's order) is faster: cookie-first's saving on the single \
             handshake ACK of a connection is smaller than what it adds to each of the \
             connection's later segments, and a connection has at least one"
                .to_string()
        } else if cost > 0.0 {
            format!(
                "cookie first saves {save:.0} ns per handshake ACK but costs {cost:.0} ns on every \
                 later segment of the connection: it wins only for connections with fewer than \
                 {:.1} segments after the handshake; lookup first (the shield's order) stays",
                save / cost
            )
        } else {
            "cookie first measured no slower on established traffic here; the shield keeps \
             lookup first, which never runs a MAC for a segment of a known connection"
                .to_string()
        };
        let _ = writeln!(
            s,
            "\nCookie first saves {save:.1} ns on a valid handshake ACK and costs {cost:.1} ns on \
             every segment of an established connection (a bad ACK costs {:+.1} ns: both orders \
             run the lookup and the MAC for it): {verdict}.\n",
            cf("bad ACK") - lf("bad ACK"),
        );

        // Metadata against a TC re-check.
        let meta = m.ns("lab_ack_meta", "valid ACK");
        let nometa = m.ns("lab_ack_no_meta", "valid ACK");
        let tc_meta = m.ns("lab_tc_meta", "valid ACK");
        let tc_re = m.ns("lab_tc_recheck", "valid ACK");
        let _ = writeln!(
            s,
            "**XDP metadata, or a second check in TC?** Valid ACK in XDP with and without writing \
             the metadata (live frames, ending in XDP_DROP so that only the program and the frame \
             handling are timed): {} against {} → the metadata costs **{:.1} ns**. TC with the \
             metadata against TC checking the cookie again (plain repeat, both ending in the \
             listener lookup the handoff does): {} against {} → the re-check costs **{:.1} ns**. \
             {}\n",
            ns(meta),
            ns(nometa),
            meta - nometa,
            ns(tc_meta),
            ns(tc_re),
            tc_re - tc_meta,
            if tc_re - tc_meta > meta - nometa {
                "Metadata is cheaper: the shield hands the checked attributes over in XDP \
                 metadata, and re-checks in TC only where none arrives (generic XDP)."
            } else {
                "Here the re-check measured no dearer than the metadata."
            }
        );
        for n in &m.notes {
            let _ = writeln!(s, "Note: {n}\n");
        }
        s
    }

    const METHOD: &'static str = "\
**How it is measured.** Two network namespaces joined by a veth pair: the attacker and the \
legitimate clients on one vCPU, the server on the other. Both veths run threaded NAPI; the \
server's NAPI thread and the echo server are pinned to the server's CPU, the attacker's flood \
generator, its NAPI thread and the clients to the other. The flood is `lab_flood_syn` run \
with BPF_PROG_TEST_RUN in live-frames mode on the attacker's veth (`Flood::fresh` in \
tests/src/flood.rs): spoofed SYNs (198.18.0.0/16 sources, random ports and ISNs, Linux's SYN \
options), each written whole from a template, XDP_TX onto the wire, as fast as one vCPU makes \
them (or at `--rate`), the same in every scenario. Frames the server's veth ring \
cannot take are lost there: *offered* counts what the generator sent, *reaching the server* \
what the server's first program saw (`lab_count_syn` in XDP for the kernel's defences, the \
shield's `syn_seen`), *SYN-ACKs sent* what left the server (`lab_count_synack` on TC egress \
for the kernel's, the shield's `synack_sent`). What the server sends to the spoofed range is \
counted and dropped by `lab_sink` (XDP) on the attacker's veth, at the same cost in every \
scenario.\n\n\
**CPU per SYN** is the busy time of the server's CPU over the measured window (wall-clock \
time less its idle and iowait time from its line in /proc/stat, which NO_HZ kernels account \
exactly; the busy columns are only sampled at each tick) divided by the SYNs that reached the \
server. It includes everything the server side does: the veth driver and NAPI poll, XDP, the \
kernel's receive path, TCP or netfilter, building and transmitting the replies, timers (SYN-ACK \
retransmissions) and the echo server's work for the legitimate clients; it is fair to both the \
kernel path and ours because both run on that CPU and nothing else does. When the server's CPU \
is saturated it is the inverse of the server's capacity; when it is not (the flood generator is \
the limit), it is still the time spent per SYN. The attacker's CPU is not counted.\n\n\
**Legitimate clients** open connections at a fixed rate (an open loop) during the window, \
each sending a payload and reading its echo; a connection counts as OK when it connected and \
echoed within the timeout, latency is the time connect() took (a lost SYN costs a 1 s \
retransmission).\n";

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# syncookie benchmark results\n");
        let _ = writeln!(
            s,
            "Machine: {}.  \nCommand: `{}`  \nRun: {}  \nParameters: {}\n",
            self.machine, self.command, self.date, self.params
        );
        s += "## Scenarios (same flood, same clients, one after another)\n\n";
        s += &self.table();
        s += "\n![rates and CPU per SYN](chart.svg)\n\n";
        s += &self.ratios();
        s += "\n";
        s += Self::METHOD;
        s += "\nCounters over each window:\n\n";
        s += &self.details();
        s += "\n## Micro-benchmarks (BPF_PROG_TEST_RUN)\n\n";
        s += MICRO_METHOD;
        s += "\n";
        s += &self.micro_md();
        s += "\n## Goals\n\n";
        s += &self.goals_md();
        s += GOALS_NOTE;
        s += "\n## Notes\n\n";
        s += NOTES;
        s
    }

    pub fn readme_section(&self) -> String {
        let mut s = String::from("## Benchmarks\n\n");
        s += "`cargo xtask bench` measures the shield against the kernel's own defences, side by \
              side in one run, with the same spoofed SYN flood and the same legitimate clients \
              in every scenario, then times the shield's packet paths with BPF_PROG_TEST_RUN \
              beside a minimal XDP reflector. Benchmarks print ratios measured side by side; \
              they are not tests and do not run in CI. Both ends of the lab share this \
              machine's two vCPUs, so the absolute rates say little about a real NIC: read \
              CPU per SYN and the ratios.\n\n";
        let _ = writeln!(
            s,
            "Seen on {}, with `{}` ({}):\n",
            self.machine, self.command, self.date
        );
        s += &self.table();
        s += "\n![SYN rates and server CPU per SYN per scenario](bench/results/chart.svg)\n\n";
        s += &self.ratios();
        s += "\n";
        s += Self::METHOD;
        s += "\n### Packet paths (BPF_PROG_TEST_RUN)\n\n";
        s += MICRO_METHOD;
        s += "\n";
        s += &self.micro_md();
        s += "\n### Goals\n\n";
        s += &self.goals_md();
        s += GOALS_NOTE;
        s += "\n### Notes\n\n";
        s += NOTES;
        s += "\nFull numbers and counters: [bench/results/results.md](bench/results/results.md). \
              Options (`cargo xtask bench -- --help`): `--duration`, `--rate` (0: as fast as the \
              generator can), `--legit-rate`, `--scenarios`, `--no-micro`, the repeat counts.\n";
        s
    }

    /// Two panels: SYN rates per scenario (offered, reaching the server, SYN-ACKs sent), and
    /// server CPU per SYN on a log scale.
    pub fn svg(&self) -> String {
        let runs: Vec<(Kind, &Outcome)> = self
            .scenarios
            .iter()
            .filter(|(_, o)| o.skipped.is_none())
            .map(|(k, o)| (*k, o))
            .collect();
        let (w, h) = (960.0, 440.0);
        let (top, bottom) = (60.0, 340.0);
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">syncookie against the kernel's defences: one flood, one run</text>"#,
            w / 2.0
        );
        // Left panel: rates.
        let (lx0, lx1) = (70.0, 500.0);
        let max = runs
            .iter()
            .map(|(_, o)| {
                o.rate(o.offered)
                    .max(o.rate(o.arrived))
                    .max(o.rate(o.answered))
            })
            .fold(1.0, f64::max);
        let step = nice_step(max / 5.0);
        let ymax = (max / step).ceil() * step;
        let y = |v: f64| bottom - (bottom - top) * v / ymax;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="46" text-anchor="middle" font-weight="bold">SYN rates (per second)</text>"#,
            (lx0 + lx1) / 2.0
        );
        let mut t = 0.0;
        while t <= ymax + step / 2.0 {
            let _ = writeln!(
                s,
                r##"<line x1="{lx0}" x2="{lx1}" y1="{0:.1}" y2="{0:.1}" stroke="#ddd"/><text x="{1}" y="{2:.1}" text-anchor="end">{3}</text>"##,
                y(t),
                lx0 - 6.0,
                y(t) + 4.0,
                rate(t)
            );
            t += step;
        }
        let series = [
            ("offered", "#9e9e9e"),
            ("reaching the server", "#1f77b4"),
            ("SYN-ACKs sent", "#2ca02c"),
        ];
        let gw = (lx1 - lx0) / runs.len().max(1) as f64;
        let bw = gw * 0.8 / 3.0;
        for (i, (k, o)) in runs.iter().enumerate() {
            let gx = lx0 + gw * i as f64 + gw * 0.1;
            for (j, v) in [o.offered, o.arrived, o.answered].into_iter().enumerate() {
                let v = o.rate(v);
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.1}" y="{:.1}" width="{bw:.1}" height="{:.1}" fill="{}"/>"#,
                    gx + bw * j as f64,
                    y(v),
                    bottom - y(v),
                    series[j].1
                );
            }
            label(&mut s, gx + gw * 0.4, bottom, k.short());
        }
        for (j, (name, color)) in series.iter().enumerate() {
            let lx = lx0 + 140.0 * j as f64;
            let _ = writeln!(
                s,
                r#"<rect x="{lx}" y="{}" width="12" height="12" fill="{color}"/><text x="{}" y="{}">{name}</text>"#,
                h - 22.0,
                lx + 16.0,
                h - 12.0
            );
        }
        // Right panel: CPU per SYN, log scale.
        let (rx0, rx1) = (590.0, 940.0);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="46" text-anchor="middle" font-weight="bold">server CPU per SYN (ns, log scale)</text>"#,
            (rx0 + rx1) / 2.0
        );
        let vals: Vec<f64> = runs.iter().map(|(_, o)| o.cpu_per_syn()).collect();
        let hi = vals
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(10.0, f64::max);
        let (d0, d1) = (1.0f64, (hi * 1.5).log10().ceil());
        let ly = |v: f64| bottom - (bottom - top) * ((v.max(10.0)).log10() - d0) / (d1 - d0);
        let mut d = d0;
        while d <= d1 {
            let v = 10f64.powf(d);
            let _ = writeln!(
                s,
                r##"<line x1="{rx0}" x2="{rx1}" y1="{0:.1}" y2="{0:.1}" stroke="#ddd"/><text x="{1}" y="{2:.1}" text-anchor="end">{3}</text>"##,
                ly(v),
                rx0 - 6.0,
                ly(v) + 4.0,
                v
            );
            d += 1.0;
        }
        let gw = (rx1 - rx0) / runs.len().max(1) as f64;
        for (i, ((k, _), v)) in runs.iter().zip(&vals).enumerate() {
            let x = rx0 + gw * i as f64 + gw * 0.2;
            if v.is_finite() {
                let _ = writeln!(
                    s,
                    r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{:.0}</text>"#,
                    ly(*v),
                    gw * 0.6,
                    bottom - ly(*v),
                    match k {
                        Kind::XdpNative | Kind::XdpSkb => "#d62728",
                        Kind::Reflector => "#7f7f7f",
                        _ => "#ff7f0e",
                    },
                    x + gw * 0.3,
                    ly(*v) - 4.0,
                    v
                );
            }
            label(&mut s, x + gw * 0.3, bottom, k.short());
        }
        let _ = writeln!(
            s,
            r#"<text x="{rx0}" y="{}">orange: kernel; red: syncookie (XDP); gray: bare reflector</text>"#,
            h - 12.0
        );
        s += "</svg>\n";
        s
    }
}

/// A slanted axis label under a bar group.
fn label(s: &mut String, x: f64, y: f64, text: &str) {
    let _ = writeln!(
        s,
        r#"<text x="{x:.1}" y="{:.1}" text-anchor="end" transform="rotate(-30 {x:.1} {:.1})">{text}</text>"#,
        y + 16.0,
        y + 16.0
    );
}

/// 1, 2 or 5 times a power of ten, at least `x`.
fn nice_step(x: f64) -> f64 {
    let p = 10f64.powf(x.max(1.0).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= x)
        .unwrap_or(10.0 * p)
}

const MICRO_METHOD: &str = "\
BPF_PROG_TEST_RUN on the server's veth in the lab, all programs in one run, each figure the \
median of several rounds run in turn, ns per packet as the kernel's test timer measured the \
repetitions (without the call's setup: a run with repetitions swaps the XDP dispatcher, \
milliseconds). The SYN path and the reflector rewrite the frame, so they run in live-frames mode \
(`--live-repeat` repetitions), where XDP_TX really transmits onto the veth (the transmission is in the \
figure; the attacker's side drains it on the other CPU). Live-frames runs recycle their pages \
with the bytes left in them (a SYN answered once comes back as our SYN-ACK), so both go through \
`lab_syn_fresh`, which writes the SYN over the frame and tail-calls the program timed. The other \
paths do not rewrite the frame and run with a plain repeat (`--plain-repeat`). `lab_reflect` is the \
minimal reflector (checks Ethernet/IPv4/TCP, swaps MACs, addresses and ports, XDP_TX); \
`lab_pass` returns XDP_PASS. *Program alone* is the program's own run time from the kernel's \
BPF statistics (run_time_ns / run_cnt) over `--stats-runs` single runs on fresh copies of the frame, in \
a separate pass; it includes the statistics' own cost, which is what the pass-only program \
shows.\n";

const GOALS_NOTE: &str = "\n\"Partly met\" means met by one of the measures named and not by \
the other. On this lab the veth driver's own receive and transmit cost about as much per packet \
as the whole SYN program (the reflector's row), so the CPU-per-SYN ratio against the kernel is \
capped near what the kernel's path costs over that floor; the figures above the floor show how \
the paths themselves compare.\n";

const NOTES: &str = "\
- One run of each scenario; run it again to see the spread (the VM shares its host).\n\
- Live-frames test runs do not give every repetition a fresh copy of the frame: their pages are \
recycled with the bytes the program and the receiver left (only the frame's bounds are reset), \
so a SYN answered with XDP_TX comes back as our SYN-ACK. `lab_flood`, which rewrites only the \
source fields, then floods the shield with SYN-ACK-shaped frames it passes to the kernel: the \
bench floods with `lab_flood_syn` (the whole SYN written each time) and times rewriting \
programs behind `lab_syn_fresh`.\n\
- Each BPF_PROG_TEST_RUN call with repetitions swaps the kernel's XDP dispatcher and waits for \
RCU grace periods (milliseconds): the flood sends 2^20 frames per call, and the figures above \
are the kernel's own timing of the repetitions.\n\
- Frames sent with XDP_TX onto a veth arrive when the receiving veth has NAPI: an XDP program, \
or GRO switched on (`ethtool -K DEV gro on`), which is what lets the generic-XDP scenario \
receive the flood.\n\
- SYNPROXY needs the `nft` command (Debian package nftables); without it the scenario is \
listed as not run, with the reason.\n";
