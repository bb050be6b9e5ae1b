//! `cargo xtask test`: format check, clippy on every crate, then all tests. The packet and
//! namespace tests need root (CAP_BPF, CAP_NET_ADMIN).

use crate::exec::{cargo, exec, root};

#[derive(clap::Args)]
pub struct Options {
    /// Skip the format check and clippy.
    #[arg(long)]
    no_lint: bool,
    /// Passed to `cargo test` (e.g. a test name filter).
    #[arg(last = true)]
    rest: Vec<String>,
}

/// The eBPF crates: each its own workspace (nightly, `bpfel-unknown-none`, build-std).
const EBPF_CRATES: &[&str] = &["syncookie-ebpf", "lab-ebpf"];

pub fn run(o: Options) -> anyhow::Result<()> {
    if !o.no_lint {
        fmt_check()?;
        clippy()?;
    }
    // The netns tests run the `syncookie` binary: build it first (cargo test alone does not).
    exec(
        cargo()
            .current_dir(root())
            .args(["build", "--workspace", "--bins"]),
    )?;
    exec(
        cargo()
            .current_dir(root())
            .args(["test", "--workspace", "--all-targets"])
            .args(&o.rest),
    )
}

/// rustfmt on the host workspace and on each eBPF crate.
fn fmt_check() -> anyhow::Result<()> {
    exec(
        cargo()
            .current_dir(root())
            .args(["fmt", "--all", "--", "--check"]),
    )?;
    for dir in EBPF_CRATES {
        exec(nightly_cargo(dir).args(["fmt", "--", "--check"]))?;
    }
    Ok(())
}

/// `cargo` on the nightly toolchain in an eBPF crate's directory (its `.cargo/config.toml`
/// sets the target, build-std and the flags the build uses).
fn nightly_cargo(dir: &str) -> std::process::Command {
    let mut c = std::process::Command::new("rustup");
    c.current_dir(root().join(dir))
        .args(["run", "nightly", "cargo"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO");
    c
}

pub fn clippy() -> anyhow::Result<()> {
    exec(cargo().current_dir(root()).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    for dir in EBPF_CRATES {
        exec(nightly_cargo(dir).args(["clippy", "--release", "--", "-D", "warnings"]))?;
    }
    Ok(())
}
