//! `cargo xtask package`: a Debian package of the static daemon (see `release`), its systemd
//! template unit and a sample config, built with cargo-deb (installed on first use). Static, it
//! depends on nothing: the same file installs on Debian 11 and 12 (`cargo xtask
//! test-packages` proves it).

use std::{path::PathBuf, process::Command};

use anyhow::bail;

use crate::exec::{cargo, exec, output, root};

const CARGO_DEB: &str = "3.8.0";

pub fn run() -> anyhow::Result<()> {
    let deb = build()?;
    println!("built {}", deb.display());
    exec(Command::new("dpkg-deb").arg("--contents").arg(&deb))
}

/// Builds the static binary, then the `.deb` around it; returns the `.deb`'s path
/// (target/debian/syncookie_VERSION-1_amd64.deb).
pub fn build() -> anyhow::Result<PathBuf> {
    crate::release::build()?;
    let have = output(Command::new("cargo-deb").arg("--version")).unwrap_or_default();
    if !have.contains(CARGO_DEB) {
        eprintln!("xtask: installing cargo-deb {CARGO_DEB}");
        exec(cargo().args(["install", &format!("cargo-deb@{CARGO_DEB}"), "--locked"]))?;
    }
    let out_dir = crate::kernels::target_dir().join("debian");
    std::fs::create_dir_all(&out_dir)?;
    // `--target` makes cargo-deb take `target/release/syncookie` (the asset in
    // syncookie-user/Cargo.toml) from target/<triple>/release/. `--no-strip`: the package
    // carries the very file the image and the kernel matrix run (its debug info is already
    // left out by the release profile; its symbols stay, for backtraces).
    exec(
        cargo()
            .current_dir(root())
            .args(["deb", "-p", "syncookie-user", "--no-build", "--no-strip"])
            .args(["--target", crate::release::TARGET, "--output"])
            .arg(&out_dir),
    )?;
    // The workspace shares one version; cargo-deb adds the Debian revision 1.
    let deb = out_dir.join(format!(
        "syncookie_{}-1_amd64.deb",
        env!("CARGO_PKG_VERSION")
    ));
    if !deb.is_file() {
        bail!("cargo deb left no {}", deb.display());
    }
    Ok(deb)
}
