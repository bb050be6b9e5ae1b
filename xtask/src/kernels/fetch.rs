//! Debian's kernel packages, fetched with apt (`apt-get download`, `dpkg-deb -x`) into a cache
//! under target/: a second run downloads nothing. `depmod -b` makes the modules.dep the
//! packages leave to their postinst.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::exec::{exec, output};

/// A kernel of the matrix: the newest Debian package whose name matches `pattern`.
pub struct Spec {
    /// Where admins meet it.
    pub distro: &'static str,
    /// An `apt-cache search --names-only` regular expression.
    pub pattern: &'static str,
    /// A Debian suite the host's apt sources do not have (the package is looked up and
    /// downloaded through an apt configuration of its own, under the cache: the host's
    /// sources stay as they are); `None`: the host's sources.
    pub suite: Option<&'static str>,
}

pub const KERNELS: &[Spec] = &[
    Spec {
        // Debian 11 (LTS until 2026); Ubuntu 22.04's 5.15 and RHEL 9's 5.14 are of its age.
        distro: "Debian 11",
        pattern: r"^linux-image-5\.10\.0-[0-9]+-cloud-amd64$",
        suite: Some("bullseye"),
    },
    Spec {
        distro: "Debian 12",
        pattern: r"^linux-image-6\.1\.0-[0-9]+-cloud-amd64$",
        suite: None,
    },
    Spec {
        // Backports and bookworm-security; also the LTS kernel of Debian 13 and RHEL 10.
        distro: "Debian 12, 6.12 LTS",
        pattern: r"^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64$",
        suite: None,
    },
];

/// The apt options that point apt at `suite`'s own sources, lists and cache under `cache`
/// (made, and the lists fetched, the first time).
fn suite_apt(suite: &str, cache: &Path) -> anyhow::Result<Vec<String>> {
    let dir = cache.join(format!("apt-{suite}"));
    let (lists, apt_cache) = (dir.join("lists"), dir.join("cache"));
    std::fs::create_dir_all(lists.join("partial"))?;
    std::fs::create_dir_all(apt_cache.join("archives/partial"))?;
    let sources = dir.join("sources.list");
    std::fs::write(
        &sources,
        format!(
            "deb http://deb.debian.org/debian {suite} main\n\
             deb http://security.debian.org/debian-security {suite}-security main\n"
        ),
    )?;
    let opts = vec![
        "-o".into(),
        format!("Dir::Etc::sourcelist={}", sources.display()),
        "-o".into(),
        "Dir::Etc::sourceparts=-".into(),
        "-o".into(),
        format!("Dir::State::Lists={}", lists.display()),
        "-o".into(),
        format!("Dir::Cache={}", apt_cache.display()),
    ];
    let fetched = std::fs::read_dir(&lists)?
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().contains("_Packages"));
    if !fetched {
        exec(Command::new("apt-get").args(&opts).args(["update", "-q"]))?;
    }
    Ok(opts)
}

/// The apt options for `spec`: none for the host's sources.
pub fn apt_options(spec: &Spec, cache: &Path) -> anyhow::Result<Vec<String>> {
    match spec.suite {
        Some(suite) => suite_apt(suite, cache),
        None => Ok(Vec::new()),
    }
}

/// A kernel package unpacked in the cache.
pub struct Kernel {
    pub distro: &'static str,
    pub package: String,
    /// The upstream version (6.1.192), not the package's ABI name (6.1.0-57).
    pub version: String,
    /// `uname -r`: the name of its modules directory.
    pub release: String,
    /// The unpacked package.
    pub root: PathBuf,
}

impl Kernel {
    pub fn vmlinuz(&self) -> PathBuf {
        self.root.join(format!("boot/vmlinuz-{}", self.release))
    }

    pub fn modules(&self) -> PathBuf {
        self.root.join("lib/modules").join(&self.release)
    }
}

