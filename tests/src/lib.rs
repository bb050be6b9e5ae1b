//! Test helpers: network-namespace labs with RAII cleanup, the daemon as a child process, canned
//! packets, and the lab eBPF programs. Everything here needs root.

pub mod container;
pub mod daemon;
pub mod endtoend;
pub mod fields;
pub mod flood;
pub mod frames;
pub mod handshakes;
pub mod lab;
pub mod negotiated;
pub mod netns;
pub mod packets;
pub mod share;
pub mod synspace;

/// The lab's eBPF object (lab-ebpf/: test, demo and bench programs), built by build.rs.
/// Program and map names: `syncookie_common::lab`.
pub static LAB_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lab.bpf.o"));

/// A lab counter summed over the CPUs; panics when the map or the index is missing.
pub fn lab_counter(ebpf: &aya::Ebpf, c: syncookie_common::lab::LabCounter) -> u64 {
    // A missing map or index is a broken test, not a zero count.
    let m = ebpf
        .map(syncookie_common::lab::map::COUNTERS)
        .expect("the lab's counter map");
    let a = aya::maps::PerCpuArray::<&aya::maps::MapData, u64>::try_from(m).expect("per-CPU u64s");
    let v = a
        .get(&(c as u32), 0)
        .unwrap_or_else(|e| panic!("lab counter {c:?}: {e}"));
    v.iter().sum()
}

/// Whether a BPF_PROG_TEST_RUN failed only because a signal interrupted a long run (EINTR):
/// the repetitions made until then did run and their map updates stay, so the caller counts
/// them from its own counters and runs the rest.
pub fn interrupted(e: &aya::programs::ProgramError) -> bool {
    matches!(e, aya::programs::ProgramError::SyscallError(s)
        if s.io_error.kind() == std::io::ErrorKind::Interrupted)
}

/// Fails the test, with the reason, when not root: these tests need CAP_NET_ADMIN and CAP_BPF,
/// and a run without them must not pass having tested nothing.
#[macro_export]
macro_rules! require_root {
    () => {
        assert!(
            nix::unistd::geteuid().is_root(),
            "needs root (CAP_BPF, CAP_NET_ADMIN, network namespaces): run `sudo cargo xtask test`"
        );
    };
}

/// Polls `done` every 10 ms until it holds or `timeout` has passed (a deadline, not a guess
/// of how long the frames take on a loaded machine); returns whether it held.
pub fn wait_until(timeout: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Runs `check`, turning a panic of the test helpers into a failure with its message: for the
/// suites that run outside the test harness (the kernel matrix's), where one check's panic must
/// not end the others.
pub fn guarded<T>(check: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(check))
        .unwrap_or_else(|p| Err(panic_message(p.as_ref())))
}

/// What a caught panic said.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panicked".into())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use syncookie_common::{
        lab::{map, prog},
        maps::{PROG_TC, PROG_XDP, PROG_XDP_EXT, SHIELD_MAPS, kernel_cookies},
    };

    /// Asserts that `object` holds exactly these programs and maps (its own sections, such as
    /// `.rodata`, aside).
    fn holds_exactly(object: &[u8], progs: &[&str], maps: &[&str]) {
        let obj = aya_obj::Object::parse(object).expect("parse the object");
        let found: BTreeSet<&str> = obj.programs.keys().map(String::as_str).collect();
        assert_eq!(found, progs.iter().copied().collect());
        let found: BTreeSet<&str> = obj
            .maps
            .keys()
            .map(String::as_str)
            .filter(|m| !m.starts_with('.'))
            .collect();
        assert_eq!(found, maps.iter().copied().collect());
    }

    /// The names the tests and the bench use are the names in the lab's object, and the lab
    /// has nothing of the shield's (its own maps, none pinned).
    #[test]
    fn lab_object_has_the_names_in_common() {
        holds_exactly(super::LAB_OBJECT, prog::ALL, map::ALL);
    }

    /// The daemon embeds the shield and nothing else: no lab or bench program ships with it.
    #[test]
    fn embedded_object_is_the_shield_only() {
        let progs = [
            PROG_XDP,
            PROG_XDP_EXT,
            PROG_TC,
            kernel_cookies::PROG_XDP,
            kernel_cookies::PROG_SYNACK,
            kernel_cookies::PROG_XDP_EXT,
        ];
        holds_exactly(syncookie::EBPF_OBJECT, &progs, SHIELD_MAPS);
    }
}
