//! The matrix: for each kernel and mode, what the smoke suite printed, judged against what that
//! kernel should do. A kernel too old for a mode passes when the daemon refuses it with a message
//! naming the kernel's version and the missing feature.

/// A way of running the shield, and the first kernel that can (the smoke suite's `CookieMode`).
pub struct CookieMode {
    pub name: &'static str,
    pub since: (u32, u32),
    /// What the daemon must name when the kernel is older.
    pub feature: &'static str,
}

pub const MODES: &[CookieMode] = &[
    CookieMode {
        name: "full",
        since: (6, 9),
        feature: "bpf_sk_assign_tcp_reqsk",
    },
    // The kernel's own cookies, for kernels without the kfunc (on 5.x made on the listener).
    CookieMode {
        name: "kernel",
        since: (5, 10),
        feature: "bpf_tcp_gen_syncookie",
    },
];

/// `--modes` for the smoke suite.
pub fn mode_list() -> String {
    MODES.iter().map(|m| m.name).collect::<Vec<_>>().join(",")
}

pub struct Row {
    pub kernel: String,
    pub mode: &'static str,
    /// As expected (a pass, or a clear refusal on a kernel too old for the mode).
    pub ok: bool,
    /// Checks skipped (what they need is missing on that kernel): such a cell is not a PASS.
    pub skipped: usize,
    pub result: String,
    pub secs: u64,
}

/// Judges the smoke lines of one kernel (`version`: upstream, e.g. 6.1.192), one row per mode.
/// `failure` is why there are none (the VM did not boot, hung...); `secs` the run's time.
pub fn rows(
    kernel: &str,
    version: &str,
    console: &str,
    failure: Option<&str>,
    secs: u64,
) -> Vec<Row> {
    let lines: Vec<&str> = console
        .lines()
        .filter_map(|l| l.trim().strip_prefix("smoke: "))
        .collect();
    MODES
        .iter()
        .map(|m| {
            let prefix = format!("{} ", m.name);
            let mine: Vec<&str> = lines
                .iter()
                .filter_map(|l| l.strip_prefix(&prefix))
                .collect();
            let passed = mine.iter().filter(|l| l.contains(" ok: ")).count();
            let failed = mine.iter().filter(|l| l.contains(" FAIL: ")).count();
            let skipped = mine.iter().filter(|l| l.contains(" skipped: ")).count();
            let result = mine.iter().find_map(|l| l.strip_prefix("result "));
            let checks = (passed, passed + failed, skipped);
            let (ok, mut result) = judge(m, version, result, checks, failure);
            // What a connection through the shield negotiated (the `options` check).
            if let Some(o) = mine.iter().find_map(|l| l.strip_prefix("options ok: ")) {
                result.push_str(&format!("; {o}"));
            }
            Row {
                kernel: kernel.to_string(),
                mode: m.name,
                ok,
                skipped,
                result,
                secs,
            }
        })
        .collect()
}

/// `checks`: (passed, run, skipped). A check skipped (what it needs is missing on that kernel)
/// is shown, so that a cell does not pass having silently tested less.
fn judge(
    m: &CookieMode,
    version: &str,
    result: Option<&str>,
    checks: (usize, usize, usize),
    failure: Option<&str>,
) -> (bool, String) {
    let supported = numbers(version) >= vec![m.since.0, m.since.1];
    let since = format!("Linux {}.{}+", m.since.0, m.since.1);
    let mut summary = format!("{}/{} checks", checks.0, checks.1);
    if checks.2 > 0 {
        summary.push_str(&format!(", {} skipped", checks.2));
    }
    let Some(result) = result else {
        let why = failure.unwrap_or("the suite did not finish");
        return (false, format!("no result ({summary}): {why}"));
    };
    match (result, result.strip_prefix("unsupported: ")) {
        ("pass", _) if supported => (true, summary),
        ("pass", _) => (false, format!("passed, but {since} should be needed")),
        (_, Some(why)) if supported => (false, format!("refused on a kernel that can: {why}")),
        (_, Some(why)) => {
            // The refusal must tell an admin what is missing and since when.
            let clear = why.contains(version) && why.contains(m.feature) && why.contains(&since);
            let verdict = if clear {
                why.to_string()
            } else {
                format!(
                    "refused without naming {version}, {} and {since}: {why}",
                    m.feature
                )
            };
            (clear, verdict)
        }
        (other, None) => (false, format!("{other} ({summary})")),
    }
}

