//! The eBPF programs' own messages (aya-log): rare events such as a refused handoff with its
//! errno, never one per packet. Their level comes from the daemon's logger (`RUST_LOG`) at load
//! time: the programs read it as a constant, so the verifier removes every log site below it
//! and a disabled level costs nothing in the data path. What they write is read from their ring
//! buffer and logged like the daemon's own messages.

use aya::Ebpf;
use log::{Level, Metadata};
use tokio::io::unix::AsyncFd;

/// The target of the programs' messages (their crate and module, e.g. `syncookie::tc`).
const TARGET: &str = "syncookie::ebpf";

/// The most verbose level the daemon's logger takes for the programs' messages, as
/// aya-log-ebpf's `AYA_LOG_LEVEL` (1 error .. 5 trace), 0 when it takes none.
pub fn level() -> u8 {
    [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
    ]
    .into_iter()
    .find(|l| log::logger().enabled(&Metadata::builder().level(*l).target(TARGET).build()))
    .map_or(0, |l| l as u8)
}

/// Starts forwarding the programs' messages to the daemon's logger (on the current tokio
/// runtime). `None` when no level is on: nothing would ever be written.
pub fn forward(ebpf: &mut Ebpf) -> Option<tokio::task::JoinHandle<()>> {
    if level() == 0 {
        return None;
    }
    let logger = match aya_log::EbpfLogger::init(ebpf) {
        Ok(l) => l,
        Err(e) => {
            log::warn!("the eBPF programs' messages cannot be read: {e}");
            return None;
        }
    };
    // SAFETY: the fd is the ring buffer map's, owned by the logger, which the AsyncFd owns in
    // turn: it stays open and the same until the AsyncFd is dropped.
    let registered =
        unsafe { AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE) };
    let mut fd = match registered {
        Ok(fd) => fd,
        Err(e) => {
            log::warn!("the eBPF programs' messages cannot be read: {e}");
            return None;
        }
    };
    Some(tokio::spawn(async move {
        while let Ok(mut ready) = fd.readable_mut().await {
            ready.get_inner_mut().flush();
            ready.clear_ready();
        }
    }))
}