/// `package` (see [`newest`]), downloaded and unpacked under `cache` unless it is already.
pub fn fetch(spec: &Spec, package: String, cache: &Path) -> anyhow::Result<Kernel> {
    let debs = cache.join("debs");
    std::fs::create_dir_all(&debs)?;
    let deb = match cached_deb(&debs, &package)? {
        Some(d) => d,
        None => download(&package, &debs, &apt_options(spec, cache)?)?,
    };
    let version = output(
        Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&deb)
            .arg("Version"),
    )
    .with_context(|| format!("reading the version of {}", deb.display()))?;
    // 6.1.192-3 and 6.12.117-1~deb12u1: the upstream version comes before the Debian revision.
    let version = version
        .trim()
        .split(['-', '~'])
        .next()
        .unwrap_or("")
        .to_string();
    let release = package
        .strip_prefix("linux-image-")
        .unwrap_or(&package)
        .to_string();
    let root = cache.join(&package);
    let k = Kernel {
        distro: spec.distro,
        package,
        version,
        release,
        root,
    };
    unpack(&k, &deb)?;
    Ok(k)
}

/// The newest package name matching the spec, by the numbers in it (6.1.0-57 > 6.1.0-9).
pub fn newest(spec: &Spec, cache: &Path) -> anyhow::Result<String> {
    let apt = apt_options(spec, cache)?;
    let found =
        output(
            Command::new("apt-cache")
                .args(&apt)
                .args(["search", "--names-only", spec.pattern]),
        )
        .context("apt-cache is needed (a Debian host)")?;
    let mut names: Vec<String> = found
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    names.sort_by_key(|n| numbers(n));
    names.pop().with_context(|| {
        format!(
            "no package matches {} for {}: run `cargo xtask setup` (it adds the apt sources) \
             or `apt-get update`",
            spec.pattern, spec.distro
        )
    })
}

fn numbers(s: &str) -> Vec<u64> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

fn cached_deb(debs: &Path, package: &str) -> anyhow::Result<Option<PathBuf>> {
    let prefix = format!("{package}_");
    for e in std::fs::read_dir(debs)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".deb") {
            return Ok(Some(debs.join(name)));
        }
    }
    Ok(None)
}

fn download(package: &str, debs: &Path, apt: &[String]) -> anyhow::Result<PathBuf> {
    eprintln!("test-kernels: downloading {package}");
    let get = || {
        exec(
            Command::new("apt-get")
                .args(apt)
                // The cache belongs to root; apt's sandbox user could not write there.
                .args(["-q", "-o", "APT::Sandbox::User=root", "download", package])
                .current_dir(debs),
        )
    };
    if get().is_err() {
        // The package lists may name a version the mirror no longer has.
        exec(Command::new("apt-get").args(apt).args(["update", "-q"]))?;
        get()?;
    }
    cached_deb(debs, package)?.with_context(|| {
        format!(
            "apt-get download {package} left no .deb in {}",
            debs.display()
        )
    })
}

/// `dpkg-deb -x`, then `depmod -b` for modules.dep; a marker file says it is complete.
fn unpack(k: &Kernel, deb: &Path) -> anyhow::Result<()> {
    let done = k.root.join(".unpacked");
    if done.exists() {
        return Ok(());
    }
    if k.root.exists() {
        std::fs::remove_dir_all(&k.root)?;
    }
    exec(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&k.root))?;
    exec(
        Command::new("depmod")
            .arg("-b")
            .arg(&k.root)
            .arg(&k.release),
    )?;
    if !k.vmlinuz().exists() {
        bail!("{} has no {}", k.package, k.vmlinuz().display());
    }
    std::fs::write(&done, "")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::numbers;

    #[test]
    fn newest_by_numbers() {
        let mut v = [
            "linux-image-6.1.0-9-cloud-amd64",
            "linux-image-6.1.0-57-cloud-amd64",
            "linux-image-6.1.0-10-cloud-amd64",
        ];
        v.sort_by_key(|n| numbers(n));
        assert_eq!(v.last().unwrap(), &"linux-image-6.1.0-57-cloud-amd64");
        let mut v = [
            "linux-image-6.12.117+deb12-cloud-amd64",
            "linux-image-6.12.99+deb12-cloud-amd64",
        ];
        v.sort_by_key(|n| numbers(n));
        assert_eq!(v.last().unwrap(), &"linux-image-6.12.117+deb12-cloud-amd64");
    }
}
