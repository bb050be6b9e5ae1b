//! `cargo xtask`: the project's tasks. Every task runs `setup` first, so a fresh machine needs
//! no hand work.

mod build;
mod exec;
mod image;
mod kernels;
mod package;
mod packages;
mod release;
mod setup;
mod test;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "syncookie's build, load, test, demo and bench tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what the build and tests need (idempotent) and check the kernel.
    Setup,
    /// Build the eBPF object (and the daemon that embeds it).
    BuildEbpf,
    /// Build everything and run `syncookie run` on an interface in the foreground.
    ///
    /// Example: cargo xtask build-and-load --iface eth0 --ports 80,443
    BuildAndLoad(build::LoadOptions),
    /// Format check, clippy (host and eBPF crates) and every test (needs root).
    Test(test::Options),
    /// The smoke suite on the host kernel and on Debian's kernels under qemu (6.1, 6.12 LTS):
    /// prints the matrix kernel x mode x result.
    TestKernels(kernels::Options),
    /// Clippy with -D warnings on the host crates and the eBPF crate.
    Clippy,
    /// Two namespaces, a server behind the shield, real clients and a spoofed SYN flood; prints
    /// the counters and removes everything it created.
    Demo,
    /// Benchmarks: the shield against the kernel's own defences, side by side (not a test).
    Bench(build::BenchOptions),
    /// A Debian package (target/debian/): the static daemon, the systemd unit, a sample config.
    Package,
    /// The OCI image FROM scratch with the static daemon (podman), saved as
    /// target/image/syncookie_VERSION.oci.tar.
    Image,
    /// The .deb installed, run, verified and purged on clean Debian 11 and 12 systems
    /// (debootstrap), and the smoke suite run from the OCI image (podman, host network).
    TestPackages(packages::Options),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    setup::run()?;
    match cli.cmd {
        Cmd::Setup => Ok(()),
        Cmd::BuildEbpf => build::ebpf(),
        Cmd::BuildAndLoad(o) => build::build_and_load(o),
        Cmd::Test(o) => test::run(o),
        Cmd::TestKernels(o) => kernels::run(o),
        Cmd::Clippy => test::clippy(),
        Cmd::Demo => build::demo(),
        Cmd::Bench(o) => build::bench(o),
        Cmd::Package => package::run(),
        Cmd::Image => image::run(),
        Cmd::TestPackages(o) => packages::run(o),
    }
}
