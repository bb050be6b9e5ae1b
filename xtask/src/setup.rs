//! `cargo xtask setup`: the nightly rust-src component, bpf-linker 0.10.0 and the Debian packages
//! the tests and the demo use, each only when missing; then checks the kernel. The kernel
//! matrix's packages (qemu, busybox, the backports source of Debian's 6.12 kernels) are
//! installed by `test-kernels` itself (`matrix_packages`), so a machine that only builds and
//! tests never installs them.
//!
//! Every apt install is simulated first (`apt-get install -s`) against the packages the machine
//! already has: the image ships qemu-utils from bookworm-backports, beside which bookworm's own
//! qemu-system-x86 cannot be installed (apt would remove qemu-utils or refuse). An install that
//! would remove a package is tried again from the distribution's backports, and refused with the
//! command that fixes it when neither resolves.

use std::process::Command;

use anyhow::{Context, bail};

use crate::exec::{exec, output, show};

/// bpf-linker 0.10.0 links with rustc's own LLVM; newer ones need a system LLVM 21+.
const BPF_LINKER: &str = "0.10.0";
/// Commands `cargo xtask test`, `demo` and `bench` run, and the Debian package of each.
const PACKAGES: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("tc", "iproute2"),
    ("ethtool", "ethtool"),
    ("nsenter", "util-linux"),
    ("sysctl", "procps"),
    // Firewall tests (conntrack rulesets) and the bench's netfilter SYNPROXY scenario.
    ("nft", "nftables"),
    // Hook sharing: libxdp's dispatcher object (libxdp1 comes with xdp-tools) for the tests,
    // and Debian's xdp-tools 1.3.1 beside the shield in the smoke suite.
    ("xdp-loader", "xdp-tools"),
];
/// `test-kernels`: boots Debian's kernels (TCG) with an initramfs made of busybox, the host's
/// tools and our binaries; depmod writes the modules.dep the kernel packages leave out.
const MATRIX_PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("busybox", "busybox-static"),
    ("cpio", "cpio"),
    ("depmod", "kmod"),
    ("strip", "binutils"),
    ("xz", "xz-utils"),
    ("dpkg-deb", "dpkg"),
    ("apt-cache", "apt"),
];
/// `bench`: Apache's `ab` drives the new-connection rate.
const BENCH_PACKAGES: &[(&str, &str)] = &[("ab", "apache2-utils")];
const MIN_KERNEL: (u32, u32) = (6, 9);

pub fn run() -> anyhow::Result<()> {
    nightly_components()?;
    bpf_linker()?;
    let mut apt = Apt::default();
    apt.ensure(PACKAGES)?;
    kernel()
}

/// What `test-kernels` needs beyond `run`: the backports source (Debian 12's 6.12 kernels) and
/// the matrix's packages.
pub fn matrix_packages() -> anyhow::Result<()> {
    let mut apt = Apt::default();
    if backports()? {
        apt.update()?;
    }
    apt.ensure(MATRIX_PACKAGES)
}

