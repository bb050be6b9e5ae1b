//! Fleet keys: hosts behind ECMP or anycast check each other's cookies without talking. Each
//! epoch's key is derived from a shared master key (HMAC-SHA256 over the epoch number) and the
//! epoch is taken from the wall clock (UNIX time / period), so every host with the same master
//! key, period and a synchronized clock holds the same keys at the same time.

use std::{os::unix::fs::MetadataExt, path::Path, time::SystemTime};

use hmac::{KeyInit, Mac};
use syncookie_common::maps::Key;

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("cannot read the master key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the master key file {path} is readable by others (mode {mode:o}): make it 0600 \
         (chmod 600 {path}); it is a secret"
    )]
    Mode { path: String, mode: u32 },
    #[error(
        "the master key file {path} holds {len} bytes: it needs at least 32 random bytes \
         (e.g. head -c 32 /dev/urandom > {path})"
    )]
    Short { path: String, len: usize },
}

/// The shared secret; never printed (no Debug of its bytes).
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Reads a master key file: at least 32 bytes, mode 0600 (or stricter).
    pub fn read(path: &Path) -> Result<Self, FleetError> {
        let p = path.display().to_string();
        let err = |source| FleetError::Read {
            path: p.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(err)?;
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(FleetError::Mode { path: p, mode });
        }
        let bytes = std::fs::read(path).map_err(err)?;
        if bytes.len() < 32 {
            return Err(FleetError::Short {
                path: p,
                len: bytes.len(),
            });
        }
        // Longer files (a passphrase, a hex string) are folded into 32 bytes.
        let mut k = [0u8; 32];
        let d = <sha2::Sha256 as sha2::Digest>::digest(&bytes);
        k.copy_from_slice(&d);
        Ok(Self(k))
    }

    #[cfg(test)]
    fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }

    /// The key of `epoch`: HMAC-SHA256(master, "syncookie epoch key" || epoch), 128 bits.
    pub fn key(&self, epoch: u64) -> Key {
        let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes any key length");
        m.update(b"syncookie epoch key");
        m.update(&epoch.to_be_bytes());
        let out = m.finalize().into_bytes();
        Key {
            k0: u64::from_le_bytes(out[0..8].try_into().expect("8 bytes")),
            k1: u64::from_le_bytes(out[8..16].try_into().expect("8 bytes")),
            epoch,
        }
    }
}

/// The epoch every host of the fleet is in now (never 0: 0 marks an empty slot).
pub fn wall_epoch(period_secs: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    now / period_secs.max(1) + 1
}

/// Seconds until the next epoch starts.
pub fn secs_to_next_epoch(period_secs: u64) -> f64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let p = period_secs.max(1) as f64;
    p - now % p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_master_same_keys_and_epochs_differ() {
        let a = MasterKey::from_bytes([7; 32]);
        let b = MasterKey::from_bytes([7; 32]);
        assert_eq!(a.key(42), b.key(42));
        assert_ne!(a.key(42), a.key(43));
        assert_ne!(a.key(42), MasterKey::from_bytes([8; 32]).key(42));
        assert_eq!(a.key(42).epoch, 42);
        assert_eq!(format!("{a:?}"), "MasterKey(..)");
    }

    #[test]
    fn a_key_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sc-fleet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("master.key");
        // Distinct bytes, so that a leak in any usual form (hex, decimal list) would show.
        let key: [u8; 32] = core::array::from_fn(|i| 0x90 + i as u8);
        std::fs::write(&f, key).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = MasterKey::read(&f).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(MasterKey::read(&f).is_ok());
        std::fs::write(&f, &key[..8]).unwrap();
        let e = MasterKey::read(&f).unwrap_err().to_string();
        assert!(e.contains("at least 32"), "{e}");
        for leak in ["9091", "9190", "144, 145", "0x90"] {
            assert!(!e.contains(leak), "key bytes ({leak}) in the error: {e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn wall_epochs_follow_the_clock() {
        let e = wall_epoch(64);
        assert!(e > 1);
        assert!(secs_to_next_epoch(64) <= 64.0);
    }
}
