//! Test helpers: network-namespace labs with RAII cleanup, the daemon as a child process, canned
//! packets, and the lab eBPF programs. Everything here needs root.

pub mod daemon;
pub mod endtoend;
pub mod fields;
pub mod flood;
pub mod frames;
pub mod handshakes;
pub mod lab;
pub mod netns;
pub mod packets;
pub mod synspace;

/// The lab's eBPF object (lab-ebpf/: test, demo and bench programs), built by build.rs.
/// Program and map names: `syncookie_common::lab`.
pub static LAB_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lab.bpf.o"));

/// A lab counter summed over the CPUs (0 when the object has no such map loaded).
pub fn lab_counter(ebpf: &aya::Ebpf, c: syncookie_common::lab::LabCounter) -> u64 {
    let Some(m) = ebpf.map(syncookie_common::lab::map::COUNTERS) else {
        return 0;
    };
    let Ok(a) = aya::maps::PerCpuArray::<&aya::maps::MapData, u64>::try_from(m) else {
        return 0;
    };
    a.get(&(c as u32), 0).map_or(0, |v| v.iter().sum())
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use syncookie_common::lab::{map, prog};

    /// The names the tests and the bench use are the names in the lab's object, and the lab
    /// has nothing of the shield's (its own maps, none pinned).
    #[test]
    fn lab_object_has_the_names_in_common() {
        let obj = aya_obj::Object::parse(super::LAB_OBJECT).expect("parse the lab object");
        let progs: BTreeSet<&str> = obj.programs.keys().map(String::as_str).collect();
        assert_eq!(progs, prog::ALL.iter().copied().collect());
        let maps: BTreeSet<&str> = obj
            .maps
            .keys()
            .map(String::as_str)
            .filter(|m| !m.starts_with('.'))
            .collect();
        assert_eq!(maps, map::ALL.iter().copied().collect());
    }
}
