//! The SVG chart, drawn by hand: SYN rates per scenario and server CPU per SYN.

use std::fmt::Write;

use super::{Kind, Outcome, Run, rate};

impl Run {
    /// Two panels: SYN rates per scenario (offered, reaching the server, SYN-ACKs sent), and
    /// server CPU per SYN on a log scale.
    pub fn svg(&self) -> String {
        let runs: Vec<(Kind, &Outcome)> = self
            .scenarios
            .iter()
            // The quiet run has no flood: its "CPU per SYN" is the clients' handful.
            .filter(|(k, o)| o.skipped.is_none() && *k != Kind::XdpQuiet)
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
