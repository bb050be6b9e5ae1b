//! Boots a kernel with its initramfs under qemu and returns what its serial console printed.
//! TCG, not KVM: KVM dies with an emulation error inside this project's VMs. A cloud kernel
//! boots in about 10 s that way.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// More than a boot and the smoke suite under TCG take; a hung guest is killed then. 5.10 takes
/// the longest: its verifier needs 30-45 s per attach there, and the suite attaches five times.
pub const TIMEOUT: Duration = Duration::from_secs(480);

/// Boots `vmlinuz` with `initrd`; init runs the smoke suite for `modes` and powers off. The
/// console goes to `log`, which is returned whole.
pub fn boot(vmlinuz: &Path, initrd: &Path, modes: &str, log: &Path) -> anyhow::Result<String> {
    let _ = std::fs::remove_file(log);
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            // One host thread for both vCPUs: with multi-threaded TCG, 6.12 died now and then
            // on an int3 in bpf_dispatcher_xdp_func (the flood's test runs re-patch the XDP
            // dispatcher while the other vCPU runs it; a stale translation, not a kernel bug).
            "tcg,thread=single",
            "-cpu",
            "max",
            "-smp",
            "2",
            "-m",
            "1G",
        ])
        // No NIC, no display, no default devices: the console is the only way out.
        .args(["-nodefaults", "-display", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        // panic=-1: a crash reboots, and -no-reboot turns that into qemu's exit.
        .arg(format!("console=ttyS0 panic=-1 quiet smoke_modes={modes}"))
        .stdin(Stdio::null())
        .spawn()
        .context("qemu-system-x86_64 is missing: run `cargo xtask setup`")?;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{} did not power off within {TIMEOUT:?}; its console: {}",
                vmlinuz.display(),
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let console = std::fs::read(log).with_context(|| format!("reading {}", log.display()))?;
    if !status.success() {
        bail!(
            "qemu failed ({status}); the guest's console: {}",
            log.display()
        );
    }
    Ok(String::from_utf8_lossy(&console).replace('\r', ""))
}
