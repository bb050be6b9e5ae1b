//! The `.deb` on a clean Debian system: install with apt (the release's own dependencies),
//! run, verify the unit, purge, and compare the system's files before and after.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use super::chroot::{self, Release};
use crate::exec::output;

/// Where dpkg and apt keep their own records and logs: they change with any install and
/// purge (dpkg's status and its `-old` copy, apt's lists and caches, the logs), so the
/// before/after comparison leaves them out. dpkg's per-package files (var/lib/dpkg/info) are
/// compared: a purge must remove them.
const BOOKKEEPING: &[&str] = &[
    "var/log",
    "var/cache/apt",
    "var/cache/debconf",
    "var/cache/ldconfig",
    "var/lib/apt",
    "var/lib/dpkg/status",
    "var/lib/dpkg/status-old",
    "var/lib/dpkg/available",
    "var/lib/dpkg/available-old",
    "var/lib/dpkg/diversions-old",
    "var/lib/dpkg/statoverride-old",
    "var/lib/dpkg/lock",
    "var/lib/dpkg/lock-frontend",
    "var/lib/dpkg/triggers/Lock",
    "var/lib/dpkg/triggers/Unincorp",
    "var/lib/dpkg/updates",
];
/// Mount points and scratch space: the kernel's, not the system's files.
const NOT_FILES: &[&str] = &["proc", "sys", "dev", "run", "tmp"];

/// One check per line: (name, what it saw or why it failed).
pub type Checks = Vec<(String, Result<String, String>)>;

pub fn test(r: &Release, deb: &Path, cache: &Path) -> anyhow::Result<Checks> {
    let base = chroot::base(r, cache)?;
    let root = cache.join(format!("{}.run", r.suite));
    chroot::fresh(&base, &root)?;
    let name = format!("{} ({})", r.name, r.suite);
    let mut checks = Checks::new();
    let in_root = PathBuf::from("/tmp").join(deb.file_name().unwrap());
    std::fs::copy(deb, root.join(in_root.strip_prefix("/").unwrap()))?;
    let in_root = in_root.to_string_lossy().into_owned();
    // What the package asks of the system: the release must provide it.
    let depends = output(
        std::process::Command::new("dpkg-deb")
            .args(["--field"])
            .arg(deb)
            .arg("Depends"),
    )
    .unwrap_or_default();
    let depends = depends.trim();
    if !depends.is_empty() {
        // debootstrap leaves no package lists behind.
        if let Err(e) = chroot::check(&root, &["apt-get", "update", "-q"]) {
            checks.push((format!("{name} apt-get update"), Err(format!("{e:#}"))));
            return Ok(checks);
        }
    }
    let before = files(&root)?;
    let install = chroot::check(&root, &["apt-get", "install", "-y", "-q", &in_root])
        .map(|_| {
            format!(
                "apt-get install {} (depends: {})",
                deb.file_name().unwrap().to_string_lossy(),
                if depends.is_empty() {
                    "nothing"
                } else {
                    depends
                }
            )
        })
        .map_err(|e| format!("{e:#}"));
    let installed = install.is_ok();
    checks.push((format!("{name} install"), install));
    if !installed {
        return Ok(checks);
    }
    checks.push((format!("{name} run"), runs(&root)));
    checks.push((format!("{name} unit"), unit(&root)));
    let purge =
        chroot::check(&root, &["dpkg", "--purge", "syncookie"]).map_err(|e| format!("{e:#}"));
    checks.push((
        format!("{name} purge"),
        match purge {
            Ok(_) => left_behind(&before, &files(&root)?),
            Err(e) => Err(e),
        },
    ));
    Ok(checks)
}

/// `syncookie --version` and `--help` in the clean system.
fn runs(root: &Path) -> Result<String, String> {
    let version = chroot::check(root, &["syncookie", "--version"]).map_err(|e| format!("{e:#}"))?;
    let want = format!("syncookie {}", env!("CARGO_PKG_VERSION"));
    if version.trim() != want {
        return Err(format!("--version said `{}`, not `{want}`", version.trim()));
    }
    let help = chroot::check(root, &["syncookie", "--help"]).map_err(|e| format!("{e:#}"))?;
    if !help.contains("Usage: syncookie") {
        return Err(format!("--help said:\n{help}"));
    }
    let libc = chroot::check(root, &["sh", "-c", "ldd --version | head -n1"]).unwrap_or_default();
    Ok(format!(
        "`{}`; --help: {} lines; the system's C library: {}",
        version.trim(),
        help.lines().count(),
        libc.trim()
    ))
}

/// `systemd-analyze verify` on an instance of the template unit, as `systemctl enable
/// syncookie@eth0` would load it. It warns about other units of a chroot (no running system):
/// every line naming ours is an error here.
fn unit(root: &Path) -> Result<String, String> {
    let out = chroot::run(
        root,
        &["systemd-analyze", "verify", "syncookie@eth0.service"],
    )
    .map_err(|e| format!("{e:#}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: Vec<&str> = text.lines().filter(|l| l.contains("syncookie")).collect();
    if !out.status.success() || !ours.is_empty() {
        return Err(format!(
            "systemd-analyze verify syncookie@eth0.service ({}):\n{text}",
            out.status
        ));
    }
    let version = chroot::check(root, &["systemd-analyze", "--version"]).unwrap_or_default();
    Ok(format!(
        "systemd-analyze verify syncookie@eth0.service: clean ({})",
        version.lines().next().unwrap_or("systemd").trim()
    ))
}

/// Every path under `root` (not following symlinks, not entering mount points or scratch
/// space, not dpkg's and apt's bookkeeping), relative to it.
fn files(root: &Path) -> anyhow::Result<BTreeSet<String>> {
    let mut all = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let skip = |list: &[&str]| {
                list.iter()
                    .any(|p| rel == *p || rel.starts_with(&format!("{p}/")))
            };
            if skip(NOT_FILES) || skip(BOOKKEEPING) {
                continue;
            }
            if e.file_type()?.is_dir() {
                stack.push(path);
            }
            all.insert(rel);
        }
    }
    Ok(all)
}

/// The purge's verdict from the file lists before the install and after the purge.
fn left_behind(before: &BTreeSet<String>, after: &BTreeSet<String>) -> Result<String, String> {
    let added: Vec<&String> = after.difference(before).collect();
    let removed: Vec<&String> = before.difference(after).collect();
    if added.is_empty() && removed.is_empty() {
        return Ok(format!(
            "dpkg --purge syncookie: the {} paths of the system are those before the install",
            after.len()
        ));
    }
    Err(format!(
        "after dpkg --purge: {} paths left behind {added:?}, {} removed {removed:?}",
        added.len(),
        removed.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_left_or_taken_is_reported() {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let before = set(&["etc", "etc/passwd"]);
        assert!(left_behind(&before, &before).is_ok());
        let e = left_behind(&before, &set(&["etc", "etc/passwd", "etc/syncookie"])).unwrap_err();
        assert!(e.contains("1 paths left behind [\"etc/syncookie\"]"), "{e}");
        let e = left_behind(&before, &set(&["etc"])).unwrap_err();
        assert!(e.contains("1 removed [\"etc/passwd\"]"), "{e}");
    }
}
