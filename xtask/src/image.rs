//! `cargo xtask image`: the OCI image `FROM scratch` with the static daemon alone
//! (packaging/Containerfile), built with podman (installed when missing) and saved as an OCI
//! archive that fleets load or run without a registry.

use std::process::Command;

use anyhow::Context;

use crate::{
    exec::{exec, output, root},
    packages::apt,
};

/// The image's name in the local store (podman prefixes names without a registry with
/// `localhost/`).
pub fn tag() -> String {
    format!("localhost/syncookie:{}", env!("CARGO_PKG_VERSION"))
}

pub struct Image {
    pub tag: String,
    /// target/image/syncookie_VERSION.oci.tar
    pub archive: std::path::PathBuf,
    /// As podman counts it (the layer's uncompressed size).
    pub size: u64,
}

pub fn run() -> anyhow::Result<()> {
    let img = build()?;
    println!(
        "built {} ({:.1} MB), saved as {}",
        img.tag,
        img.size as f64 / 1e6,
        img.archive.display()
    );
    Ok(())
}

pub fn build() -> anyhow::Result<Image> {
    apt::ensure(&[("podman", "podman")])?;
    let bin = crate::release::build()?;
    let dir = crate::kernels::target_dir().join("image");
    let context = dir.join("context");
    if context.exists() {
        std::fs::remove_dir_all(&context)?;
    }
    std::fs::create_dir_all(&context)?;
    std::fs::copy(&bin, context.join("syncookie"))?;
    let tag = tag();
    exec(
        Command::new("podman")
            .args(["build", "--pull=never", "--quiet", "--tag", &tag])
            .arg(format!("--build-arg=VERSION={}", env!("CARGO_PKG_VERSION")))
            .arg("--file")
            .arg(root().join("packaging/Containerfile"))
            .arg(&context),
    )?;
    let archive = dir.join(format!("syncookie_{}.oci.tar", env!("CARGO_PKG_VERSION")));
    if archive.exists() {
        std::fs::remove_file(&archive)?;
    }
    exec(
        Command::new("podman")
            .args(["save", "--quiet", "--format", "oci-archive", "--output"])
            .arg(&archive)
            .arg(&tag),
    )?;
    let size =
        output(Command::new("podman").args(["image", "inspect", "--format", "{{.Size}}", &tag]))
            .and_then(|s| s.trim().parse().ok())
            .context("podman image inspect")?;
    Ok(Image { tag, archive, size })
}
