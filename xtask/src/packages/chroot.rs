//! Clean Debian systems: a debootstrap of each release, made once and kept under
//! target/test-packages/ (`<suite>.base`), copied afresh for every run so that what one run
//! installs never reaches the next. Commands run in the copy with chroot inside a private
//! mount namespace (`unshare --mount`), where /proc is mounted: nothing is left mounted on the
//! host, even when a command fails or xtask is killed.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use anyhow::{Context, bail};

use crate::exec::{exec, show};

/// A Debian release as `debootstrap` names it.
pub struct Release {
    pub suite: &'static str,
    pub name: &'static str,
}

pub const RELEASES: &[Release] = &[
    Release {
        suite: "bullseye",
        name: "Debian 11",
    },
    Release {
        suite: "bookworm",
        name: "Debian 12",
    },
];

const MIRROR: &str = "http://deb.debian.org/debian";

/// The smallest system apt installs into (`minbase`: essential packages and apt) and systemd,
/// whose `systemd-analyze verify` checks the unit: a host that runs the service has it.
const INCLUDE: &str = "systemd";

/// The cached base system of `r` under `cache`, made with debootstrap when missing (a marker
/// file says it is complete; a broken one is made again).
pub fn base(r: &Release, cache: &Path) -> anyhow::Result<PathBuf> {
    let dir = cache.join(format!("{}.base", r.suite));
    let done = cache.join(format!("{}.base.complete", r.suite));
    if done.exists() {
        return Ok(dir);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(cache)?;
    eprintln!(
        "test-packages: debootstrap {} ({}) into {}",
        r.suite,
        r.name,
        dir.display()
    );
    exec(
        Command::new("debootstrap")
            .args(["--variant=minbase", &format!("--include={INCLUDE}")])
            .arg(r.suite)
            .arg(&dir)
            .arg(MIRROR),
    )?;
    std::fs::write(&done, "")?;
    Ok(dir)
}

/// A fresh copy of `base` at `to` (removing what a previous run left there).
pub fn fresh(base: &Path, to: &Path) -> anyhow::Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to).with_context(|| format!("removing {}", to.display()))?;
    }
    exec(Command::new("cp").arg("-a").arg(base).arg(to))
}

/// Runs `args` in the system at `root`, with /proc, /sys and /dev there for the command's
/// lifetime only; returns its output.
pub fn run(root: &Path, args: &[&str]) -> anyhow::Result<Output> {
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(concat!(
            r#"mount -t proc proc "$0/proc" && mount --rbind /sys "$0/sys" && "#,
            r#"mount --rbind /dev "$0/dev" && exec chroot "$0" "$@""#
        ))
        .arg(root)
        .args(args)
        // The host's locale and paths mean nothing in the chroot.
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("LC_ALL", "C");
    let out = c
        .output()
        .with_context(|| format!("cannot run `{}`", show(&c)))?;
    Ok(out)
}

/// [`run`], failing with the command and what it printed unless it succeeds; returns stdout.
pub fn check(root: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = run(root, args)?;
    if !out.status.success() {
        bail!(
            "`{}` in {} failed ({}):\n{}{}",
            args.join(" "),
            root.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
