//! libxdp's dispatcher configuration (version 2: xdp-tools 1.3's `struct
//! xdp_dispatcher_config`, lib/libxdp/protocol.org) and a component's run settings.

use std::{fmt, str::FromStr};

/// Slots of a dispatcher (`MAX_DISPATCHER_ACTIONS`).
pub const MAX_PROGS: usize = 10;
/// `XDP_DISPATCHER_MAGIC`: marks a version 2+ configuration.
pub const MAGIC: u8 = 236;
/// The version this module reads and writes.
pub const VERSION: u8 = 2;
/// What an empty stub returns (`XDP_DISPATCHER_RETVAL`): in every slot's chain actions, so a
/// slot whose program went away continues the chain.
const RETVAL: u32 = 31;

/// The dispatcher's `.rodata`: read from the one on the hook, written into a new one.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DispatcherConfig {
    pub magic: u8,
    pub version: u8,
    pub num_progs_enabled: u8,
    pub is_xdp_frags: u8,
    pub chain_call_actions: [u32; MAX_PROGS],
    pub run_prios: [u32; MAX_PROGS],
    pub program_flags: [u32; MAX_PROGS],
}

const _: () = assert!(size_of::<DispatcherConfig>() == 124);

// SAFETY: plain integers, no padding (asserted size: 4 + 3 * 40 bytes).
unsafe impl aya::Pod for DispatcherConfig {}

impl DispatcherConfig {
    /// A configuration for `slots` (in run order): each with its run settings and its
    /// `program_flags` (frags support, carried over from the old dispatcher).
    pub fn new(slots: &[(RunConfig, u32)]) -> Self {
        let mut c = Self {
            magic: MAGIC,
            version: VERSION,
            num_progs_enabled: slots.len() as u8,
            ..Self::default()
        };
        for (i, (run, flags)) in slots.iter().enumerate() {
            c.chain_call_actions[i] = run.chain | (1 << RETVAL);
            c.run_prios[i] = run.priority;
            c.program_flags[i] = *flags;
        }
        c
    }

    /// Slot `i`'s run settings, as libxdp reads them back.
    pub fn run(&self, i: usize) -> RunConfig {
        RunConfig {
            priority: self.run_prios[i],
            chain: self.chain_call_actions[i] & !(1 << RETVAL),
        }
    }
}

/// XDP actions (include/uapi/linux/bpf.h, `enum xdp_action`), as names for settings.
const ACTIONS: [&str; 5] = ["aborted", "drop", "pass", "tx", "redirect"];
/// `XDP_PASS`'s bit.
const PASS: u32 = 1 << 2;

/// A component program's place in the chain: lower priorities run first (libxdp's default is
/// 50); after it returns one of the `chain` actions (a bitmap of `1 << action`) the next
/// program runs, after any other the packet leaves with that action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunConfig {
    pub priority: u32,
    pub chain: u32,
}

impl Default for RunConfig {
    /// libxdp's defaults: priority 50, XDP_PASS continues. xdp-filter runs at 10, before it.
    fn default() -> Self {
        Self {
            priority: 50,
            chain: PASS,
        }
    }
}

/// A set of XDP actions, written `pass,drop` (the shield's `--xdp-chain`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actions(pub u32);

impl Default for Actions {
    fn default() -> Self {
        Self(PASS)
    }
}

impl FromStr for Actions {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut bits = 0;
        for a in s.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let i = ACTIONS
                .iter()
                .position(|n| n.eq_ignore_ascii_case(a))
                .ok_or_else(|| {
                    format!("unknown XDP action `{a}`: one of {}", ACTIONS.join(", "))
                })?;
            bits |= 1 << i;
        }
        Ok(Self(bits))
    }
}

impl fmt::Display for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = (0..ACTIONS.len())
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| ACTIONS[i])
            .collect();
        f.write_str(&names.join(","))
    }
}

impl<'de> serde::Deserialize<'de> for Actions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        names.join(",").parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_keep_their_settings_and_the_stub_value_always_continues() {
        let filter = RunConfig {
            priority: 10,
            chain: PASS,
        };
        let shield = RunConfig {
            priority: 50,
            chain: PASS | 1 << 1,
        };
        let c = DispatcherConfig::new(&[(filter, 0), (shield, 32)]);
        assert_eq!((c.magic, c.version, c.num_progs_enabled), (236, 2, 2));
        assert_eq!(c.chain_call_actions[0], 1 << 31 | 1 << 2);
        assert_eq!((c.run(0), c.run(1)), (filter, shield));
        assert_eq!(c.program_flags[..3], [0, 32, 0]);
    }

    #[test]
    fn actions_parse_and_print_by_name() {
        let a: Actions = "pass, DROP".parse().unwrap();
        assert_eq!(a, Actions(0b110));
        assert_eq!(a.to_string(), "drop,pass");
        assert!(
            "pass,jump"
                .parse::<Actions>()
                .unwrap_err()
                .contains("`jump`")
        );
        assert_eq!(Actions::default().to_string(), "pass");
    }
}
