//! Builds an eBPF crate from a host crate's build script, so that a plain `cargo build` of the
//! host crate embeds the objects it loads. The eBPF crates are their own workspaces (nightly,
//! `bpfel-unknown-none`, `-Z build-std=core`, bpf-linker); `cargo xtask setup` installs what
//! this needs.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

/// Flags every eBPF object of this project is built with.
/// - The kfunc is exported so bpf-linker keeps the undefined symbol (and the call's
///   arguments) intact; the daemon patches the call before load (syncookie-user's `kfunc`).
/// - Misaligned access: headers behind a 14-byte Ethernet header are 2-byte aligned; the
///   verifier accepts misaligned packet access where the CPU does it efficiently (x86-64,
///   arm64), and word loads and stores replace byte-by-byte code on the hot path.
///
/// The same flags are in each eBPF crate's `.cargo/config.toml` for clippy run from there.
pub const RUSTFLAGS: &[&str] = &[
    "-Clink-arg=--export=bpf_sk_assign_tcp_reqsk",
    "-Ctarget-feature=+allows-misaligned-mem-access",
];

/// Builds the binaries `bins` of the eBPF crate in `crate_dir` (relative to the workspace root,
/// the parent of the calling crate) and copies each to `$OUT_DIR/<bin>.bpf.o`. Panics with what
/// to do when it fails: a build script has no other way to report.
pub fn build(crate_dir: &str, bins: &[&str]) {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("a workspace member");
    let dir = root.join(crate_dir);
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    // Sources of the eBPF crate and of every path dependency it has in this repository.
    for dep in ["syncookie-common", "syncookie-ebpf", crate_dir] {
        for f in ["src", "Cargo.toml"] {
            println!(
                "cargo:rerun-if-changed={}",
                root.join(dep).join(f).display()
            );
        }
    }
    // The shield's crate has a build script (BTF for its binary).
    println!(
        "cargo:rerun-if-changed={}",
        root.join("syncookie-ebpf/build.rs").display()
    );
    // One target directory for every eBPF build of this workspace (the shield's and the lab's,
    // debug and release host builds, the static musl release): `core` is built once.
    // `$OUT_DIR` is `<target>/<profile>/build/<pkg>/out`, or with `--target`
    // `<target>/<triple>/<profile>/build/<pkg>/out`.
    let target_dir = out
        .ancestors()
        .nth(4)
        .map(|t| match (t.file_name(), env::var_os("TARGET")) {
            (Some(dir), Some(triple)) if dir == triple => t.parent().unwrap_or(t),
            _ => t,
        })
        .map_or_else(|| out.join("ebpf-target"), |t| t.join("ebpf"));
    let mut cmd = Command::new("rustup");
    cmd.current_dir(&dir)
        .args(["run", "nightly", "cargo", "build", "--release"])
        .args(["-Z", "build-std=core", "--target", "bpfel-unknown-none"])
        .arg("--target-dir")
        .arg(&target_dir);
    for b in bins {
        cmd.args(["--bin", b]);
    }
    // The outer cargo's settings (clippy's wrapper, host rustflags, its toolchain) must not leak
    // into the nightly BPF build.
    for var in [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "RUSTUP_TOOLCHAIN",
        "CARGO",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", RUSTFLAGS.join("\x1f"));
    let status = cmd.status().unwrap_or_else(|e| {
        panic!("cannot run rustup to build {crate_dir} ({e}): run `cargo xtask setup`")
    });
    if !status.success() {
        panic!(
            "building {crate_dir} failed: it needs the nightly toolchain with rust-src and \
             bpf-linker 0.10.0; run `cargo xtask setup`"
        );
    }
    let objs = target_dir.join("bpfel-unknown-none/release");
    for b in bins {
        copy(&objs.join(b), &out.join(format!("{b}.bpf.o")));
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
}
