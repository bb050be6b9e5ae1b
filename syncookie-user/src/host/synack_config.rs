//! The SYN-ACK configuration the shield writes into `SC_CONFIG`: what the kernel would put in its
//! own SYN-ACK (MSS from the interface's MTU, windows and window scale from the receive
//! buffers, the options the namespace enables), derived from [`TcpSettings`] and the interface.

use syncookie_common::{
    maps::{Config, flags},
    proto::TCPOLEN_TSTAMP_ALIGNED,
};

use crate::host::sysctl::{SysctlError, TcpSettings, default};

impl TcpSettings {
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

/// The MTU of `iface` in the current network namespace (SIOCGIFMTU; /sys/class/net belongs to
/// the namespace /sys was mounted in, which need not be ours).
pub fn mtu(iface: &str) -> Result<u32, SysctlError> {
    let err = |source| SysctlError::Mtu {
        iface: iface.into(),
        source,
    };
    let mut req = crate::host::netdev::ifreq(iface);
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
    use crate::host::sysctl::tests::kernel;

    /// What Linux 6.18 sends with the default tcp_rmem and MTU 1500 (seen in a differential
    /// run): 64240 without timestamps, 65160 with.
    #[test]
    fn windows_match_the_kernels() {
        assert_eq!(kernel().windows(1460), (64240, 65160));
        let small = TcpSettings {
            rmem_default: 4096,
            ..kernel()
        };
        assert_eq!(small.windows(1460), (1460, 1448));
        let big = TcpSettings {
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
            TcpSettings {
                rmem_max: 65535,
                ..kernel()
            }
            .wscale(),
            0
        );
        assert_eq!(
            TcpSettings {
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
        let c = TcpSettings {
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
}
