//! `cargo xtask test-packages`: what ships, tried where it goes (not part of `cargo xtask test`:
//! it needs the network the first time, and minutes).
//! - The `.deb` on clean Debian 11 and 12 systems (debootstrap, cached): it installs with apt
//!   and the release's own dependencies, `syncookie --version` and `--help` run, the unit
//!   passes `systemd-analyze verify`, and `dpkg --purge` leaves no file behind.
//! - The OCI image: the smoke suite (tests/src/bin/smoke.rs: connections, forged ACKs, a
//!   spoofed flood while clients connect, a detach that leaves nothing) with every `syncookie`
//!   command run from the image by podman on the host network of the lab's server namespace,
//!   privileged, then as the DaemonSet runs it (its capabilities, a read-only root, its
//!   ConfigMap's TOML).
//!
//! Prints one `test-packages: <what> ok|FAIL: ...` line per check and closes with
//! `test-packages: N passed, N failed`.

pub mod apt;
mod chroot;
mod clean;
mod manifest;

use std::{
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::bail;

use crate::exec::{cargo, exec, root};

#[derive(clap::Args)]
pub struct Options {
    /// Only the Debian releases whose suite name contains this (bullseye, bookworm).
    #[arg(long)]
    only: Option<String>,
    /// Skip the clean-system test of the `.deb`.
    #[arg(long)]
    no_deb: bool,
    /// Skip the image test.
    #[arg(long)]
    no_image: bool,
}

const MANIFEST: &str = "packaging/syncookie-daemonset.yaml";

/// Host tools: debootstrap for the clean systems, podman for the image (runc where crun cannot
/// run: see `syncookie_tests::container`).
const TOOLS: &[(&str, &str)] = &[("debootstrap", "debootstrap"), ("podman", "podman")];

pub fn run(o: Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut tools = TOOLS.to_vec();
    if !o.no_image && !cgroup2_unified() {
        tools.push(("runc", "runc"));
    }
    apt::ensure(&tools)?;
    let mut results: Vec<(String, Result<String, String>)> = Vec::new();
    if !o.no_deb {
        let deb = crate::package::build()?;
        let cache = crate::kernels::target_dir().join("test-packages");
        for r in chroot::RELEASES {
            if o.only
                .as_ref()
                .is_some_and(|s| !r.suite.contains(s.as_str()))
            {
                continue;
            }
            let t = Instant::now();
            results.extend(clean::test(r, &deb, &cache)?);
            eprintln!(
                "test-packages: {} ({}) tested in {} s",
                r.name,
                r.suite,
                t.elapsed().as_secs()
            );
        }
    }
    if !o.no_image {
        let t = Instant::now();
        let img = crate::image::build()?;
        results.push((
            "image".into(),
            Ok(format!(
                "{} FROM scratch, {:.1} MB, saved as {}",
                img.tag,
                img.size as f64 / 1e6,
                img.archive.display()
            )),
        ));
        results.push(("image smoke, privileged".into(), smoke(&img.tag, &[])?));
        // As the DaemonSet runs it: its securityContext, its ConfigMap's TOML (the suite's
        // --ports override the file's). Full mode only: kernel-cookie mode sets
        // net.ipv4.tcp_syncookies, and /proc/sys is read-only in an unprivileged container
        // (the manifest says to run privileged there).
        let config = img.archive.with_file_name("daemonset.toml");
        let yaml = std::fs::read_to_string(root().join(MANIFEST))?;
        std::fs::write(&config, manifest::config_toml(&yaml)?)?;
        let config = config.to_string_lossy();
        results.push((
            "image smoke, as the DaemonSet runs it".into(),
            smoke(
                &img.tag,
                &["--unprivileged", "--config", &config, "--modes", "full"],
            )?,
        ));
        eprintln!(
            "test-packages: image built and tested in {} s",
            t.elapsed().as_secs()
        );
    }
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    for (what, r) in &results {
        match r {
            Ok(detail) => println!("test-packages: {what} ok: {detail}"),
            Err(why) => println!("test-packages: {what} FAIL: {why}"),
        }
    }
    println!("test-packages: done in {} s", started.elapsed().as_secs());
    println!(
        "test-packages: {} passed, {failed} failed",
        results.len() - failed
    );
    if failed > 0 {
        bail!("{failed} package checks failed: see above");
    }
    Ok(())
}

/// The smoke suite (with `args`) with every `syncookie` command run from `image`; its lines are
/// echoed to stderr, its verdict is the result.
fn smoke(image: &str, args: &[&str]) -> anyhow::Result<Result<String, String>> {
    exec(
        cargo()
            .current_dir(root())
            .args(["build", "-p", "syncookie-tests", "--bin", "smoke"]),
    )?;
    let bin = crate::kernels::target_dir().join("debug/smoke");
    let out = Command::new(&bin)
        .args(["--image", image, "--vlan", crate::kernels::host_vlan()])
        .args(args)
        .stderr(Stdio::inherit())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    for l in stdout.lines() {
        eprintln!("  {l}");
    }
    let results: Vec<&str> = stdout.lines().filter(|l| l.contains(" result ")).collect();
    Ok(if out.status.success() && !results.is_empty() {
        Ok(results.join("; "))
    } else {
        Err(format!(
            "smoke exited with {}: {}",
            out.status,
            results.join("; ")
        ))
    })
}

/// Whether /sys/fs/cgroup is the unified cgroup2 hierarchy alone (crun needs it).
fn cgroup2_unified() -> bool {
    crate::exec::output(Command::new("stat").args(["-f", "-c", "%T", "/sys/fs/cgroup"]))
        .is_some_and(|t| t.trim() == "cgroup2fs")
}
