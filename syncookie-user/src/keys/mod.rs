//! Cookie keys in the pinned `SC_KEYS`/`SC_EPOCH` maps. Two slots: the current epoch's key is in
//! slot `epoch & 1`, the previous one in the other, so a cookie lives through its own epoch and
//! the next. Rotation writes the next key into the idle slot first, then advances the epoch: the
//! XDP program never sees a slot named by the epoch before its key is there.

pub mod fleet;

use aya::maps::{Array, MapData, MapError};
use syncookie_common::{
    cookie::slot_of_epoch,
    maps::{KEY_RETIRED, Key},
};

use crate::{
    bpf::{
        pinned::{PinnedError, PinnedMaps},
        pins::PinDir,
    },
    keys::fleet::MasterKey,
};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Pinned(#[from] PinnedError),
    #[error("updating the cookie keys")]
    Map(#[from] MapError),
    #[error("the OS random generator failed ({0})")]
    Random(getrandom::Error),
}

pub struct KeyMaps {
    keys: Array<MapData, Key>,
    epoch: Array<MapData, u64>,
}

/// A fresh key from the OS CSPRNG.
pub fn random_key(epoch: u64) -> Result<Key, KeyError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(KeyError::Random)?;
    let (k0, k1) = b.split_at(8);
    Ok(Key {
        k0: u64::from_le_bytes(k0.try_into().unwrap()),
        k1: u64::from_le_bytes(k1.try_into().unwrap()),
        epoch,
    })
}

impl KeyMaps {
    pub fn open(pins: &PinDir) -> Result<Self, KeyError> {
        let maps = PinnedMaps::new(pins);
        Ok(Self {
            keys: maps.keys()?,
            epoch: maps.epoch()?,
        })
    }

    pub fn current_epoch(&self) -> Result<u64, KeyError> {
        Ok(self.epoch.get(&0, 0)?)
    }

    /// Keeps the keys a previous run left (a restart breaks no handshake), or installs the first.
    pub fn ensure(&mut self) -> Result<u64, KeyError> {
        let e = self.current_epoch()?;
        if e != 0 && self.keys.get(&slot_of_epoch(e), 0)?.epoch == e {
            return Ok(e);
        }
        self.keys.set(slot_of_epoch(1), random_key(1)?, 0)?;
        self.epoch.set(0, 1, 0)?;
        Ok(1)
    }

    /// Fleet mode: holds the keys of `epoch` and the one before, derived from `master`, as every
    /// host with the same master key does now. Writes keys before the epoch: the XDP program
    /// never sees an epoch whose key is not there yet. Returns the epoch.
    pub fn sync_fleet(&mut self, master: &MasterKey, epoch: u64) -> Result<u64, KeyError> {
        let cur = self.current_epoch()?;
        if cur == epoch && self.keys.get(&slot_of_epoch(epoch), 0)? == master.key(epoch) {
            return Ok(cur);
        }
        if epoch == cur + 1 && self.keys.get(&slot_of_epoch(cur), 0)? == master.key(cur) {
            self.install(master.key(epoch))?;
            return Ok(epoch);
        }
        // A first start, or a jump (the daemon was stopped): both live keys afresh.
        self.keys
            .set(KEY_RETIRED, master.key(epoch.saturating_sub(2).max(1)), 0)?;
        self.keys
            .set(slot_of_epoch(epoch - 1), master.key(epoch - 1), 0)?;
        self.keys.set(slot_of_epoch(epoch), master.key(epoch), 0)?;
        self.epoch.set(0, epoch, 0)?;
        Ok(epoch)
    }

    /// Moves to the next epoch with a new key; returns it.
    pub fn rotate(&mut self) -> Result<u64, KeyError> {
        let next = self.current_epoch()? + 1;
        self.install(random_key(next)?)?;
        Ok(next)
    }

    /// Installs `key` as the next epoch's key (its `epoch` must be current + 1).
    pub fn install(&mut self, key: Key) -> Result<(), KeyError> {
        let slot = slot_of_epoch(key.epoch);
        let leaving = self.keys.get(&slot, 0)?;
        self.keys.set(KEY_RETIRED, leaving, 0)?;
        self.keys.set(slot, key, 0)?;
        self.epoch.set(0, key.epoch, 0)?;
        Ok(())
    }
}
