//! Where the shield's maps live: `<root>/<netns>/<iface>/`, on a bpffs (mounted when missing, as
//! bpftool does), with a lock file so two commands never change the same shield at once.
//!
//! bpffs and /run are shared by every network namespace, and interface names are only unique
//! within one: both are keyed by the namespace too (the inode of its nsfs file, the number
//! `ls -l /proc/self/ns/net` and `lsns -t net` show), so `eth0` in a container never finds,
//! locks or takes over the shield of the host's `eth0`.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use nix::fcntl::{Flock, FlockArg};

/// Default pin root; `--pin-root` overrides it (tests, or a bpffs elsewhere).
pub const DEFAULT_ROOT: &str = "/sys/fs/bpf/syncookie";
const LOCK_DIR: &str = "/run/syncookie";

// Each variant either names its cause in its message or gives it as its `source`, never both:
// the CLI prints the chain of sources after the message.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot mount a bpffs at {} ({cause}): mount one with `mount -t bpf bpf {}`",
        path.display(),
        path.display()
    )]
    Mount { path: PathBuf, cause: nix::Error },
    #[error("another syncookie command holds {}; try again when it is done", path.display())]
    Busy { path: PathBuf },
    /// The cause is in the message, not a `source`: a chain printer would say it twice.
    #[error("cannot tell which network namespace this is ({path}: {cause}); is /proc mounted?")]
    Netns {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "`syncookie run` is already active on {iface} (it holds {}): stop it first \
         (SIGTERM), or use `syncookie status --iface {iface}`",
        path.display()
    )]
    Running { iface: String, path: PathBuf },
    #[error(
        "pins at {} were made by another syncookie version ({map}: {found}, this version \
         expects {expected}): run `syncookie detach --iface {iface}` (or remove {})",
        dir.display(),
        dir.display()
    )]
    OtherVersion {
        dir: PathBuf,
        iface: String,
        map: String,
        found: MapLayout,
        expected: MapLayout,
    },
}

/// What must match between a pinned map and the map this version's programs were built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapLayout {
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
}

impl std::fmt::Display for MapLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "key size {}, value size {}, {} entries",
            self.key_size, self.value_size, self.max_entries
        )
    }
}

