//! Boots a kernel with its initramfs under qemu and returns what its serial console printed.
//! TCG, not KVM: KVM dies with an emulation error inside this project's VMs. A cloud kernel
//! boots in about 10 s that way.

use std::{
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// More than a boot and the smoke suite under TCG take; a hung guest is killed then. 5.10 takes
/// the longest: its verifier needs 30-45 s per attach there, and the suite attaches five times.
pub const TIMEOUT: Duration = Duration::from_secs(480);

/// qemu's command line for `vmlinuz` with `initrd`, `append` added to the kernel's command
/// line and the serial console written to `log`: no NIC (a caller adds its own).
pub fn command_line(vmlinuz: &Path, initrd: &Path, append: &str, log: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "qemu-system-x86_64",
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
        // No display, no default devices: the console (and a NIC a caller adds) is the only
        // way out.
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
    ]
    .map(String::from)
    .into();
    args.push("-serial".into());
    args.push(format!("file:{}", log.display()));
    args.push("-kernel".into());
    args.push(vmlinuz.display().to_string());
    args.push("-initrd".into());
    args.push(initrd.display().to_string());
    args.push("-append".into());
    // panic=-1: a crash reboots, and -no-reboot turns that into qemu's exit.
    args.push(format!("console=ttyS0 panic=-1 quiet {append}"));
    args
}

/// Boots `vmlinuz` with `initrd`; init runs the smoke suite for `modes` and powers off. The
/// console goes to `log`, which is returned whole.
pub fn boot(vmlinuz: &Path, initrd: &Path, modes: &str, log: &Path) -> anyhow::Result<String> {
    let _ = std::fs::remove_file(log);
    let args = command_line(vmlinuz, initrd, &format!("smoke_modes={modes}"), log);
    let mut child = Command::new(&args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .spawn()
        .context("qemu-system-x86_64 is missing: run `cargo xtask setup`")?;
    let Some(status) = wait(&mut child, TIMEOUT)? else {
        bail!(
            "{} did not power off within {TIMEOUT:?}; its console: {}",
            vmlinuz.display(),
            log.display()
        );
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

/// Waits for `child` to exit: its status, or none when `limit` passed first (it is killed and
/// reaped then).
pub fn wait(child: &mut Child, limit: Duration) -> anyhow::Result<Option<ExitStatus>> {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(Some(s));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
