//! The kernel settings the shield relies on, read from /proc/sys of the current network
//! namespace, and the SYN-ACK configuration derived from them and from the interface.

use std::path::{Path, PathBuf};

use syncookie_common::{
    maps::{Config, flags},
    proto::{DEFAULT_TTL, TCPOLEN_TSTAMP_ALIGNED},
};

/// The current network namespace's sysctls (/proc/sys shows the reader's namespace).
const PROC_SYS_NET: &str = "/proc/sys/net";

/// The kernel's own defaults (Documentation/networking/ip-sysctl.rst, include/net/sock.h), for
/// settings a namespace does not have: older kernels keep some in the initial namespace only
/// (net.core.rmem_max: 6.1 and 6.6 show none in a child namespace, 6.11 shows the host's), and
/// a process in a child namespace cannot read those there.
mod default {
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
pub struct Kernel {
    pub syncookies: i64,
    pub timestamps: bool,
    /// tcp_timestamps is 2: no random offset per peer, so kernel-cookie mode can carry the
    /// options in the kernel's timestamp cookie (`crate::timestamps`).
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

impl Kernel {
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

    /// The shift tcp_select_initial_window() picks for this receive space.
    pub fn wscale(&self) -> u8 {
        let mut space = self.rmem_max.clamp(0, 1 << 30);
        let mut ws = 0u8;
        while space > 65535 && ws < syncookie_common::cookie::MAX_WSCALE {
            space >>= 1;
            ws += 1;
        }
        ws
    }

    /// The SYN-ACK's window for our MSS `mss`, without and with timestamps, as
    /// tcp_openreq_init_rwin() and tcp_select_initial_window() compute it: the listener's receive
    /// space (tcp_win_from_space() of tcp_rmem[1]: half of it at the default scaling ratio)
    /// rounded down to a multiple of the MSS less the timestamps' room; at most 65535.
    pub fn windows(&self, mss: u16) -> (u16, u16) {
        let space = (self.rmem_default.max(0) as u64) / 2;
        let w = |mss: u64| {
            let mss = mss.max(1);
            let s = if space > mss {
                space - space % mss
            } else {
                space
            };
            s.min(65535) as u16
        };
        (
            w(mss as u64),
            w(mss.saturating_sub(TCPOLEN_TSTAMP_ALIGNED) as u64),
        )
    }

