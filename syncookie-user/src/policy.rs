//! What the admin decides, beside what the kernel's settings imply: the mode and the budgets.
//! Written into `SC_CONFIG` with the rest; `syncookie mode` changes the mode of a running shield.

use syncookie_common::maps::{Config, Mode};

/// The mode, as the command line and the config file name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeArg {
    /// Every SYN to a protected port gets a cookie.
    Always,
    /// SYNs go to the kernel until their rate passes --engage-rate, then cookies; back after
    /// the flood (hysteresis: half the rate, 10 s hold).
    Auto,
    /// Answer nothing, drop nothing; the counters say what would have been done.
    Monitor,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Always => Mode::Always,
            ModeArg::Auto => Mode::Auto,
            ModeArg::Monitor => Mode::Monitor,
        }
    }
}

impl ModeArg {
    pub fn of(m: Mode) -> Self {
        match m {
            Mode::Always => ModeArg::Always,
            Mode::Auto => ModeArg::Auto,
            Mode::Monitor => ModeArg::Monitor,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub mode: ModeArg,
    /// `auto`: SYNs per second and CPU that engage the shield.
    pub engage_per_sec: u32,
    /// SYN-ACKs per second and CPU in all (0: no limit).
    pub synack_per_sec: u32,
    /// SYN-ACKs per second to one client /24 (0: no limit).
    pub synack_per_prefix: u32,
    /// Bad-cookie ACKs passed to the kernel (which resets them) per second and CPU.
    pub rst_per_sec: u32,
}

pub const DEFAULT_ENGAGE_PER_SEC: u32 = 1000;
pub const DEFAULT_SYNACK_PER_PREFIX: u32 = 1000;
pub const DEFAULT_RST_PER_SEC: u32 = 100;

impl Default for Policy {
    fn default() -> Self {
        Self {
            mode: ModeArg::Always,
            engage_per_sec: DEFAULT_ENGAGE_PER_SEC,
            synack_per_sec: 0,
            synack_per_prefix: DEFAULT_SYNACK_PER_PREFIX,
            rst_per_sec: DEFAULT_RST_PER_SEC,
        }
    }
}

impl Policy {
    pub fn apply(&self, c: &mut Config) {
        c.mode = Mode::from(self.mode) as u8;
        c.engage_per_sec = self.engage_per_sec;
        c.synack_per_sec = self.synack_per_sec;
        c.synack_per_prefix = self.synack_per_prefix;
        c.rst_per_sec = self.rst_per_sec;
    }
}
