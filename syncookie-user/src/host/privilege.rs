//! Checked before a command touches /run or bpffs: the capabilities it needs, named when
//! missing, so a normal user hears "run it as root" instead of a permission error on a path.

use std::fmt;

/// The capabilities syncookie uses (include/uapi/linux/capability.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// Reach the root-only pins (0700) and lock files when not running as uid 0.
    DacOverride = 1,
    /// Attach XDP and TC, load networking program types.
    NetAdmin = 12,
    /// Mount the bpffs; list programs and links (to name another XDP program).
    SysAdmin = 21,
    /// Load the programs as the kernel loads trusted ones (no Spectre sanitation rewrites).
    Perfmon = 38,
    /// Load programs that call kfuncs, create maps.
    Bpf = 39,
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DacOverride => "CAP_DAC_OVERRIDE",
            Self::NetAdmin => "CAP_NET_ADMIN",
            Self::SysAdmin => "CAP_SYS_ADMIN",
            Self::Perfmon => "CAP_PERFMON",
            Self::Bpf => "CAP_BPF",
        })
    }
}

/// What `syncookie run` needs without CAP_SYS_ADMIN, which covers all three (measured: with
/// neither CAP_PERFMON nor CAP_SYS_ADMIN the verifier refuses the programs' packet pointer
/// arithmetic; without CAP_BPF no map is created; without CAP_NET_ADMIN no program loads).
/// CAP_SYS_ADMIN is needed besides only to mount a bpffs where none is, and to name another
/// program on the XDP hook (its id is shown without it).
pub const RUN: &[Cap] = &[Cap::Bpf, Cap::NetAdmin, Cap::Perfmon];

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error(
        "`{command}` needs root: this process lacks {}{}; run it as root (sudo syncookie \
         {command} ...)",
        list(missing),
        if *mount {
            " (CAP_SYS_ADMIN to mount the bpffs at /sys/fs/bpf)"
        } else {
            " (or CAP_SYS_ADMIN, which covers them)"
        }
    )]
    Missing {
        command: &'static str,
        missing: Vec<Cap>,
        /// No bpffs is mounted: CAP_SYS_ADMIN is needed to mount one.
        mount: bool,
    },
    #[error(
        "`{command}` needs root: the shield's pins and lock files belong to root; run it as \
         root (sudo syncookie {command} ...)"
    )]
    NotRoot { command: &'static str },
}

fn list(caps: &[Cap]) -> String {
    caps.iter()
        .map(Cap::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The effective capability set of a `/proc/PID/status` text (its `CapEff:` line).
fn cap_eff(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// This process's effective capabilities (none if they cannot be read).
pub fn effective() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .as_deref()
        .and_then(cap_eff)
        .unwrap_or(0)
}

fn missing(eff: u64, need: &[Cap]) -> Vec<Cap> {
    need.iter()
        .copied()
        .filter(|c| eff & (1u64 << *c as u32) == 0)
        .collect()
}

/// Fails, naming what is missing, unless this process may do what `syncookie run` does:
/// CAP_SYS_ADMIN, or every capability in [`RUN`] and a bpffs already mounted at /sys/fs/bpf.
pub fn require_run(command: &'static str) -> Result<(), PrivilegeError> {
    let eff = effective();
    if missing(eff, &[Cap::SysAdmin]).is_empty() {
        return Ok(());
    }
    let mut missing = missing(eff, RUN);
    let mount = !crate::bpf::pins::is_bpffs(std::path::Path::new("/sys/fs/bpf"));
    if mount {
        missing.push(Cap::SysAdmin);
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(PrivilegeError::Missing {
            command,
            missing,
            mount,
        })
    }
}

/// For the commands that only open the pins: root, or a process that may open root's files.
pub fn require_pin_access(command: &'static str) -> Result<(), PrivilegeError> {
    if nix::unistd::geteuid().is_root() || missing(effective(), &[Cap::DacOverride]).is_empty() {
        Ok(())
    } else {
        Err(PrivilegeError::NotRoot { command })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_effective_set() {
        let s = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(cap_eff(s), Some(0x1ff_ffff_ffff));
        assert!(missing(0x1ff_ffff_ffff, RUN).is_empty());
        assert_eq!(missing(1 << 12, RUN), [Cap::Bpf, Cap::Perfmon]);
    }

    #[test]
    fn names_each_missing_capability() {
        let e = PrivilegeError::Missing {
            command: "run",
            missing: missing(1 << 12, RUN),
            mount: false,
        }
        .to_string();
        assert_eq!(
            e,
            "`run` needs root: this process lacks CAP_BPF, CAP_PERFMON (or CAP_SYS_ADMIN, which \
             covers them); run it as root (sudo syncookie run ...)"
        );
    }
}
