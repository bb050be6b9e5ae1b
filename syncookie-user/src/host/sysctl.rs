//! The kernel settings the shield relies on, read from /proc/sys of the current network
//! namespace (the SYN-ACK configuration derived from them: `synack_config`).

use std::path::{Path, PathBuf};

use syncookie_common::{
    maps::{Config, flags},
    proto::DEFAULT_TTL,
};

/// The current network namespace's sysctls (/proc/sys shows the reader's namespace).
const PROC_SYS_NET: &str = "/proc/sys/net";

/// The kernel's own defaults (Documentation/networking/ip-sysctl.rst, include/net/sock.h), for
/// settings a namespace does not have: older kernels keep some in the initial namespace only
/// (net.core.rmem_max: 6.1 and 6.6 show none in a child namespace, 6.11 shows the host's), and
/// a process in a child namespace cannot read those there.
pub(crate) mod default {
    pub const TIMESTAMPS: i64 = 1;
    pub const SACK: i64 = 1;
    pub const WINDOW_SCALING: i64 = 1;
    /// 2: ECN when the peer asks for it.
    pub const ECN: i64 = 2;
    /// tcp_rmem: min, default, max (the max is 6 MiB on any host with memory to spare).
    pub const TCP_RMEM: [i64; 3] = [4096, 131072, 6 * 1024 * 1024];
    /// SK_RMEM_MAX on 64-bit kernels of that age (256 packets of 256-byte truesize). It only
    /// matters above tcp_rmem's max, which wins otherwise.
    pub const RMEM_MAX: i64 = 212_992;
    pub const TTL: i64 = super::DEFAULT_TTL as i64;
    /// net.ipv6.conf.*.hop_limit.
    pub const HOP_LIMIT: i64 = 64;
}

#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} holds {value:?}, not a number", path.display())]
    Parse { path: PathBuf, value: String },
    #[error(
        "net.ipv4.tcp_syncookies is 0: the kernel refuses cookie connections then; set it to 1 \
         (sysctl -w net.ipv4.tcp_syncookies=1)"
    )]
    SyncookiesOff,
    #[error(
        "net.ipv4.tcp_syncookies does not exist: this kernel was built without SYN cookies \
         (CONFIG_SYN_COOKIES), which the shield needs to hand connections over"
    )]
    NoSyncookies,
    #[error(
        "net.netfilter.nf_conntrack_tcp_loose is 0: conntrack never sees the SYN and SYN-ACK the \
         shield answers from XDP, so it would call every protected connection invalid and a \
         stateful firewall would drop it; set it to 1 (sysctl -w \
         net.netfilter.nf_conntrack_tcp_loose=1). Rules that let only SYNs open connections \
         (`tcp flags syn / fin,syn,rst,ack ct state new accept`) do not work with the shield \
         either: accept `ct state new` on the protected ports whatever the flags"
    )]
    ConntrackStrict,
    #[error("cannot set {} to 2 (kernel-cookie mode needs it)", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the MTU of {iface}")]
    Mtu {
        iface: String,
        source: std::io::Error,
    },
}

/// Sysctls under a `net` directory: /proc/sys/net, or a unit test's stand-in.
struct Sysctls<'a> {
    root: &'a Path,
}

impl Sysctls<'_> {
    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name.replace('.', "/"))
    }

    /// The values, or `None` when this namespace has no such setting.
    fn read_opt(&self, name: &str) -> Result<Option<Vec<i64>>, SysctlError> {
        let path = self.path(name);
        let s = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(SysctlError::Read { path, source }),
        };
        s.split_whitespace()
            .map(|v| {
                v.parse().map_err(|_| SysctlError::Parse {
                    path: path.clone(),
                    value: s.trim().into(),
                })
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    fn one_opt(&self, name: &str) -> Result<Option<i64>, SysctlError> {
        Ok(self
            .read_opt(name)?
            .map(|v| v.first().copied().unwrap_or(0)))
    }

    /// The setting, or the kernel's default (logged) when this namespace does not have it.
    fn read_or(&self, name: &str, default: &[i64]) -> Result<Vec<i64>, SysctlError> {
        Ok(self.read_opt(name)?.unwrap_or_else(|| {
            log::warn!(
                "net.{name} does not exist in this network namespace (older kernels keep it in \
                 the initial one only); using the kernel's default {default:?}"
            );
            default.to_vec()
        }))
    }

    fn one_or(&self, name: &str, default: i64) -> Result<i64, SysctlError> {
        Ok(self
            .read_or(name, &[default])?
            .first()
            .copied()
            .unwrap_or(0))
    }
}

/// What the kernel will do with a connection we hand it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSettings {
    pub syncookies: i64,
    pub timestamps: bool,
    /// tcp_timestamps is 2: no random offset per peer, so kernel-cookie mode can carry the
    /// options in the kernel's timestamp cookie (`crate::host::timestamps`).
    pub timestamps_2: bool,
    pub sack: bool,
    pub window_scaling: bool,
    pub ecn: bool,
    /// The receive buffer the kernel may grow to: decides its window-scale shift.
    pub rmem_max: i64,
    /// A listener's receive buffer (tcp_rmem[1]): decides the SYN-ACK's window.
    pub rmem_default: i64,
    pub ttl: u8,
    /// net.netfilter.nf_conntrack_tcp_loose; `None` without conntrack (nf_conntrack not loaded).
    pub conntrack_tcp_loose: Option<bool>,
}

