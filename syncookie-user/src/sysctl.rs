//! The kernel settings the shield relies on, read from /proc/sys of the current network
//! namespace, and the SYN-ACK configuration derived from them and from the interface.

use std::path::PathBuf;

use syncookie_common::{
    maps::{Config, flags},
    proto::{DEFAULT_TTL, TCPOLEN_TSTAMP_ALIGNED},
};

/// Handshake ACKs with a bad or expired cookie passed to the kernel (which resets them) per
/// second and CPU; the rest are dropped.
pub const DEFAULT_RST_PER_SEC: u32 = 100;

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
    #[error("cannot read the MTU of {iface}")]
    Mtu {
        iface: String,
        source: std::io::Error,
    },
}

fn read(name: &str) -> Result<Vec<i64>, SysctlError> {
    let path = PathBuf::from("/proc/sys/net").join(name.replace('.', "/"));
    let s = std::fs::read_to_string(&path).map_err(|source| SysctlError::Read {
        path: path.clone(),
        source,
    })?;
    s.split_whitespace()
        .map(|v| {
            v.parse().map_err(|_| SysctlError::Parse {
                path: path.clone(),
                value: s.trim().into(),
            })
        })
        .collect()
}

fn one(name: &str) -> Result<i64, SysctlError> {
    Ok(read(name)?.first().copied().unwrap_or(0))
}

/// What the kernel will do with a connection we hand it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernel {
    pub syncookies: i64,
    pub timestamps: bool,
    pub sack: bool,
    pub window_scaling: bool,
    pub ecn: bool,
    /// The receive buffer the kernel may grow to: decides its window-scale shift.
    pub rmem_max: i64,
    /// A listener's receive buffer (tcp_rmem[1]): decides the SYN-ACK's window.
    pub rmem_default: i64,
    pub ttl: u8,
}

impl Kernel {
    pub fn read() -> Result<Self, SysctlError> {
        let rmem = read("ipv4.tcp_rmem")?;
        Ok(Self {
            syncookies: one("ipv4.tcp_syncookies")?,
            timestamps: one("ipv4.tcp_timestamps")? != 0,
            sack: one("ipv4.tcp_sack")? != 0,
            window_scaling: one("ipv4.tcp_window_scaling")? != 0,
            ecn: one("ipv4.tcp_ecn")? != 0,
            rmem_max: rmem.get(2).copied().unwrap_or(0).max(one("core.rmem_max")?),
            rmem_default: rmem.get(1).copied().unwrap_or(131_072),
            ttl: u8::try_from(one("ipv4.ip_default_ttl")?).unwrap_or(DEFAULT_TTL),
        })
    }

    /// tcp_syncookies >= 1 is required: bpf_sk_assign_tcp_reqsk fails at 0.
    pub fn check(&self) -> Result<(), SysctlError> {
        if self.syncookies < 1 {
            return Err(SysctlError::SyncookiesOff);
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

    /// The SYN-ACK configuration for an interface of MTU `mtu`.
    pub fn config(&self, mtu: u32, tc_recheck: bool) -> Config {
        let mut f = 0;
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
        let (window, window_ts) = self.windows(mss_v4);
        Config {
            flags: f,
            rst_per_sec: DEFAULT_RST_PER_SEC,
            window,
            window_ts,
            mss_v4,
            mss_v6: mtu.saturating_sub(60).clamp(1220, 65535) as u16,
            wscale: self.wscale(),
            ttl: self.ttl,
            reserved: [0; 2],
        }
    }
}

/// The MTU of `iface` in the current network namespace (SIOCGIFMTU; /sys/class/net belongs to
/// the namespace /sys was mounted in, which need not be ours).
pub fn mtu(iface: &str) -> Result<u32, SysctlError> {
    let err = |source| SysctlError::Mtu {
        iface: iface.into(),
        source,
    };
    // SAFETY: plain socket + ioctl with a zeroed, NUL-terminated ifreq.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(err(std::io::Error::last_os_error()));
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (d, s) in req
            .ifr_name
            .iter_mut()
            .zip(iface.bytes().take(libc::IFNAMSIZ - 1))
        {
            *d = s as libc::c_char;
        }
        let r = libc::ioctl(fd, libc::SIOCGIFMTU, &mut req);
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
            sack: true,
            window_scaling: true,
            ecn: false,
            rmem_max: 6 * 1024 * 1024,
            rmem_default: 131_072,
            ttl: 64,
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
        assert_eq!(c.flags, flags::TIMESTAMPS | flags::SACK | flags::WSCALE);
        let c = Kernel {
            sack: false,
            ecn: true,
            ..kernel()
        }
        .config(9000, true);
        assert_eq!(c.mss_v4, 8960);
        assert_eq!(
            c.flags,
            flags::TIMESTAMPS | flags::WSCALE | flags::ECN | flags::TC_RECHECK
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
}
