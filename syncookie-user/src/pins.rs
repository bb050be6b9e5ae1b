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

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot mount a bpffs at {path} ({source}): mount one with `mount -t bpf bpf {path}`")]
    Mount { path: PathBuf, source: nix::Error },
    #[error("another syncookie command holds {path}; try again when it is done")]
    Busy { path: PathBuf },
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
    /// bpffs holds no regular files: the lock lives under /run.
    lock: PathBuf,
}

impl PinDir {
    pub fn new(root: &Path, iface: &str) -> Self {
        Self {
            dir: root.join(iface),
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

    /// Takes the shield's instance lock (non-blocking): one `run` per interface. Held until the
    /// returned file is dropped.
    pub fn lock(&self) -> Result<Flock<File>, PinError> {
        flock(&self.lock, FlockArg::LockExclusiveNonblock)
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

/// Mounts a bpffs at `at` unless one is there already.
pub fn ensure_bpffs(at: &Path) -> Result<(), PinError> {
    if let Ok(st) = nix::sys::statfs::statfs(at)
        && st.filesystem_type().0 == BPF_FS_MAGIC
    {
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
    .map_err(|source| PinError::Mount {
        path: at.into(),
        source,
    })
}