    /// The SYN-ACK configuration for an interface of MTU `mtu`, with the default policy (see
    /// `policy::Policy::apply`).
    pub fn config(&self, mtu: u32, tc_recheck: bool) -> Config {
        // IPv6 on unless `Ipv6::apply` finds it disabled on the interface.
        let mut f = flags::IPV6;
        for (on, bit) in [
            (self.timestamps, flags::TIMESTAMPS),
            (self.sack, flags::SACK),
            (self.window_scaling, flags::WSCALE),
            (self.ecn, flags::ECN),
            (tc_recheck, flags::TC_RECHECK),
        ] {
            if on {
                f |= bit;
            }
        }
        let mss_v4 = mtu.saturating_sub(40).clamp(536, 65535) as u16;
        let mss_v6 = mtu.saturating_sub(60).clamp(1220, 65535) as u16;
        let (window, window_ts) = self.windows(mss_v4);
        // The kernel rounds to the family's MSS: IPv6's windows differ (64800/64260 at 1500).
        let (window_v6, window_ts_v6) = self.windows(mss_v6);
        let mut c = Config {
            flags: f,
            rst_per_sec: 0,
            engage_per_sec: 0,
            synack_per_sec: 0,
            synack_per_prefix: 0,
            window,
            window_ts,
            mss_v4,
            mss_v6,
            wscale: self.wscale(),
            ttl: self.ttl,
            mode: 0,
            hop_limit: default::HOP_LIMIT as u8,
            window_v6,
            window_ts_v6,
        };
        crate::policy::Policy::default().apply(&mut c);
        c
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

/// The MTU of `iface` in the current network namespace (SIOCGIFMTU; /sys/class/net belongs to
/// the namespace /sys was mounted in, which need not be ours).
pub fn mtu(iface: &str) -> Result<u32, SysctlError> {
    let err = |source| SysctlError::Mtu {
        iface: iface.into(),
        source,
    };
    let mut req = crate::netdev::ifreq(iface);
    // SAFETY: plain socket + ioctl with a zeroed, NUL-terminated ifreq.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(err(std::io::Error::last_os_error()));
        }
        let r = libc::ioctl(fd, libc::SIOCGIFMTU as libc::Ioctl, &mut req);
        let e = std::io::Error::last_os_error();
        libc::close(fd);
        if r < 0 {
            return Err(err(e));
        }
        Ok(req.ifr_ifru.ifru_mtu as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel() -> Kernel {
        Kernel {
            syncookies: 1,
            timestamps: true,
            timestamps_2: false,
            sack: true,
            window_scaling: true,
            ecn: false,
            rmem_max: 6 * 1024 * 1024,
            rmem_default: 131_072,
            ttl: 64,
            conntrack_tcp_loose: Some(true),
        }
    }

    /// What Linux 6.18 sends with the default tcp_rmem and MTU 1500 (seen in a differential
    /// run): 64240 without timestamps, 65160 with.
    #[test]
    fn windows_match_the_kernels() {
        assert_eq!(kernel().windows(1460), (64240, 65160));
        let small = Kernel {
            rmem_default: 4096,
            ..kernel()
        };
        assert_eq!(small.windows(1460), (1460, 1448));
        let big = Kernel {
            rmem_default: 1 << 20,
            ..kernel()
        };
        assert_eq!(big.windows(1460), (65535, 65535));
    }

    #[test]
    fn wscale_matches_the_kernels_choice() {
        // Linux's defaults (tcp_rmem max 6 MiB) give shift 7.
        assert_eq!(kernel().wscale(), 7);
        assert_eq!(
            Kernel {
                rmem_max: 65535,
                ..kernel()
            }
            .wscale(),
            0
        );
        assert_eq!(
            Kernel {
                rmem_max: 1 << 30,
                ..kernel()
            }
            .wscale(),
            14
        );
    }

    #[test]
    fn config_follows_the_settings() {
        let c = kernel().config(1500, false);
        assert_eq!(c.mss_v4, 1460);
        assert_eq!(c.mss_v6, 1440);
        assert_eq!((c.window_v6, c.window_ts_v6), (64800, 64260));
        assert_eq!(c.hop_limit, 64);
        assert_eq!(
            c.flags,
            flags::TIMESTAMPS | flags::SACK | flags::WSCALE | flags::IPV6
        );
        let c = Kernel {
            sack: false,
            ecn: true,
            ..kernel()
        }
        .config(9000, true);
        assert_eq!(c.mss_v4, 8960);
        assert_eq!(
            c.flags,
            flags::TIMESTAMPS | flags::WSCALE | flags::ECN | flags::TC_RECHECK | flags::IPV6
        );
    }

    #[test]
    fn syncookies_off_is_refused_with_the_fix() {
        let e = Kernel {
            syncookies: 0,
            ..kernel()
        }
        .check()
        .unwrap_err();
        assert!(e.to_string().contains("set it to 1"));
    }

    #[test]
    fn strict_conntrack_is_refused_with_the_fix() {
        let e = Kernel {
            conntrack_tcp_loose: Some(false),
            ..kernel()
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("sysctl -w net.netfilter.nf_conntrack_tcp_loose=1"),
            "{e}"
        );
        assert!(e.contains("ct state new"), "{e}");
        // No conntrack at all is fine.
        Kernel {
            conntrack_tcp_loose: None,
            ..kernel()
        }
        .check()
        .unwrap();
    }

    /// A stand-in /proc/sys/net holding `files` (name -> contents), removed on drop.
    struct FakeProc(PathBuf);

    impl FakeProc {
        fn new(tag: &str, files: &[(&str, &str)]) -> Self {
            let root =
                std::env::temp_dir().join(format!("syncookie-sysctl-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            for (name, value) in files {
                let p = root.join(name.replace('.', "/"));
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, format!("{value}\n")).unwrap();
            }
            Self(root)
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const ALL: &[(&str, &str)] = &[
        ("ipv4.tcp_syncookies", "1"),
        ("ipv4.tcp_timestamps", "1"),
        ("ipv4.tcp_sack", "0"),
        ("ipv4.tcp_window_scaling", "1"),
        ("ipv4.tcp_ecn", "0"),
        ("ipv4.tcp_rmem", "4096\t131072\t6291456"),
        ("ipv4.ip_default_ttl", "63"),
        ("core.rmem_max", "16777216"),
        ("netfilter.nf_conntrack_tcp_loose", "0"),
    ];

    #[test]
    fn reads_every_setting() {
        let p = FakeProc::new("all", ALL);
        let k = Kernel::read_from(&p.0).unwrap();
        assert_eq!(
            k,
            Kernel {
                sack: false,
                ecn: false,
                rmem_max: 16777216,
                ttl: 63,
                conntrack_tcp_loose: Some(false),
                ..kernel()
            }
        );
    }

    /// Linux 6.1 has no net.core.rmem_max in a child namespace: the daemon used to stop there.
    #[test]
    fn a_setting_the_namespace_lacks_takes_the_kernels_default() {
        let files: Vec<_> = ALL
            .iter()
            .copied()
            .filter(|(n, _)| !matches!(*n, "core.rmem_max" | "netfilter.nf_conntrack_tcp_loose"))
            .collect();
        let p = FakeProc::new("old", &files);
        let k = Kernel::read_from(&p.0).unwrap();
        assert_eq!(k.rmem_max, 6291456, "tcp_rmem's max is the larger one");
        assert_eq!(k.conntrack_tcp_loose, None);
        k.check().unwrap();
        let p = FakeProc::new("bare", &[("ipv4.tcp_syncookies", "1")]);
        let k = Kernel::read_from(&p.0).unwrap();
        assert_eq!(
            k,
            Kernel {
                ecn: true,
                conntrack_tcp_loose: None,
                ..kernel()
            }
        );
    }

    #[test]
    fn ipv6_settings_of_the_interface() {
        let p = FakeProc::new(
            "v6",
            &[
                ("ipv6.conf.all.disable_ipv6", "0"),
                ("ipv6.conf.default.hop_limit", "64"),
                ("ipv6.conf.eth0.hop_limit", "42"),
                ("ipv6.conf.eth0.disable_ipv6", "0"),
                ("ipv6.conf.eth1.disable_ipv6", "1"),
            ],
        );
        let v = Ipv6::read_from(&p.0, "eth0").unwrap();
        assert_eq!(
            v,
            Ipv6 {
                enabled: true,
                hop_limit: 42
            }
        );
        let v = Ipv6::read_from(&p.0, "eth1").unwrap();
        assert_eq!(
            v,
            Ipv6 {
                enabled: false,
                hop_limit: 64
            }
        );
        let mut c = kernel().config(1500, false);
        v.apply(&mut c);
        assert_eq!(c.flags & flags::IPV6, 0);
        // No IPv6 at all (ipv6.disable=1): not protected, the kernel's default hop limit.
        let p = FakeProc::new("nov6", &[("ipv4.tcp_syncookies", "1")]);
        let v = Ipv6::read_from(&p.0, "eth0").unwrap();
        assert!(!v.enabled);
    }

    #[test]
    fn tcp_syncookies_is_mandatory() {
        let files: Vec<_> = ALL
            .iter()
            .copied()
            .filter(|(n, _)| *n != "ipv4.tcp_syncookies")
            .collect();
        let p = FakeProc::new("nosyncookies", &files);
        let e = Kernel::read_from(&p.0).unwrap_err();
        assert!(matches!(e, SysctlError::NoSyncookies), "{e}");
    }
}
