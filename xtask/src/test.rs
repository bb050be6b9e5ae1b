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

pub fn run(o: Options) -> anyhow::Result<()> {
    if !o.no_lint {
        exec(
            cargo()
                .current_dir(root())
                .args(["fmt", "--all", "--", "--check"]),
        )?;
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

pub fn clippy() -> anyhow::Result<()> {
    exec(cargo().current_dir(root()).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The eBPF crate: nightly, its own target and build-std (see syncookie-ebpf/.cargo).
    exec(
        std::process::Command::new("rustup")
            .current_dir(root().join("syncookie-ebpf"))
            .args([
                "run",
                "nightly",
                "cargo",
                "clippy",
                "--release",
                "--",
                "-D",
                "warnings",
            ])
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("CARGO"),
    )
}
