//! Where the shield's maps live: `<root>/<iface>/`, on a bpffs (mounted when missing, as
//! bpftool does), with a lock file so two commands never change the same shield at once.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use nix::fcntl::{Flock, FlockArg};

/// Default pin root; `--pin-root` overrides it (tests, or a bpffs elsewhere).
pub const DEFAULT_ROOT: &str = "/sys/fs/bpf/syncookie";
const LOCK_DIR: &str = "/run/syncookie";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

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

/// The pin directory of one interface.
#[derive(Clone, Debug)]
pub struct PinDir {
    pub dir: PathBuf,
    pub iface: String,
    /// bpffs holds no regular files: the lock lives under /run.
    lock: PathBuf,
}

impl PinDir {
    pub fn new(root: &Path, iface: &str) -> Self {
        Self {
            dir: root.join(iface),
            iface: iface.into(),
            lock: Path::new(LOCK_DIR).join(format!("{iface}.lock")),
        }
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

    /// Removes the maps we pin and the directory (and the root, when empty).
    pub fn remove(&self) -> Result<(), PinError> {
        if !self.exists() {
            return Ok(());
        }
        for e in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let p = e.map_err(io(&self.dir))?.path();
            std::fs::remove_file(&p).map_err(io(&p))?;
        }
        std::fs::remove_dir(&self.dir).map_err(io(&self.dir))?;
        if let Some(root) = self.dir.parent() {
            // Only if empty: other interfaces may be shielded too.
            let _ = std::fs::remove_dir(root);
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
        // Only if empty: other interfaces may be shielded too.
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
    nix::sys::statfs::statfs(at).is_ok_and(|st| st.filesystem_type().0 == BPF_FS_MAGIC)
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
