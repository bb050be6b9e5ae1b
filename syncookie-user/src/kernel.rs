//! What the running kernel can do, checked before anything else: on a kernel that cannot run
//! the shield, the error names the kernel's version and the missing feature, instead of whatever
//! happens to fail first further on (a sysctl a namespace lacks, a program the verifier rejects).

use aya::util::KernelVersion;
use syncookie_common::maps::KFUNC_ASSIGN_REQSK;

/// A kernel feature the shield needs, and the first Linux release that has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feature {
    pub name: &'static str,
    pub since: (u8, u8),
}

/// The handoff: the kernel builds a connection from our cookie (net/core/filter.c).
pub const KFUNC: Feature = Feature {
    name: KFUNC_ASSIGN_REQSK,
    since: (6, 9),
};
/// TC ingress as a link (no qdisc). aya picks TCX over netlink by version, so we check the
/// version too: on an older kernel aya would make a clsact qdisc that detach does not remove.
pub const TCX: Feature = Feature {
    name: "TCX (TC programs as links)",
    since: (6, 6),
};

const BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("not supported: kernel {kernel} has no {} (Linux {}.{}+)", .feature.name, .feature.since.0, .feature.since.1)]
    Missing { kernel: String, feature: Feature },
    #[error(
        "not supported: kernel {kernel} has no BTF ({BTF}): the kfuncs are found there; use a \
         kernel built with CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoBtf { kernel: String },
    #[error("cannot tell the kernel's version: {0}")]
    Version(String),
}

/// What the running kernel offers, as far as the shield cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub version: KernelVersion,
    pub btf: bool,
    pub kfunc: bool,
}

impl Probe {
    /// Reads the version (Debian's and Ubuntu's real one, not `uname -r`'s ABI name) and looks
    /// the kfunc up in the kernel's BTF.
    pub fn running() -> Result<Self, KernelError> {
        let version = KernelVersion::current().map_err(|e| KernelError::Version(e.to_string()))?;
        let btf = std::path::Path::new(BTF).exists();
        let kfunc = btf
            && crate::kfunc::kernel_btf_ids()
                .map(|ids| ids(KFUNC.name).is_some())
                .unwrap_or(false);
        Ok(Self {
            version,
            btf,
            kfunc,
        })
    }

    /// The first thing missing for the shield's own cookies with the kfunc handoff, named with
    /// the kernel (`release`: `uname -r`, shown when it does not already say the version).
    pub fn check(&self, release: &str) -> Result<(), KernelError> {
        let kernel = if release.starts_with(&self.version.to_string()) {
            release.to_string()
        } else {
            format!("{} ({release})", self.version)
        };
        if !self.btf {
            return Err(KernelError::NoBtf { kernel });
        }
        for (have, feature) in [(self.kfunc, KFUNC), (self.has(TCX), TCX)] {
            if !have {
                return Err(KernelError::Missing { kernel, feature });
            }
        }
        Ok(())
    }

    fn has(&self, f: Feature) -> bool {
        self.version >= KernelVersion::new(f.since.0, f.since.1, 0)
    }
}

/// Checks the running kernel: call before touching anything else.
pub fn check() -> Result<(), KernelError> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    Probe::running()?.check(release.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(v: (u8, u8, u16), kfunc: bool) -> Probe {
        Probe {
            version: KernelVersion::new(v.0, v.1, v.2),
            btf: true,
            kfunc,
        }
    }

    #[test]
    fn debian_12_is_told_what_it_lacks() {
        let e = probe((6, 1, 192), false)
            .check("6.1.0-57-cloud-amd64")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "not supported: kernel 6.1.192 (6.1.0-57-cloud-amd64) has no bpf_sk_assign_tcp_reqsk \
             (Linux 6.9+)"
        );
    }

    #[test]
    fn a_backported_kfunc_without_tcx_is_refused_for_tcx() {
        let e = probe((6, 5, 0), true).check("6.5.0").unwrap_err();
        assert!(e.to_string().contains("has no TCX"), "{e}");
        assert!(e.to_string().contains("kernel 6.5.0 has"), "{e}");
    }

    #[test]
    fn lts_and_newer_pass() {
        probe((6, 12, 117), true)
            .check("6.12.117+deb12-cloud-amd64")
            .unwrap();
        probe((6, 18, 0), true).check("6.18.0").unwrap();
    }

    #[test]
    fn no_btf_says_so() {
        let p = Probe {
            btf: false,
            ..probe((6, 12, 0), false)
        };
        assert!(p.check("6.12.0").unwrap_err().to_string().contains("BTF"));
    }

    #[test]
    fn running_kernel_passes() {
        // The machine the tests run on is the shield's (6.9+); BTF is world-readable.
        check().unwrap();
    }
}
