//! Kernel-cookie mode's options: net.ipv4.tcp_timestamps=2 ("like 1, but without random
//! offsets") makes `secure_tcp_ts_off()` return 0, so the kernel's cookie check reads window
//! scale, SACK and ECN from the raw TSecr, and the XDP program can write the kernel's own
//! timestamp cookie (syncookie-common's `kernel_ts`). Set only when the admin allows it
//! (`--timestamps-without-offsets`): every TSval of this network namespace then shows the
//! host's uptime to its peer.

use std::path::Path;

use syncookie_common::maps::{Config, flags};

use crate::host::sysctl::{SysctlError, TcpSettings};

const TCP_TIMESTAMPS: &str = "/proc/sys/net/ipv4/tcp_timestamps";

/// Sets tcp_timestamps to 2 in the current network namespace, saying what it costs; returns
/// whether it changed anything (then the settings must be read again).
pub fn set_2(kernel: &TcpSettings) -> Result<bool, SysctlError> {
    if kernel.timestamps_2 {
        return Ok(false);
    }
    let path = Path::new(TCP_TIMESTAMPS);
    std::fs::write(path, "2").map_err(|source| SysctlError::Write {
        path: path.into(),
        source,
    })?;
    log::warn!(
        "net.ipv4.tcp_timestamps was {}, set to 2 for kernel-cookie mode's options (window \
         scaling, SACK, ECN): TCP timestamps no longer get a random offset per peer, so every \
         connection of this network namespace, protected or not, shows this host's uptime to \
         its peer; it stays 2 when the shield stops, as tcp_syncookies does",
        u8::from(kernel.timestamps)
    );
    Ok(true)
}

/// What kernel-cookie mode's SYN-ACKs carry with this configuration.
pub fn carried(c: &Config) -> &'static str {
    if c.flags & flags::KERNEL_TS != 0 {
        "every option for timestamp clients (tcp_timestamps=2), the MSS only for others"
    } else {
        "the MSS only"
    }
}
