//! The initramfs a kernel of the matrix boots: busybox, the host's iproute2 and ethtool, the
//! static release `syncookie` (the very file the `.deb` and the image ship: no library copied
//! for it), `smoke` (stripped), the shared libraries of the others (as ldd finds them), the
//! kernel modules the lab needs from the same kernel package, and init.sh.
//! Packed with `cpio -H newc`, uncompressed: it is built on every run and the kernel reads it
//! from memory.

use std::{
    collections::BTreeSet,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use super::fetch::Kernel;
use crate::exec::{exec, output};

/// Modules the lab loads (with what they depend on): veth for the pair; the clsact qdisc and
/// cls_bpf for TC programs on kernels before TCX (6.6); virtio_net (with failover and
/// net_failover) for the virtio-net row's NIC, and virtio_pci where it is not built in.
const MODULES: &[&str] = &["veth", "sch_ingress", "cls_bpf", "virtio_pci", "virtio_net"];
/// 8021q (with garp, mrp, stp, llc) for the VLAN device of the smoke suite's vlan-offload
/// check. Whether the kernel package has it is decided here, once: the image tells the suite
/// (`/etc/smoke-vlan`), which then fails the check if no VLAN device can be made, or says
/// loudly that it skipped it where the package has no 8021q (Debian's cloud kernels have it).
const VLAN_MODULE: &str = "8021q";
/// Host tools the lab runs (busybox has an `ip` and a `tc`, too small for it).
const HOST_TOOLS: &[&str] = &["ip", "tc", "ethtool", "xdp-loader", "xdp-filter"];
/// libxdp's objects (the dispatcher, xdp-filter's programs), where libxdp1 and xdp-tools put
/// them: the smoke suite's hook-sharing check runs Debian's xdp-tools beside the shield.
const LIBXDP_OBJECTS: &str = "usr/lib/x86_64-linux-gnu/bpf";
const INIT: &str = include_str!("init.sh");

/// Builds `<dir>/initramfs.cpio` for `k` with the static `daemon` and the binaries `bins`
/// (placed in /usr/bin).
pub fn build(k: &Kernel, daemon: &Path, bins: &[PathBuf], dir: &Path) -> anyhow::Result<PathBuf> {
    let tree = dir.join("initramfs.d");
    if tree.exists() {
        std::fs::remove_dir_all(&tree)?;
    }
    for d in [
        "bin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "var",
        "root",
        "lib/modules",
    ] {
        std::fs::create_dir_all(tree.join(d))?;
    }
    std::os::unix::fs::symlink("../run", tree.join("var/run"))?;
    let mut libs = BTreeSet::new();
    busybox(&tree, &mut libs)?;
    for tool in HOST_TOOLS {
        let path = which(tool)?;
        copy(&path, &tree.join("usr/sbin").join(tool))?;
        libs.extend(shared_libs(&path)?);
    }
    let objs = Path::new("/").join(LIBXDP_OBJECTS);
    std::fs::create_dir_all(tree.join(LIBXDP_OBJECTS))?;
    for e in std::fs::read_dir(&objs).with_context(|| format!("{}", objs.display()))? {
        let e = e?;
        copy(&e.path(), &tree.join(LIBXDP_OBJECTS).join(e.file_name()))?;
    }
    // As shipped: no strip, no libraries (`ensure_static` refuses a dynamic one).
    crate::release::ensure_static(daemon)?;
    copy(daemon, &tree.join("usr/bin/syncookie"))?;
    for bin in bins {
        let name = bin.file_name().context("binary name")?;
        // Debug builds carry hundreds of MB of debug info the VM does not need.
        exec(
            Command::new("strip")
                .arg("-o")
                .arg(tree.join("usr/bin").join(name))
                .arg(bin),
        )?;
        libs.extend(shared_libs(bin)?);
    }
    for lib in &libs {
        let to = tree.join(lib.strip_prefix("/").unwrap_or(lib));
        std::fs::create_dir_all(to.parent().unwrap())?;
        copy(lib, &to)?;
    }
    let (order, vlan) = modules(k, &tree.join("lib/modules"))?;
    std::fs::write(tree.join("etc/modules"), order.join("\n") + "\n")?;
    std::fs::write(tree.join("etc/smoke-vlan"), vlan)?;
    let init = tree.join("init");
    std::fs::write(&init, INIT)?;
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755))?;
    let out = dir.join("initramfs.cpio");
    let file = std::fs::File::create(&out)?;
    exec(
        Command::new("sh")
            .args([
                "-c",
                "find . -print0 | cpio --null -o -H newc -R 0:0 --quiet",
            ])
            .current_dir(&tree)
            .stdout(file),
    )?;
    Ok(out)
}

fn which(cmd: &str) -> anyhow::Result<PathBuf> {
    let p = output(Command::new("sh").args(["-c", &format!("command -v {cmd}")]))
        .with_context(|| format!("{cmd} is missing: run `cargo xtask setup`"))?;
    Ok(PathBuf::from(p.trim()))
}

