//! Builds the eBPF object (nightly, bpfel-unknown-none, build-std=core) so that a plain
//! `cargo build` of the daemon embeds the programs it loads: one binary to install.
//! `cargo xtask setup` installs what this needs (rust-src, bpf-linker).

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap();
    let ebpf = root.join("syncookie-ebpf");
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    for dir in ["syncookie-ebpf/src", "syncookie-common/src"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    for f in ["syncookie-ebpf/Cargo.toml", "syncookie-common/Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let target_dir = out.join("ebpf-target");
    let mut cmd = Command::new("rustup");
    cmd.current_dir(&ebpf)
        .args(["run", "nightly", "cargo", "build", "--release"])
        .args(["-Z", "build-std=core", "--target", "bpfel-unknown-none"])
        .arg("--target-dir")
        .arg(&target_dir);
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
    // Exported so bpf-linker keeps the undefined kfunc (and the call's arguments) intact.
    // Misaligned access: headers behind a 14-byte Ethernet header are 2-byte aligned; the
    // verifier accepts misaligned packet access where the CPU does it efficiently (x86-64,
    // arm64), and word loads and stores replace byte-by-byte code on the hot path.
    cmd.env(
        "CARGO_ENCODED_RUSTFLAGS",
        "-Clink-arg=--export=bpf_sk_assign_tcp_reqsk\x1f-Ctarget-feature=+allows-misaligned-mem-access",
    );
    let status = cmd.status().unwrap_or_else(|e| {
        panic!("cannot run rustup to build the eBPF programs ({e}): run `cargo xtask setup`")
    });
    if !status.success() {
        panic!(
            "building syncookie-ebpf failed: needs the nightly toolchain with rust-src and \
             bpf-linker 0.10.0; run `cargo xtask setup`"
        );
    }
    let objs = target_dir.join("bpfel-unknown-none/release");
    copy(&objs.join("syncookie"), &out.join("syncookie.bpf.o"));
    copy(&objs.join("lab"), &out.join("lab.bpf.o"));
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
}