/// The layout of every map in the shield's object, by name.
pub fn expected_layouts() -> Vec<(String, MapLayout)> {
    let obj = aya_obj::Object::parse(crate::EBPF_OBJECT).expect("the embedded object parses");
    let mut v: Vec<_> = obj
        .maps
        .iter()
        .filter(|(n, _)| !n.starts_with('.'))
        .map(|(n, m)| {
            (
                n.clone(),
                MapLayout {
                    key_size: m.key_size(),
                    value_size: m.value_size(),
                    max_entries: m.max_entries(),
                },
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PinError + '_ {
    move |source| PinError::Io {
        path: path.into(),
        source,
    }
}

/// A network namespace, named by the inode of its nsfs file: unique among the namespaces alive
/// (one that is gone may lend its number to a new one; the stale pins it finds then are taken
/// over as after a crash).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NetnsId(pub u64);

impl NetnsId {
    /// The namespace of the calling thread (a thread may have moved with setns: not the
    /// process's).
    pub fn current() -> Result<Self, PinError> {
        Self::of(Path::new("/proc/thread-self/ns/net"))
    }

    /// The namespace behind an nsfs file: `/proc/PID/ns/net`, `/run/netns/NAME`.
    pub fn of(path: &Path) -> Result<Self, PinError> {
        std::fs::metadata(path)
            .map(|m| Self(std::os::unix::fs::MetadataExt::ino(&m)))
            .map_err(|cause| PinError::Netns {
                path: path.into(),
                cause,
            })
    }
}

impl std::fmt::Display for NetnsId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The pin directory of one interface of one network namespace.
#[derive(Clone, Debug)]
pub struct PinDir {
    pub dir: PathBuf,
    pub iface: String,
    /// bpffs holds no regular files: the lock lives under /run.
    lock: PathBuf,
}

impl PinDir {
    /// The pin directory of `iface` in the calling thread's network namespace.
    pub fn new(root: &Path, iface: &str) -> Result<Self, PinError> {
        Ok(Self::in_netns(root, NetnsId::current()?, iface))
    }

    /// The pin directory of `iface` in the namespace `netns`.
    pub fn in_netns(root: &Path, netns: NetnsId, iface: &str) -> Self {
        Self {
            dir: root.join(netns.to_string()).join(iface),
            iface: iface.into(),
            lock: Path::new(LOCK_DIR).join(format!("{netns}-{iface}.lock")),
        }
    }

    /// The instance lock's file (it exists while a command holds or last held the lock).
    pub fn lock_file(&self) -> &Path {
        &self.lock
    }

    pub fn map(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    /// Creates the directory, mounting a bpffs on the nearest /sys/fs/bpf first if needed.
    pub fn create(&self) -> Result<(), PinError> {
        ensure_bpffs(Path::new("/sys/fs/bpf"))?;
        // 0700: the key map is a secret; bpffs pins themselves are created 0600.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&self.dir)
            .map_err(io(&self.dir))
    }

    /// Removes the maps we pin and the directory, then the namespace's directory and the root
    /// when they are empty.
    pub fn remove(&self) -> Result<(), PinError> {
        if !self.exists() {
            return Ok(());
        }
        for e in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let p = e.map_err(io(&self.dir))?.path();
            std::fs::remove_file(&p).map_err(io(&p))?;
        }
        std::fs::remove_dir(&self.dir).map_err(io(&self.dir))?;
        // Only if empty (remove_dir refuses otherwise): other interfaces and namespaces may be
        // shielded too.
        for parent in self.dir.ancestors().skip(1).take(2) {
            if std::fs::remove_dir(parent).is_err() {
                break;
            }
        }
        Ok(())
    }

    /// Fails with [`PinError::OtherVersion`] when a map pinned here does not have the layout of
    /// this version's map of the same name (aya would reuse it as it is).
    pub fn check_layout(&self) -> Result<(), PinError> {
        if !self.exists() {
            return Ok(());
        }
        for (name, expected) in expected_layouts() {
            let path = self.map(&name);
            if !path.exists() {
                continue;
            }
            let found = aya::maps::MapInfo::from_pin(&path)
                .map(|i| MapLayout {
                    key_size: i.key_size(),
                    value_size: i.value_size(),
                    max_entries: i.max_entries(),
                })
                .map_err(|e| PinError::Io {
                    path: path.clone(),
                    source: std::io::Error::other(e),
                })?;
            if found != expected {
                return Err(PinError::OtherVersion {
                    dir: self.dir.clone(),
                    iface: self.iface.clone(),
                    map: name,
                    found,
                    expected,
                });
            }
        }
        Ok(())
    }

    /// Takes the shield's instance lock (non-blocking): one `run` per interface. Held until the
    /// returned file is dropped.
    pub fn lock(&self) -> Result<Flock<File>, PinError> {
        flock(&self.lock, FlockArg::LockExclusiveNonblock).map_err(|e| match e {
            PinError::Busy { path } => PinError::Running {
                iface: self.iface.clone(),
                path,
            },
            e => e,
        })
    }

    /// Serializes key changes (the daemon's timer, `syncookie rotate`): blocks briefly.
    pub fn keys_lock(&self) -> Result<Flock<File>, PinError> {
        flock(
            &self.lock.with_extension("keys.lock"),
            FlockArg::LockExclusive,
        )
    }

    pub fn remove_lock(&self) {
        let _ = std::fs::remove_file(&self.lock);
        let _ = std::fs::remove_file(self.lock.with_extension("keys.lock"));
        // Only if empty: other interfaces and namespaces may be shielded too.
        let _ = std::fs::remove_dir(LOCK_DIR);
    }
}

fn flock(path: &Path, op: FlockArg) -> Result<Flock<File>, PinError> {
    std::fs::create_dir_all(LOCK_DIR).map_err(io(Path::new(LOCK_DIR)))?;
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io(path))?;
    Flock::lock(f, op).map_err(|_| PinError::Busy { path: path.into() })
}

/// Whether a bpffs is mounted at `at`.
pub fn is_bpffs(at: &Path) -> bool {
    nix::sys::statfs::statfs(at)
        .is_ok_and(|st| st.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC)
}

/// Mounts a bpffs at `at` unless one is there already.
pub fn ensure_bpffs(at: &Path) -> Result<(), PinError> {
    if is_bpffs(at) {
        return Ok(());
    }
    std::fs::create_dir_all(at).map_err(io(at))?;
    nix::mount::mount(
        Some("bpf"),
        at,
        Some("bpf"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|cause| PinError::Mount {
        path: at.into(),
        cause,
    })
}

#[cfg(test)]
mod tests {
    use syncookie_common::maps::MAP_KEYS;

    use super::*;

    #[test]
    fn pins_and_locks_are_keyed_by_namespace_and_interface() {
        let root = Path::new("/sys/fs/bpf/syncookie");
        let a = PinDir::in_netns(root, NetnsId(4026531840), "eth0");
        let b = PinDir::in_netns(root, NetnsId(4026532452), "eth0");
        assert_eq!(a.dir, Path::new("/sys/fs/bpf/syncookie/4026531840/eth0"));
        assert_eq!(
            a.lock_file(),
            Path::new("/run/syncookie/4026531840-eth0.lock")
        );
        assert_ne!(a.dir, b.dir);
        assert_ne!(a.lock_file(), b.lock_file());
    }

    #[test]
    fn current_namespace_is_this_threads() {
        let here = NetnsId::current().expect("/proc mounted");
        assert_eq!(here, NetnsId::of(Path::new("/proc/self/ns/net")).unwrap());
        let pins = PinDir::new(Path::new(DEFAULT_ROOT), "lo").unwrap();
        assert!(
            pins.dir
                .starts_with(Path::new(DEFAULT_ROOT).join(here.to_string()))
        );
    }

    #[test]
    fn remove_leaves_no_empty_directories() {
        // A plain directory tree stands in for the bpffs: remove() only unlinks.
        let root = std::env::temp_dir().join(format!("syncookie-pins-{}", std::process::id()));
        let a = PinDir::in_netns(&root, NetnsId(1), "eth0");
        let b = PinDir::in_netns(&root, NetnsId(2), "eth0");
        for p in [&a, &b] {
            std::fs::create_dir_all(&p.dir).unwrap();
            std::fs::write(p.map(MAP_KEYS), b"").unwrap();
        }
        a.remove().unwrap();
        assert!(
            !root.join("1").exists(),
            "the namespace's empty directory is left"
        );
        assert!(
            b.map(MAP_KEYS).exists(),
            "another namespace's pins were touched"
        );
        b.remove().unwrap();
        assert!(!root.exists(), "the empty root is left");
    }
}
