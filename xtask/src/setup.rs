//! `cargo xtask setup`: the nightly rust-src component, bpf-linker 0.10.0 and the Debian
//! packages the tests use, each only when missing; then checks the kernel.

use std::process::Command;

use anyhow::{Context, bail};

use crate::exec::{exec, output};

/// bpf-linker 0.10.0 links with rustc's own LLVM; newer ones need a system LLVM 21+.
const BPF_LINKER: &str = "0.10.0";
/// Commands the tests and the demo run, and the Debian package of each.
const PACKAGES: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("ethtool", "ethtool"),
    ("nsenter", "util-linux"),
    ("tcpdump", "tcpdump"),
    // The bench's netfilter SYNPROXY scenario.
    ("nft", "nftables"),
];
const MIN_KERNEL: (u32, u32) = (6, 9);

pub fn run() -> anyhow::Result<()> {
    nightly_components()?;
    bpf_linker()?;
    packages()?;
    kernel()
}

fn nightly_components() -> anyhow::Result<()> {
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .context("rustup with a nightly toolchain is needed (rustup toolchain install nightly)")?;
    for c in ["rust-src", "clippy", "rustfmt"] {
        if !installed.lines().any(|l| l.starts_with(c)) {
            exec(Command::new("rustup").args(["component", "add", c, "--toolchain", "nightly"]))?;
        }
    }
    Ok(())
}

fn bpf_linker() -> anyhow::Result<()> {
    let have = output(Command::new("bpf-linker").arg("--version")).unwrap_or_default();
    if have.split_whitespace().any(|w| w == BPF_LINKER) {
        return Ok(());
    }
    eprintln!("xtask: installing bpf-linker {BPF_LINKER}");
    exec(crate::exec::cargo().args([
        "install",
        &format!("bpf-linker@{BPF_LINKER}"),
        "--locked",
        "--force",
    ]))
}

fn packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(cmd, _)| {
            output(Command::new("sh").args(["-c", &format!("command -v {cmd}")])).is_none()
        })
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if unsafe_euid() != 0 {
        bail!(
            "missing commands from {missing:?}: install them (apt-get install {})",
            missing.join(" ")
        );
    }
    exec(Command::new("apt-get").args(["update", "-q"]))?;
    exec(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn unsafe_euid() -> u32 {
    output(Command::new("id").arg("-u"))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u32::MAX)
}

fn kernel() -> anyhow::Result<()> {
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        bail!(
            "the kernel has no BTF (/sys/kernel/btf/vmlinux): a kernel built with CONFIG_DEBUG_INFO_BTF=y is needed"
        );
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")?;
    let mut it = release.trim().split(|c: char| !c.is_ascii_digit());
    let major: u32 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor: u32 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    if (major, minor) < MIN_KERNEL {
        bail!(
            "kernel {} is too old: Linux {}.{}+ is needed for bpf_sk_assign_tcp_reqsk",
            release.trim(),
            MIN_KERNEL.0,
            MIN_KERNEL.1
        );
    }
    Ok(())
}
