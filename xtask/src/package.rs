//! `cargo xtask package`: a Debian package of the daemon, its systemd template unit and a
//! sample config, built with cargo-deb (installed on first use).

use std::process::Command;

use crate::exec::{cargo, exec, output, root};

const CARGO_DEB: &str = "3.8.0";

pub fn run() -> anyhow::Result<()> {
    let have = output(Command::new("cargo-deb").arg("--version")).unwrap_or_default();
    if !have.contains(CARGO_DEB) {
        eprintln!("xtask: installing cargo-deb {CARGO_DEB}");
        exec(cargo().args(["install", &format!("cargo-deb@{CARGO_DEB}"), "--locked"]))?;
    }
    exec(
        cargo()
            .current_dir(root())
            .args(["deb", "-p", "syncookie-user"]),
    )?;
    let debs: Vec<_> = std::fs::read_dir(root().join("target/debian"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    for d in &debs {
        println!("built {}", d.display());
        exec(Command::new("dpkg-deb").arg("--contents").arg(d))?;
    }
    Ok(())
}
