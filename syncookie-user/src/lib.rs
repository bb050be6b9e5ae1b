//! The syncookie daemon as a library: load and attach the programs (`bpf`), read and set what
//! the host's kernel and network decide (`host`), run the daemon's tasks (`daemon`), rotate
//! cookie keys (`keys`), read counters and state (`observe`). The `syncookie` binary is a thin
//! CLI over it (`cli`: flags, config merging, printing); the tests use it directly.

pub mod bpf;
pub mod config;
pub mod daemon;
pub mod host;
pub mod keys;
pub mod observe;
pub mod policy;

/// The shield's eBPF object (syncookie-ebpf), built by build.rs: the only object the daemon
/// loads.
pub static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/syncookie.bpf.o"));

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use syncookie_common::maps::{PROG_TC, PROG_XDP, PROG_XDP_EXT, SHIELD_MAPS, kernel_cookies};

    /// The daemon embeds the shield and nothing else: no lab or bench program ships with it.
    #[test]
    fn embedded_object_is_the_shield_only() {
        let obj = aya_obj::Object::parse(super::EBPF_OBJECT).expect("parse the embedded object");
        let progs: BTreeSet<&str> = obj.programs.keys().map(String::as_str).collect();
        assert_eq!(
            progs,
            BTreeSet::from([
                PROG_XDP,
                PROG_XDP_EXT,
                PROG_TC,
                kernel_cookies::PROG_XDP,
                kernel_cookies::PROG_SYNACK,
                kernel_cookies::PROG_XDP_EXT
            ])
        );
        let maps: BTreeSet<&str> = obj
            .maps
            .keys()
            .map(String::as_str)
            .filter(|m| !m.starts_with('.'))
            .collect();
        assert_eq!(maps, SHIELD_MAPS.iter().copied().collect());
    }
}
