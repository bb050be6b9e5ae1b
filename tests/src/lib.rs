//! Test helpers: network-namespace labs with RAII cleanup, the daemon as a child process, canned
//! packets, and the lab eBPF programs. Everything here needs root.

pub mod daemon;
pub mod flood;
pub mod frames;
pub mod lab;
pub mod netns;
pub mod packets;

/// Skips (with a printed reason) when not root: these tests need CAP_NET_ADMIN and CAP_BPF.
#[macro_export]
macro_rules! require_root {
    () => {
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root (run `cargo xtask test`)");
            return;
        }
    };
}