impl TcpSettings {
    /// The settings of the calling thread's network namespace.
    pub fn read() -> Result<Self, SysctlError> {
        Self::read_from(Path::new(PROC_SYS_NET))
    }

    /// The settings under `root`, a `/proc/sys/net`. Only tcp_syncookies must be there: the
    /// kernel refuses the handoff without it, and a default could hide that.
    fn read_from(root: &Path) -> Result<Self, SysctlError> {
        let s = Sysctls { root };
        let rmem = s.read_or("ipv4.tcp_rmem", &default::TCP_RMEM)?;
        let rmem_max = s.one_or("core.rmem_max", default::RMEM_MAX)?;
        let timestamps = s.one_or("ipv4.tcp_timestamps", default::TIMESTAMPS)?;
        Ok(Self {
            syncookies: s
                .one_opt("ipv4.tcp_syncookies")?
                .ok_or(SysctlError::NoSyncookies)?,
            timestamps: timestamps != 0,
            timestamps_2: timestamps == 2,
            sack: s.one_or("ipv4.tcp_sack", default::SACK)? != 0,
            window_scaling: s.one_or("ipv4.tcp_window_scaling", default::WINDOW_SCALING)? != 0,
            ecn: s.one_or("ipv4.tcp_ecn", default::ECN)? != 0,
            rmem_max: rmem.get(2).copied().unwrap_or(0).max(rmem_max),
            rmem_default: rmem.get(1).copied().unwrap_or(131_072),
            ttl: u8::try_from(s.one_or("ipv4.ip_default_ttl", default::TTL)?)
                .unwrap_or(DEFAULT_TTL),
            conntrack_tcp_loose: s
                .one_opt("netfilter.nf_conntrack_tcp_loose")?
                .map(|v| v != 0),
        })
    }

    /// Settings the shield cannot work with. tcp_syncookies >= 1: bpf_sk_assign_tcp_reqsk fails
    /// at 0. Conntrack, where loaded, must pick connections up mid-stream (tcp_loose=1): the
    /// handed-off connection's first packet it sees is the client's ACK. (The netfilter kfuncs
    /// that could register it from TC live in nf_conntrack's module BTF, which aya 0.14 cannot
    /// link against.)
    pub fn check(&self) -> Result<(), SysctlError> {
        if self.syncookies < 1 {
            return Err(SysctlError::SyncookiesOff);
        }
        if self.conntrack_tcp_loose == Some(false) {
            return Err(SysctlError::ConntrackStrict);
        }
        Ok(())
    }
}

/// IPv6 on an interface, as the kernel will treat our SYN-ACK: whether IPv6 runs there at all
/// (the namespace may have none: `ipv6.disable=1`, or `disable_ipv6` on the interface or for
/// all), and the hop limit of the interface (ip6_dst_hoplimit(): the device's
/// `net.ipv6.conf.IF.hop_limit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6 {
    pub enabled: bool,
    pub hop_limit: u8,
}

impl Ipv6 {
    pub fn read(iface: &str) -> Result<Self, SysctlError> {
        Self::read_from(Path::new(PROC_SYS_NET), iface)
    }

    fn read_from(root: &Path, iface: &str) -> Result<Self, SysctlError> {
        let s = Sysctls { root };
        if !root.join("ipv6").is_dir() {
            return Ok(Self {
                enabled: false,
                hop_limit: default::HOP_LIMIT as u8,
            });
        }
        // An interface name with a dot is a directory name with a dot in /proc/sys.
        let conf = |name: &str| -> Result<Option<i64>, SysctlError> {
            let path = root.join("ipv6/conf").join(iface).join(name);
            match std::fs::read_to_string(&path) {
                Ok(v) => v.trim().parse().map(Some).map_err(|_| SysctlError::Parse {
                    path,
                    value: v.trim().into(),
                }),
                Err(_) => Ok(None),
            }
        };
        let all_off = s.one_or("ipv6.conf.all.disable_ipv6", 0)? != 0;
        let if_off = conf("disable_ipv6")?.unwrap_or(0) != 0;
        let hop = match conf("hop_limit")? {
            Some(h) => h,
            None => s.one_or("ipv6.conf.default.hop_limit", default::HOP_LIMIT)?,
        };
        Ok(Self {
            enabled: !all_off && !if_off,
            hop_limit: u8::try_from(hop).unwrap_or(default::HOP_LIMIT as u8),
        })
    }

    /// Writes these settings into `cfg`.
    pub fn apply(&self, cfg: &mut Config) {
        cfg.hop_limit = self.hop_limit;
        if self.enabled {
            cfg.flags |= flags::IPV6;
        } else {
            cfg.flags &= !flags::IPV6;
        }
    }
}

/// Kernel-cookie mode: the kernel renews a listener's overflow stamp (without which it refuses
/// cookie ACKs) only when it answers a SYN with a cookie itself, which at tcp_syncookies=2 it
/// does for every SYN it gets. Sets it (logged) in the current namespace when it is not 2.
pub fn set_syncookies_2(current: i64) -> Result<(), SysctlError> {
    if current == 2 {
        return Ok(());
    }
    let path = Path::new(PROC_SYS_NET).join("ipv4/tcp_syncookies");
    std::fs::write(&path, "2").map_err(|source| SysctlError::Write {
        path: path.clone(),
        source,
    })?;
    log::warn!(
        "net.ipv4.tcp_syncookies was {current}, set to 2 for kernel-cookie mode: the kernel now \
         answers every SYN that reaches it with a cookie (in this network namespace, on every \
         port; it stays 2 when the shield stops)"
    );
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
