//! rtnetlink notifications: addresses, routes and links of this namespace. Any of them can
//! change what is local, so any message means "sync again"; their content is not read.

use std::time::Duration;

use netlink_sys::{Socket, protocols::NETLINK_ROUTE};
use tokio::{
    io::{Interest, unix::AsyncFd},
    time::Instant,
};

use super::LocalError;

/// Changes come in bursts (an address brings its routes, a link its addresses): one sync for
/// all of them, soon enough that a new address is protected within a second.
const SETTLE: Duration = Duration::from_millis(100);

/// The multicast groups followed: links (their MACs), addresses, routes (`ip route add
/// local ...`, the local routes every address brings, the routes the reverse-path filter
/// judges by) and IPv4 netconf (rp_filter changes).
const GROUPS: [u32; 6] = [
    libc::RTNLGRP_LINK,
    libc::RTNLGRP_IPV4_IFADDR,
    libc::RTNLGRP_IPV4_ROUTE,
    // rp_filter changes (RTM_NEWNETCONF).
    libc::RTNLGRP_IPV4_NETCONF,
    libc::RTNLGRP_IPV6_IFADDR,
    libc::RTNLGRP_IPV6_ROUTE,
];

/// A notification socket in the tokio loop.
pub struct Watcher {
    sock: AsyncFd<Socket>,
    /// When the changes seen so far are due to be synced: kept across a cancelled
    /// [`Self::changed`] (it runs in a `select!`), so none is forgotten.
    due: Option<Instant>,
}

fn nl_err(what: &'static str) -> impl FnOnce(std::io::Error) -> LocalError {
    move |cause| LocalError::Netlink { what, cause }
}

impl Watcher {
    /// Subscribes; call inside the tokio runtime, before the sync it is to keep current (what
    /// changes in between is then seen twice, never missed).
    pub fn new() -> Result<Self, LocalError> {
        const WHAT: &str = "subscribing to address, route and link changes";
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(nl_err(WHAT))?;
        sock.bind_auto().map_err(nl_err(WHAT))?;
        for g in GROUPS {
            sock.add_membership(g).map_err(nl_err(WHAT))?;
        }
        sock.set_non_blocking(true).map_err(nl_err(WHAT))?;
        // SAFETY: the socket owns its descriptor and closes it only when dropped, with the
        // `AsyncFd` that owns it.
        let sock = unsafe { AsyncFd::register_with_interest(sock, Interest::READABLE) }
            .map_err(|e| nl_err(WHAT)(e.into()))?;
        Ok(Self { sock, due: None })
    }

    /// Returns when something changed, [`SETTLE`] after the first notification. Cancel-safe.
    pub async fn changed(&mut self) -> Result<(), LocalError> {
        loop {
            if let Some(due) = self.due {
                tokio::time::sleep_until(due).await;
                self.drain()?;
                self.due = None;
                return Ok(());
            }
            let mut ready = self
                .sock
                .readable()
                .await
                .map_err(nl_err("waiting for notifications"))?;
            // Readiness is cleared when a read would block (stale after a drain); the
            // notifications themselves are read when due.
            if ready.try_io(|s| peek(s.get_ref())).is_ok() {
                self.due = Some(Instant::now() + SETTLE);
            }
        }
    }

    /// Reads every pending notification (they are all covered by the sync that follows), until
    /// a read would block: that also clears the readiness tokio keeps.
    fn drain(&mut self) -> Result<(), LocalError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match self
                .sock
                .try_io(Interest::READABLE, |s| s.recv(&mut &mut buf[..], 0))
            {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                // The socket overflowed and lost notifications: the sync reads everything anyway.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                Err(e) => return Err(nl_err("reading notifications")(e)),
            }
        }
    }
}

/// Whether a notification (or an overflow) is waiting, without reading it.
fn peek(s: &Socket) -> std::io::Result<()> {
    let mut b = [0u8; 1];
    match s.recv(&mut &mut b[..], libc::MSG_PEEK) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => Ok(()),
        Err(e) => Err(e),
    }
}