/// Copies the file's content (a symlink is followed) and its permissions.
fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// busybox in /bin with a link per applet: the shell, mount, insmod, nsenter, sysctl...
fn busybox(tree: &Path, libs: &mut BTreeSet<PathBuf>) -> anyhow::Result<()> {
    let path = which("busybox")?;
    copy(&path, &tree.join("bin/busybox"))?;
    libs.extend(shared_libs(&path)?);
    let list = output(Command::new(&path).arg("--list")).context("busybox --list")?;
    for applet in list.lines().filter(|a| !a.is_empty() && *a != "busybox") {
        std::os::unix::fs::symlink("busybox", tree.join("bin").join(applet))?;
    }
    Ok(())
}

/// The shared libraries `ldd` lists for `bin`, the dynamic loader included; none for a static
/// binary.
fn shared_libs(bin: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(bin).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // "not a dynamic executable": a static binary needs nothing.
        return Ok(Vec::new());
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)", "/lib64/ld-linux-x86-64.so.2
        // (0x...)", "linux-vdso.so.1 (0x...)" (in the kernel: nothing to copy).
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        match path {
            Some(p) if p.starts_with('/') => libs.push(PathBuf::from(p)),
            Some("not") => bail!("{}: a library is missing: {line}", bin.display()),
            _ => {}
        }
    }
    Ok(libs)
}

/// Copies [`MODULES`] (and [`VLAN_MODULE`] where the package has it) with their dependencies
/// (modules.dep) into `to` as `<name>.ko`, decompressed (busybox's insmod reads plain ELF);
/// returns the names in load order, and the smoke suite's `--vlan` (`required` or `absent`).
fn modules(k: &Kernel, to: &Path) -> anyhow::Result<(Vec<String>, &'static str)> {
    let dep_file = k.modules().join("modules.dep");
    let deps = std::fs::read_to_string(&dep_file)
        .with_context(|| format!("reading {}", dep_file.display()))?;
    // Built into this kernel: nothing to load.
    let builtin = std::fs::read_to_string(k.modules().join("modules.builtin")).unwrap_or_default();
    let builtin: BTreeSet<String> = builtin.lines().map(module_name).collect();
    let mut order = Vec::new();
    for m in MODULES.iter().filter(|m| !builtin.contains(**m)) {
        add_module(m, &deps, &mut order).with_context(|| format!("module {m} of {}", k.package))?;
    }
    let vlan = if builtin.contains(VLAN_MODULE) {
        "required"
    } else {
        match add_module(VLAN_MODULE, &deps, &mut order) {
            Ok(()) => "required",
            Err(e) => {
                eprintln!(
                    "test-kernels: {}: {e:#}: NO VLAN CHECK on this kernel (vlan-offload \
                     skipped)",
                    k.package
                );
                "absent"
            }
        }
    };
    let mut names = Vec::new();
    for rel in &order {
        let name = module_name(rel);
        let from = k.modules().join(rel);
        let dest = to.join(format!("{name}.ko"));
        let plain = std::fs::File::create(&dest)?;
        let decompress = |tool: &str| {
            exec(
                Command::new(tool)
                    .arg("-dc")
                    .arg(&from)
                    .stdout(plain.try_clone()?),
            )
        };
        match Path::new(rel).extension().and_then(|e| e.to_str()) {
            Some("xz") => decompress("xz")?,
            Some("zst") => decompress("zstd")?,
            Some("gz") => decompress("gzip")?,
            _ => copy(&from, &dest)?,
        }
        names.push(name);
    }
    Ok((names, vlan))
}

/// Appends `name`'s modules.dep path after those of its dependencies (each once).
fn add_module(name: &str, deps: &str, order: &mut Vec<String>) -> anyhow::Result<()> {
    let line = deps
        .lines()
        .find(|l| l.split(':').next().is_some_and(|p| module_name(p) == name))
        .with_context(|| format!("{name} is not in modules.dep (built into the kernel?)"))?;
    let (path, needs) = line.split_once(':').unwrap();
    if order.iter().any(|p| p == path) {
        return Ok(());
    }
    // modules.dep lists every dependency, transitively; load the deepest first.
    for dep in needs.split_whitespace().rev() {
        if !order.iter().any(|p| p == dep) {
            add_module(&module_name(dep), deps, order)?;
        }
    }
    order.push(path.to_string());
    Ok(())
}

/// kernel/net/sched/sch_ingress.ko.xz -> sch_ingress
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split(".ko").next().unwrap_or(file).replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_load_after_their_dependencies() {
        let deps = "kernel/a/x.ko.xz: kernel/b/y.ko.xz kernel/c/z.ko.xz\n\
                    kernel/b/y.ko.xz: kernel/c/z.ko.xz\n\
                    kernel/c/z.ko.xz:\n\
                    kernel/d/w-v.ko:\n";
        let mut order = Vec::new();
        add_module("x", deps, &mut order).unwrap();
        add_module("w_v", deps, &mut order).unwrap();
        add_module("y", deps, &mut order).unwrap();
        assert_eq!(
            order,
            [
                "kernel/c/z.ko.xz",
                "kernel/b/y.ko.xz",
                "kernel/a/x.ko.xz",
                "kernel/d/w-v.ko"
            ]
        );
        assert!(add_module("nope", deps, &mut order).is_err());
    }
}
