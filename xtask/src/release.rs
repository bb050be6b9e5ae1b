//! The release binary that ships: `syncookie` linked statically against musl, so one file runs
//! on any x86-64 Linux, whatever its C library (Debian 11's glibc 2.31 cannot load a binary
//! built here against glibc 2.36: it asks for `GLIBC_2.34`). The `.deb`, the OCI image and the
//! kernel matrix's initramfs all carry this one file.

use std::{path::PathBuf, process::Command};

use anyhow::{Context, bail};

use crate::exec::{cargo, exec, output, root};

/// Rust's musl target links the C library in (`crt-static` is its default): no loader, no
/// shared libraries.
pub const TARGET: &str = "x86_64-unknown-linux-musl";

/// Builds the static release binary (adding the target to the toolchain when it is missing) and
/// checks that it is static; returns its path.
pub fn build() -> anyhow::Result<PathBuf> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))
        .context("rustup is needed (https://rustup.rs)")?;
    if !installed.lines().any(|l| l.trim() == TARGET) {
        eprintln!("xtask: adding the Rust target {TARGET}");
        exec(Command::new("rustup").args(["target", "add", TARGET]))?;
    }
    exec(cargo().current_dir(root()).args([
        "build",
        "--release",
        "--target",
        TARGET,
        "-p",
        "syncookie-user",
    ]))?;
    let bin = crate::kernels::target_dir()
        .join(TARGET)
        .join("release/syncookie");
    ensure_static(&bin)?;
    Ok(bin)
}

/// Fails unless `bin` is a static executable: no program interpreter (the dynamic loader) and
/// no shared library needed, read from its ELF headers. Rust's musl target makes a static PIE
/// (`static-pie linked`: it relocates itself, so ASLR still places it, which a privileged daemon
/// wants): it keeps a dynamic section for that, with no `DT_NEEDED` entry; glibc's `ldd` says
/// "statically linked".
pub fn ensure_static(bin: &std::path::Path) -> anyhow::Result<()> {
    let data = std::fs::read(bin).with_context(|| format!("reading {}", bin.display()))?;
    let found =
        dynamic_needs(&data).with_context(|| format!("{}: not an ELF64 file", bin.display()))?;
    if !found.is_empty() {
        bail!(
            "{} is not static: it has {} (it would need the build machine's C library)",
            bin.display(),
            found.join(" and ")
        );
    }
    Ok(())
}

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NEEDED: u64 = 1;

/// What makes a little-endian ELF64 file need a loader: a `PT_INTERP` program header, or
/// `DT_NEEDED` entries (shared libraries) in its dynamic section; None if it is not such a
/// file.
fn dynamic_needs(elf: &[u8]) -> Option<Vec<String>> {
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?));
    let phoff = u64_at(0x20)? as usize;
    let (phentsize, phnum) = (usize::from(u16_at(0x36)?), usize::from(u16_at(0x38)?));
    let mut found = Vec::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        match u32_at(ph)? {
            PT_INTERP => found.push("a program interpreter (PT_INTERP)".to_string()),
            PT_DYNAMIC => {
                let (offset, size) = (u64_at(ph + 8)? as usize, u64_at(ph + 32)? as usize);
                // Elf64_Dyn: d_tag, d_val, 8 bytes each.
                let needed = (offset..offset + size)
                    .step_by(16)
                    .filter(|&d| u64_at(d) == Some(DT_NEEDED))
                    .count();
                if needed > 0 {
                    found.push(format!("{needed} shared libraries (DT_NEEDED)"));
                }
            }
            _ => {}
        }
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The xtask test binary is built for the host (glibc, dynamic): the check must see it.
    #[test]
    fn a_dynamic_binary_is_refused() {
        let me = std::env::current_exe().unwrap();
        let data = std::fs::read(&me).unwrap();
        let found = dynamic_needs(&data).expect("an ELF64 file");
        assert_eq!(found[0], "a program interpreter (PT_INTERP)");
        assert!(
            found[1].ends_with("shared libraries (DT_NEEDED)"),
            "{found:?}"
        );
        assert!(ensure_static(&me).is_err());
        assert_eq!(dynamic_needs(b"#!/bin/sh\n"), None);
    }
}
