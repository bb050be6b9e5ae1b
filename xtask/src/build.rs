//! Build tasks: the eBPF object, build-and-load, and the lab programs (demo, bench).

use std::process::Command;

use crate::exec::{cargo, exec, root};

/// Arguments passed on to `syncookie run`.
#[derive(clap::Args)]
pub struct LoadOptions {
    /// Interface to protect.
    #[arg(long)]
    iface: String,
    /// TCP ports to protect, comma-separated.
    #[arg(long)]
    ports: String,
    /// Anything else for `syncookie run` (e.g. --xdp-mode skb --rotate-secs 30).
    #[arg(last = true)]
    rest: Vec<String>,
}

#[derive(clap::Args)]
pub struct BenchOptions {
    /// Anything for the bench runner (see `cargo xtask bench -- --help`).
    #[arg(last = true)]
    rest: Vec<String>,
}

/// The eBPF object is built by syncookie-user's build.rs (nightly, bpfel-unknown-none,
/// build-std, bpf-linker) and embedded in the daemon: building the daemon builds it.
pub fn ebpf() -> anyhow::Result<()> {
    exec(
        cargo()
            .current_dir(root())
            .args(["build", "--release", "-p", "syncookie-user"]),
    )?;
    println!("built: target/release/syncookie (the eBPF object is embedded)");
    Ok(())
}

pub fn build_and_load(o: LoadOptions) -> anyhow::Result<()> {
    ebpf()?;
    exec(
        Command::new(root().join("target/release/syncookie"))
            .args(["run", "--iface", &o.iface, "--ports", &o.ports])
            .args(&o.rest),
    )
}

/// Builds the daemon and `package`'s binaries, then runs `name` from the latter.
fn lab_bin(package: &str, name: &str, args: &[String]) -> anyhow::Result<()> {
    exec(cargo().current_dir(root()).args([
        "build",
        "--release",
        "-p",
        "syncookie-user",
        "-p",
        package,
        "--bins",
    ]))?;
    exec(Command::new(root().join("target/release").join(name)).args(args))
}

pub fn demo() -> anyhow::Result<()> {
    lab_bin("syncookie-tests", "demo", &[])
}

pub fn bench(o: BenchOptions) -> anyhow::Result<()> {
    crate::setup::bench_packages()?;
    lab_bin("syncookie-bench", "bench", &o.rest)
}