/// What `bench` needs beyond `run`.
pub fn bench_packages() -> anyhow::Result<()> {
    Apt::default().ensure(BENCH_PACKAGES)
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

/// The distribution's codename (`bookworm`), from /etc/os-release.
fn codename() -> Option<String> {
    let release = std::fs::read_to_string("/etc/os-release").ok()?;
    release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|s| s.trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
}

/// apt, its lists updated at most once per run and only when something is missing or a
/// source was added.
#[derive(Default)]
struct Apt {
    updated: bool,
}

impl Apt {
    /// Installs the package of every command in `wanted` that is not on PATH.
    fn ensure(&mut self, wanted: &[(&str, &str)]) -> anyhow::Result<()> {
        let mut missing: Vec<&str> = wanted
            .iter()
            .filter(|(cmd, _)| !on_path(cmd))
            .map(|(_, pkg)| *pkg)
            .collect();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        if euid() != 0 {
            bail!(
                "missing commands from the packages {missing:?}: as root, run `apt-get install {}` \
                 (or `cargo xtask setup`)",
                missing.join(" ")
            );
        }
        self.update()?;
        // Each package on its own: one that needs backports must not pull the others there.
        for pkg in missing {
            self.install(pkg)?;
        }
        Ok(())
    }

    fn update(&mut self) -> anyhow::Result<()> {
        if !self.updated {
            exec(Command::new("apt-get").args(["update", "-q"]))?;
            self.updated = true;
        }
        Ok(())
    }

    /// Installs `pkg` from the first suite whose simulated install removes nothing: the
    /// distribution's default, then its backports (when a source names them).
    fn install(&mut self, pkg: &str) -> anyhow::Result<()> {
        let mut suites = vec![None];
        if let Some(c) = codename().filter(|_| backports_named()) {
            suites.push(Some(format!("{c}-backports")));
        }
        let mut why = String::new();
        for suite in &suites {
            let mut sim = apt_install(pkg, suite.as_deref());
            sim.arg("-s");
            let out = sim
                .output()
                .with_context(|| format!("cannot run `{}`", show(&sim)))?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            let removes: Vec<&str> = text.lines().filter(|l| l.starts_with("Remv ")).collect();
            if out.status.success() && removes.is_empty() {
                eprintln!(
                    "xtask: installing {pkg}{}",
                    suite
                        .as_deref()
                        .map(|s| format!(" from {s}"))
                        .unwrap_or_default()
                );
                return exec(&mut apt_install(pkg, suite.as_deref()));
            }
            let cause = if removes.is_empty() {
                text.lines()
                    .filter(|l| {
                        l.starts_with("E:") || l.contains("Breaks") || l.contains("Depends")
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            } else {
                format!("it would remove {}", removes.join(", "))
            };
            why.push_str(&format!("\n  `{}`: {cause}", show(&sim)));
        }
        bail!(
            "cannot install {pkg} beside the packages this machine has:{why}\n\
             install it by hand from the suite of the conflicting package \
             (`apt-cache policy {pkg}` lists them; e.g. `apt-get install -t <suite> {pkg}`)"
        )
    }
}

fn apt_install(pkg: &str, suite: Option<&str>) -> Command {
    let mut c = Command::new("apt-get");
    c.args(["install", "-y", "-q", "--no-install-recommends"])
        .env("DEBIAN_FRONTEND", "noninteractive");
    if let Some(s) = suite {
        c.args(["-t", s]);
    }
    c.arg(pkg);
    c
}

fn on_path(cmd: &str) -> bool {
    output(Command::new("sh").args(["-c", &format!("command -v {cmd}")])).is_some()
}

/// Debian 12's backports carry the 6.12 LTS kernels (as does bookworm-security, where present).
const BACKPORTS: &str = "/etc/apt/sources.list.d/bookworm-backports.sources";
const BACKPORTS_SOURCE: &str = "\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

/// Whether an apt source (not commented out) names the distribution's backports.
fn backports_named() -> bool {
    let Some(c) = codename() else { return false };
    let mut sources = vec![std::path::PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        // apt reads only these; `x.list.disabled` and the like are not sources.
        sources.extend(
            dir.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources")),
        );
    }
    let want = format!("{c}-backports");
    sources.iter().any(|p| {
        std::fs::read_to_string(p).is_ok_and(|s| {
            s.lines()
                .any(|l| !l.trim_start().starts_with('#') && l.contains(&want))
        })
    })
}

/// Adds the bookworm-backports source on Debian 12 unless some apt source names it already;
/// returns whether it did (the package lists must then be updated).
fn backports() -> anyhow::Result<bool> {
    if codename().as_deref() != Some("bookworm") || backports_named() {
        return Ok(false);
    }
    if euid() != 0 {
        bail!(
            "the apt source bookworm-backports is missing: as root, write {BACKPORTS}:\n{BACKPORTS_SOURCE}"
        );
    }
    eprintln!("xtask: adding {BACKPORTS}");
    std::fs::write(BACKPORTS, BACKPORTS_SOURCE).with_context(|| format!("writing {BACKPORTS}"))?;
    Ok(true)
}

fn euid() -> u32 {
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
