//! `cargo xtask test-kernels`: the smoke suite (tests/src/bin/smoke.rs) on the host kernel and
//! on Debian's kernel packages booted under qemu, each in every mode; prints the matrix kernel x
//! mode x result and fails unless every cell is as expected.

mod fetch;
mod initramfs;
mod matrix;
mod qemu;
mod virtio;

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::bail;

use crate::exec::{cargo, exec, root};

#[derive(clap::Args)]
pub struct Options {
    /// Only the packaged kernels whose package name contains this (e.g. 6.12).
    #[arg(long)]
    only: Option<String>,
    /// Skip the host kernel (and the host's stamp-expiry test).
    #[arg(long)]
    no_host: bool,
}

/// Where builds go (`CARGO_TARGET_DIR` or target/).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

pub fn run(o: Options) -> anyhow::Result<()> {
    let started = Instant::now();
    crate::setup::matrix_packages()?;
    // The binaries `cargo xtask test` builds too: after it, nothing is rebuilt.
    exec(
        cargo()
            .current_dir(root())
            .args(["build", "--workspace", "--bins"]),
    )?;
    // Kernel-cookie mode after the kernel's own stamp expired (TCP_SYNCOOKIE_VALID, 120 s, a
    // constant of the kernel): 130 s of waiting, run on the host beside the VMs, where it
    // costs no time of its own. `cargo xtask test` skips it (#[ignore]).
    let expiry = (!o.no_host).then(stamp_expiry_test).transpose()?;
    let bin_dir = target_dir().join("debug");
    let bins = [
        bin_dir.join("syncookie"),
        bin_dir.join("smoke"),
        bin_dir.join("virtio"),
    ];
    // The kernels boot the release binary that ships (static: the initramfs holds no library
    // for it); the host row runs the debug build beside smoke, as `cargo xtask test` does.
    let daemon = crate::release::build()?;
    let cache = target_dir().join("kernels");
    let modes = matrix::mode_list();
    let mut rows = Vec::new();
    if !o.no_host {
        rows.extend(host(&bins[1], &modes)?);
    }
    for spec in fetch::KERNELS {
        let package = fetch::newest(spec, &cache)?;
        if o.only
            .as_ref()
            .is_some_and(|s| !package.contains(s.as_str()))
        {
            continue;
        }
        let k = fetch::fetch(spec, package, &cache)?;
        let initrd = initramfs::build(&k, &daemon, &bins[1..], &k.root)?;
        let log = k.root.join("console.log");
        eprintln!(
            "test-kernels: booting {} (console: {})",
            k.package,
            log.display()
        );
        let t = Instant::now();
        let (console, failure) = match qemu::boot(&k.vmlinuz(), &initrd, &modes, &log) {
            Ok(c) => (c, None),
            Err(e) => (
                std::fs::read_to_string(&log).unwrap_or_default(),
                Some(format!("{e:#}")),
            ),
        };
        echo_smoke_lines(&console);
        let name = format!("{} ({})", k.version, k.distro);
        let secs = t.elapsed().as_secs();
        rows.extend(matrix::rows(
            &name,
            &k.version,
            &console,
            failure.as_deref(),
            secs,
        ));
        rows.extend(virtio::rows(&k, &initrd, &bins[2]));
    }
    matrix::print(&rows);
    let mut expiry_ok = true;
    if let Some(expiry) = expiry {
        let expired = expiry.wait_with_output()?;
        expiry_ok = expired.status.success();
        println!(
            "test-kernels: {} (this host): kernel mode after the stamp expired (130 s): {}",
            std::fs::read_to_string("/proc/sys/kernel/osrelease")?.trim(),
            if expiry_ok { "PASS" } else { "FAIL" }
        );
        if !expiry_ok {
            eprintln!(
                "{}{}",
                String::from_utf8_lossy(&expired.stdout),
                String::from_utf8_lossy(&expired.stderr)
            );
        }
    }
    println!("test-kernels: done in {} s", started.elapsed().as_secs());
    if rows.iter().any(|r| !r.ok) || !expiry_ok {
        bail!("some kernels did not do what they should: see the matrix above");
    }
    Ok(())
}

/// Starts kernel_cookies' ignored `connections_succeed_after_the_stamp_expired` on the host.
fn stamp_expiry_test() -> anyhow::Result<std::process::Child> {
    let test = "connections_succeed_after_the_stamp_expired";
    Ok(cargo()
        .current_dir(root())
        .args([
            "test",
            "-p",
            "syncookie-tests",
            "--test",
            "kernel_cookies",
            "--",
        ])
        .args(["--ignored", "--exact", test])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?)
}

/// The smoke suite's `--vlan` on the host: its own kernel may lack 802.1Q (this project's VMs
/// do): expected only where the module is loaded or can be.
pub fn host_vlan() -> &'static str {
    if std::path::Path::new("/sys/module/8021q").exists()
        || Command::new("modprobe")
            .args(["-n", "-q", "8021q"])
            .status()
            .is_ok_and(|s| s.success())
    {
        "required"
    } else {
        eprintln!("xtask: the host kernel has no 8021q: NO VLAN CHECK on the host");
        "absent"
    }
}

/// The smoke suite on the running kernel, directly.
fn host(smoke: &std::path::Path, modes: &str) -> anyhow::Result<Vec<matrix::Row>> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")?;
    let release = release.trim();
    eprintln!("test-kernels: smoke suite on the host kernel {release}");
    let t = Instant::now();
    let vlan = host_vlan();
    let out = Command::new(smoke)
        .args(["--modes", modes, "--vlan", vlan])
        .stderr(Stdio::inherit())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    echo_smoke_lines(&stdout);
    let failure = (!out.status.success()).then(|| format!("smoke exited with {}", out.status));
    Ok(matrix::rows(
        &format!("{release} (this host)"),
        release,
        &stdout,
        failure.as_deref(),
        t.elapsed().as_secs(),
    ))
}

/// The suite's own lines, for the log (the console also holds the kernel's messages).
fn echo_smoke_lines(text: &str) {
    for l in text
        .lines()
        .filter(|l| l.trim_start().starts_with("smoke: "))
    {
        eprintln!("  {}", l.trim());
    }
}
