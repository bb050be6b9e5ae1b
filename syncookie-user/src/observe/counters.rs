//! Reads the per-CPU `SC_STATS` counters (from any process, through the pin) and sums the CPUs.

use aya::maps::MapError;
use syncookie_common::{maps::MAP_STATS, stats::Counter};

use crate::bpf::{
    pinned::{PinnedError, PinnedMaps},
    pins::PinDir,
};

#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    #[error(
        "the shield is not attached to {iface} in this network namespace (no {path}): start it with `syncookie run --iface \
         {iface} --ports ...`"
    )]
    NotAttached { iface: String, path: String },
    #[error(transparent)]
    Pinned(#[from] PinnedError),
    #[error("reading the counters")]
    Map(#[from] MapError),
}

/// One value per counter, in `Counter::ALL` order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot(pub Vec<u64>);

impl Snapshot {
    pub fn get(&self, c: Counter) -> u64 {
        self.0.get(c as usize).copied().unwrap_or(0)
    }

    pub fn iter(&self) -> impl Iterator<Item = (Counter, u64)> + '_ {
        Counter::ALL.iter().map(|c| (*c, self.get(*c)))
    }

    /// What grew since `earlier` (0 where a counter went back, as after a restart).
    pub fn delta(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot(
            self.iter()
                .map(|(c, v)| v.saturating_sub(earlier.get(c)))
                .collect(),
        )
    }

    /// `{"syn_seen": 1, ...}`
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.iter()
                .map(|(c, v)| (c.name().to_string(), v.into()))
                .collect(),
        )
    }

    /// Aligned `name  value  help` lines.
    pub fn table(&self) -> String {
        let mut s = String::new();
        // The names' column as wide as the longest name: the numbers line up.
        let w = Counter::ALL
            .iter()
            .map(|c| c.name().len())
            .max()
            .unwrap_or(0);
        for (c, v) in self.iter() {
            s += &format!("  {:<w$} {:>12}  {}\n", c.name(), v, c.help());
        }
        s
    }
}

pub fn read(pins: &PinDir, iface: &str) -> Result<Snapshot, CounterError> {
    let path = pins.map(MAP_STATS);
    if !path.exists() {
        return Err(CounterError::NotAttached {
            iface: iface.into(),
            path: path.display().to_string(),
        });
    }
    let arr = PinnedMaps::new(pins).stats()?;
    let mut out = Vec::with_capacity(Counter::ALL.len());
    for c in Counter::ALL {
        out.push(arr.get(&(*c as u32), 0)?.iter().sum());
    }
    Ok(Snapshot(out))
}
