//! The virtio-net row of the matrix: a kernel booted with a `virtio-net-pci` NIC on a tap in a
//! host namespace, the shield in native XDP on the guest's virtio_net driver, and clients and a
//! flood from the host side (tests/src/bin/virtio/: `virtio host` on the host runs qemu and the
//! checks; init runs `virtio guest` in the VM). Each kernel runs in the best mode it has; the
//! lines it prints are judged as the smoke suite's.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use super::{fetch::Kernel, matrix, qemu};

/// A boot, one mode's checks under TCG and the power-off: about a minute and a half.
const TIMEOUT: Duration = Duration::from_secs(400);

/// The mode `version` runs at its best (the first of [`matrix::MODES`] it supports), if any.
fn best_mode(version: &str) -> Option<&'static str> {
    let v: Vec<u32> = version
        .split('.')
        .take(2)
        .filter_map(|n| n.parse().ok())
        .collect();
    matrix::MODES
        .iter()
        .find(|m| v >= vec![m.since.0, m.since.1])
        .map(|m| m.name)
}

/// Boots `k` with `initrd` and a virtio NIC through `virtio host` (the binary `virtio`); its
/// row, or none when the kernel has no mode to run.
pub fn rows(k: &Kernel, initrd: &Path, virtio: &Path) -> Vec<matrix::Row> {
    let Some(mode) = best_mode(&k.version) else {
        return Vec::new();
    };
    let log = k.root.join("console-virtio.log");
    let _ = std::fs::remove_file(&log);
    let qemu = qemu::command_line(&k.vmlinuz(), initrd, "smoke_role=virtio", &log);
    eprintln!(
        "test-kernels: {} with a virtio-net NIC, {mode} mode (console: {})",
        k.package,
        log.display()
    );
    // Full mode on a multi-queue NIC (XDP_TX gets a queue pair per CPU of its own), kernel mode
    // on qemu's default single queue pair (XDP_TX shares it under a lock, as on clouds that
    // give as many queues as vCPUs): the rows cover both of the driver's XDP_TX setups.
    let queues = if mode == "full" { 4 } else { 1 };
    let t = Instant::now();
    let (out, failure) = match run(virtio, mode, queues, &qemu) {
        Ok((out, true)) => (out, None),
        Ok((out, false)) => {
            // A failure before any mode ran (the wire, the boot) says why on its own line.
            let why = out
                .lines()
                .find(|l| l.starts_with("virtio: ") && !l.contains(&format!(" {mode} ")))
                .filter(|l| l.contains(" FAIL: "))
                .unwrap_or("virtio host failed")
                .to_string();
            (out, Some(why))
        }
        Err(e) => (String::new(), Some(format!("{e:#}"))),
    };
    // The checks' lines, in the smoke suite's form for the matrix's judge.
    let lines: String = out
        .lines()
        .filter_map(|l| l.strip_prefix("virtio: "))
        .inspect(|l| eprintln!("  virtio: {l}"))
        .map(|l| format!("smoke: {l}\n"))
        .collect();
    let name = format!("{} ({}), virtio-net", k.version, k.distro);
    let secs = t.elapsed().as_secs();
    let mut rows: Vec<matrix::Row> =
        matrix::rows(&name, &k.version, &lines, failure.as_deref(), secs)
            .into_iter()
            .filter(|r| r.mode == mode)
            .collect();
    for r in &mut rows {
        r.result.push_str(&driver_notes(&lines, mode));
    }
    rows
}

/// What the row adds for the driver: XDP_TX's queues as the attach found them, and what carried
/// the handoff (metadata, or TC's re-check) where there is one.
fn driver_notes(lines: &str, mode: &str) -> String {
    let detail = |check: &str| {
        let prefix = format!("smoke: {mode} {check} ok: ");
        lines
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_default()
            .to_string()
    };
    let attach = detail("attach");
    let mut notes = String::new();
    if let Some(q) = attach.split("; ").find(|p| p.starts_with("queues ")) {
        let tx = if attach.contains("locked tx mode") {
            "XDP_TX shared, locked"
        } else {
            "XDP_TX on its own queues"
        };
        notes.push_str(&format!("; {q} ({tx})"));
    }
    let connections = detail("connections");
    if let Some((_, path)) = connections.split_once("; handoff by ") {
        let path = path.split(" (").next().unwrap_or(path);
        notes.push_str(&format!("; handoff by {path}"));
    }
    notes
}

/// `virtio host --modes MODE --queues N -- QEMU...`: its stdout and success.
fn run(virtio: &Path, mode: &str, queues: u32, qemu: &[String]) -> anyhow::Result<(String, bool)> {
    let mut child = Command::new(virtio)
        .args([
            "host",
            "--modes",
            mode,
            "--queues",
            &queues.to_string(),
            "--",
        ])
        .args(qemu)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    // Read while it runs: a full pipe would stall it.
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let status = qemu::wait(&mut child, TIMEOUT)?;
    let out = reader.join().unwrap_or_default();
    match status {
        Some(s) => Ok((out, s.success())),
        None => anyhow::bail!("virtio host did not finish within {TIMEOUT:?}:\n{out}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{best_mode, driver_notes};

    #[test]
    fn notes_say_queues_and_handoff_path() {
        let lines = "smoke: full attach ok: native XDP on driver: virtio_net; queues 4 of 4 max; \
                     rx-gro-hw: on\nsmoke: full connections ok: 20/20 echoed; handoff_ok +20; \
                     handoff by XDP metadata (bpf_xdp_adjust_meta room given; TC re-check off)\n";
        assert_eq!(
            driver_notes(lines, "full"),
            "; queues 4 of 4 max (XDP_TX on its own queues); handoff by XDP metadata"
        );
        let locked = "smoke: kernel attach ok: native XDP on driver: virtio_net; queues 1 of 1 \
                      max; driver: ... slower locked tx mode.\n";
        assert_eq!(
            driver_notes(locked, "kernel"),
            "; queues 1 of 1 max (XDP_TX shared, locked)"
        );
        assert_eq!(driver_notes("", "full"), "");
    }

    #[test]
    fn each_kernel_in_its_best_mode() {
        assert_eq!(best_mode("6.12.57"), Some("full"));
        assert_eq!(best_mode("6.1.158"), Some("kernel"));
        // Kernel-cookie mode on the listener since 5.10; nothing before.
        assert_eq!(best_mode("5.10.244"), Some("kernel"));
        assert_eq!(best_mode("5.4.0"), None);
    }
}
