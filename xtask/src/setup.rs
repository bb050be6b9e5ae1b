//! `cargo xtask setup`: the nightly rust-src component, bpf-linker 0.10.0, the Debian
//! packages the tests use and the apt source of Debian's 6.12 kernels, each only when missing;
//! then checks the kernel.

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
    // test-kernels: boots Debian's kernels (TCG) with an initramfs made of busybox, the host's
    // tools and our binaries; depmod writes the modules.dep the kernel packages leave out.
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("busybox", "busybox-static"),
    ("cpio", "cpio"),
    ("depmod", "kmod"),
    ("strip", "binutils"),
    ("xz", "xz-utils"),
];
/// Debian 12's backports carry the 6.12 LTS kernels (as does bookworm-security, where present).
const BACKPORTS: &str = "/etc/apt/sources.list.d/bookworm-backports.sources";
const BACKPORTS_SOURCE: &str = "\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";
const MIN_KERNEL: (u32, u32) = (6, 9);

pub fn run() -> anyhow::Result<()> {
    nightly_components()?;
    bpf_linker()?;
    let new_source = backports()?;
    packages(new_source)?;
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

/// Adds the bookworm-backports source on Debian 12 unless some apt source names it already;
/// returns whether it did (the package lists must then be updated).
fn backports() -> anyhow::Result<bool> {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    if !release.lines().any(|l| l == "VERSION_CODENAME=bookworm") {
        return Ok(false);
    }
    let mut sources = vec![std::path::PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        // apt reads only these; `x.list.disabled` and the like are not sources.
        sources.extend(
            dir.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources")),
        );
    }
    let named = sources.iter().any(|p| {
        std::fs::read_to_string(p).is_ok_and(|s| {
            s.lines()
                .any(|l| !l.trim_start().starts_with('#') && l.contains("bookworm-backports"))
        })
    });
    if named {
        return Ok(false);
    }
    if unsafe_euid() != 0 {
        bail!(
            "the apt source bookworm-backports is missing: as root, write {BACKPORTS}:\n{BACKPORTS_SOURCE}"
        );
    }
    eprintln!("xtask: adding {BACKPORTS}");
    std::fs::write(BACKPORTS, BACKPORTS_SOURCE).with_context(|| format!("writing {BACKPORTS}"))?;
    Ok(true)
}

fn packages(update: bool) -> anyhow::Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(cmd, _)| {
            output(Command::new("sh").args(["-c", &format!("command -v {cmd}")])).is_none()
        })
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        if update {
            exec(Command::new("apt-get").args(["update", "-q"]))?;
        }
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