fn numbers(v: &str) -> Vec<u32> {
    v.split(|c: char| !c.is_ascii_digit())
        .take(2)
        .filter_map(|n| n.parse().ok())
        .collect()
}

pub fn print(rows: &[Row]) {
    let w = rows
        .iter()
        .map(|r| r.kernel.len())
        .max()
        .unwrap_or(6)
        .max(6);
    println!(
        "\n{:<w$}  {:<6}  {:<7}  {:>5}  result",
        "kernel", "mode", "verdict", "time"
    );
    for r in rows {
        let verdict = match (r.ok, r.skipped) {
            (false, _) => "FAIL",
            (true, 0) => "PASS",
            (true, _) => "SKIPPED",
        };
        let time = format!("{} s", r.secs);
        println!(
            "{:<w$}  {:<6}  {:<7}  {:>5}  {}",
            r.kernel, r.mode, verdict, time, r.result
        );
    }
    let ok = rows.iter().filter(|r| r.ok).count();
    let partial = rows.iter().filter(|r| r.ok && r.skipped > 0).count();
    println!(
        "test-kernels: {ok} of {} as expected, {} of them with checks skipped (SKIPPED, not PASS)",
        rows.len(),
        partial
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &CookieMode = &MODES[0];

    #[test]
    fn pass_on_new_kernels_only() {
        assert!(judge(FULL, "6.12.117", Some("pass"), (5, 5, 0), None).0);
        assert!(!judge(FULL, "6.1.192", Some("pass"), (5, 5, 0), None).0);
        assert!(!judge(FULL, "6.12.117", Some("fail: flood"), (4, 5, 0), None).0);
        assert!(!judge(FULL, "6.12.117", None, (0, 0, 0), Some("timeout")).0);
        let kernel = &MODES[1];
        assert!(judge(kernel, "6.1.192", Some("pass"), (6, 6, 0), None).0);
        assert!(judge(kernel, "5.10.237", Some("pass"), (6, 6, 0), None).0);
        assert!(!judge(kernel, "5.4.0", Some("pass"), (6, 6, 0), None).0);
    }

    #[test]
    fn refusal_must_name_version_and_feature() {
        let clear = "unsupported: not supported: kernel 6.1.192 (6.1.0-57-cloud-amd64) has no \
                     bpf_sk_assign_tcp_reqsk (Linux 6.9+)";
        assert!(judge(FULL, "6.1.192", Some(clear), (0, 0, 0), None).0);
        assert!(!judge(FULL, "6.12.117", Some(clear), (0, 0, 0), None).0);
        let vague = "unsupported: not supported: cannot read /proc/sys/net/core/rmem_max";
        assert!(!judge(FULL, "6.1.192", Some(vague), (0, 0, 0), None).0);
    }

    #[test]
    fn rows_read_the_console() {
        let console = "[    1.0] veth: loaded\nsmoke: full attach ok: x\r\nsmoke: full connections \
                       FAIL: y\nsmoke: full result fail: connections\n";
        let r = rows("6.12.117", "6.12.117", console, None, 1);
        assert_eq!(r.len(), MODES.len());
        assert!(!r[0].ok);
        assert_eq!(r[0].result, "fail: connections (1/2 checks)");
        let skipping = "smoke: full attach ok: x\nsmoke: full vlan-offload skipped: no 8021q\n\
                        smoke: full options ok: client ts sack\nsmoke: full result pass\n";
        let r = rows("6.12.117", "6.12.117", skipping, None, 1);
        assert!(r[0].ok);
        assert_eq!(r[0].skipped, 1, "printed SKIPPED, not PASS");
        assert_eq!(r[0].result, "2/2 checks, 1 skipped; client ts sack");
    }
}
