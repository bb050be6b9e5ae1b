//! What the running kernel can do, checked before anything else: on a kernel that cannot run
//! the shield, the error names the kernel's version and the missing feature, instead of whatever
//! happens to fail first further on (a sysctl a namespace lacks, a program the verifier rejects).
//! It also picks how cookies are made: the shield's own with the kfunc handoff where the kernel
//! has it (full mode), else the kernel's own cookies (kernel-cookie mode, Linux 6.0+, or 5.10+
//! through the listener's helpers).

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

/// Kernel-cookie mode: the kernel's cookies from XDP without a socket (net/core/filter.c).
pub const RAW_COOKIES: Feature = Feature {
    name: "bpf_tcp_raw_gen_syncookie_ipv4",
    since: (6, 0),
};

/// Kernel-cookie mode on 5.x: the kernel's cookies from XDP on the listener
/// (`bpf_tcp_gen_syncookie`, 5.3+); 5.10 is the first release whose x86-64 JIT lets a program
/// with subprograms tail-call (the SYN-ACK with the options), and the oldest run in the matrix.
pub const LISTENER_COOKIES: Feature = Feature {
    name: "bpf_tcp_gen_syncookie",
    since: (5, 10),
};

/// What changes when kernel-cookie mode runs on the listener, for the daemon's log.
pub const LISTENER_NOTE: &str = "kernel-cookie mode on the listener (no raw cookie helpers \
    before Linux 6.0): bpf_tcp_gen_syncookie makes each cookie and renews the listener's \
    overflow stamp itself, so no SYN goes to the kernel for it (--refresh-secs is unused); \
    MPTCP listeners are answered as plain TCP ones (their clients fall back to TCP)";

/// Whose cookies the shield sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cookies {
    /// The shield's own keyed cookies, handed to the kernel by bpf_sk_assign_tcp_reqsk (Linux
    /// 6.9+): rotating or fleet keys, every option.
    Own,
    /// The kernel's own cookies (Linux 5.10+, for kernels without the kfunc): the kernel's
    /// keys, the MSS only in the SYN-ACK unless tcp_timestamps=2 lets timestamps carry the
    /// other options (--timestamps-without-offsets); tcp_syncookies is set to 2.
    Kernel,
}

impl Cookies {
    pub fn name(self) -> &'static str {
        match self {
            Self::Own => "own",
            Self::Kernel => "kernel",
        }
    }
}

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
    #[error(
        "not supported: kernel {kernel} has neither {} (Linux {}.{}+, the shield's own cookies) \
         nor {} (Linux {}.{}+, the kernel's cookies)",
        KFUNC.name, KFUNC.since.0, KFUNC.since.1,
        LISTENER_COOKIES.name, LISTENER_COOKIES.since.0, LISTENER_COOKIES.since.1
    )]
    Neither { kernel: String },
    #[error("cannot tell the kernel's version: {0}")]
    Version(String),
}

/// What the running kernel offers, as far as the shield cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub version: KernelVersion,
    pub btf: bool,
    pub kfunc: bool,
    /// bpf_tcp_raw_gen_syncookie_ipv4 (found in BTF, or by version without BTF).
    pub raw_cookies: bool,
}

impl Probe {
    /// Reads the version (Debian's and Ubuntu's real one, not `uname -r`'s ABI name) and looks
    /// the kfunc up in the kernel's BTF.
    pub fn running() -> Result<Self, KernelError> {
        let version = KernelVersion::current().map_err(|e| KernelError::Version(e.to_string()))?;
        let btf = std::path::Path::new(BTF).exists();
        let ids = if btf {
            crate::bpf::kfunc::kernel_btf_ids().ok()
        } else {
            None
        };
        let kfunc = ids.as_ref().is_some_and(|ids| ids(KFUNC.name).is_some());
        // A helper is a function of the kernel's BTF too (BPF_CALL_x): a backport counts.
        let raw_cookies = match &ids {
            Some(ids) => ids(RAW_COOKIES.name).is_some(),
            None => version >= KernelVersion::new(RAW_COOKIES.since.0, RAW_COOKIES.since.1, 0),
        };
        Ok(Self {
            version,
            btf,
            kfunc,
            raw_cookies,
        })
    }

    /// `release` with the version when it does not already say it.
    fn kernel(&self, release: &str) -> String {
        if release.starts_with(&self.version.to_string()) {
            release.to_string()
        } else {
            format!("{} ({release})", self.version)
        }
    }

    /// The mode to run: `requested` if the kernel can, else the error naming what it lacks;
    /// without a request, own cookies where the kernel can, else the kernel's.
    pub fn choose(
        &self,
        requested: Option<Cookies>,
        release: &str,
    ) -> Result<Cookies, KernelError> {
        match requested {
            Some(Cookies::Own) => self.check(release).map(|()| Cookies::Own),
            Some(Cookies::Kernel) => self.check_kernel_cookies(release).map(|()| Cookies::Kernel),
            None => match self.check(release) {
                Ok(()) => Ok(Cookies::Own),
                Err(own) => match self.check_kernel_cookies(release) {
                    Ok(()) => Ok(Cookies::Kernel),
                    Err(_) if matches!(own, KernelError::Missing { feature, .. } if feature == KFUNC) => {
                        Err(KernelError::Neither {
                            kernel: self.kernel(release),
                        })
                    }
                    Err(_) => Err(own),
                },
            },
        }
    }

    /// What kernel-cookie mode needs: the raw cookie helpers, or on 5.10+ the listener's (no
    /// TC program, no kfunc).
    pub fn check_kernel_cookies(&self, release: &str) -> Result<(), KernelError> {
        if !self.raw_cookies && !self.has(LISTENER_COOKIES) {
            return Err(KernelError::Missing {
                kernel: self.kernel(release),
                feature: LISTENER_COOKIES,
            });
        }
        Ok(())
    }

    /// Kernel-cookie mode makes its cookies on the listener: no raw cookie helpers here.
    pub fn listener_cookies(&self) -> bool {
        !self.raw_cookies
    }

    /// The first thing missing for the shield's own cookies with the kfunc handoff, named with
    /// the kernel (`release`: `uname -r`, shown when it does not already say the version).
    pub fn check(&self, release: &str) -> Result<(), KernelError> {
        let kernel = self.kernel(release);
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

/// Checks the running kernel for full mode: call before touching anything else.
pub fn check() -> Result<(), KernelError> {
    choose(Some(Cookies::Own)).map(|_| ())
}

/// Picks the mode on the running kernel (`requested`: the admin's override): call before
/// touching anything else.
pub fn choose(requested: Option<Cookies>) -> Result<Cookies, KernelError> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    Probe::running()?.choose(requested, release.trim())
}

/// Whether kernel-cookie mode must make its cookies on the listener (a 5.x kernel: no raw
/// cookie helpers); false when the kernel cannot be probed (then nothing loads anyway).
pub fn listener_cookies() -> bool {
    Probe::running().is_ok_and(|p| p.listener_cookies())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(v: (u8, u8, u16), kfunc: bool) -> Probe {
        Probe {
            version: KernelVersion::new(v.0, v.1, v.2),
            btf: true,
            kfunc,
            raw_cookies: v.0 >= 6,
        }
    }

    #[test]
    fn modes_are_chosen_by_what_the_kernel_has() {
        let deb12 = probe((6, 1, 192), false);
        assert_eq!(
            deb12.choose(None, "6.1.0-57-cloud-amd64").unwrap(),
            Cookies::Kernel
        );
        assert_eq!(
            deb12.choose(Some(Cookies::Kernel), "6.1.0").unwrap(),
            Cookies::Kernel
        );
        let e = deb12
            .choose(Some(Cookies::Own), "6.1.0-57-cloud-amd64")
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("bpf_sk_assign_tcp_reqsk (Linux 6.9+)"),
            "{e}"
        );
        let lts = probe((6, 12, 117), true);
        assert_eq!(lts.choose(None, "6.12.117").unwrap(), Cookies::Own);
        assert_eq!(
            lts.choose(Some(Cookies::Kernel), "6.12.117").unwrap(),
            Cookies::Kernel
        );
        // 5.10 and 5.15: kernel cookies on the listener.
        let deb11 = probe((5, 10, 237), false);
        assert_eq!(
            deb11.choose(None, "5.10.0-35-cloud-amd64").unwrap(),
            Cookies::Kernel
        );
        assert!(deb11.listener_cookies() && !deb12.listener_cookies());
        let e = deb11
            .choose(Some(Cookies::Own), "5.10.0-35-cloud-amd64")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bpf_sk_assign_tcp_reqsk (Linux 6.9+"), "{e}");
        let old = probe((5, 4, 0), false);
        let e = old
            .choose(None, "5.4.0-91-generic")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("kernel 5.4.0-91-generic has neither")
                && e.contains("bpf_sk_assign_tcp_reqsk (Linux 6.9+")
                && e.contains("bpf_tcp_gen_syncookie (Linux 5.10+"),
            "{e}"
        );
        let e = old
            .choose(Some(Cookies::Kernel), "5.4.0")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("has no bpf_tcp_gen_syncookie (Linux 5.10+)"),
            "{e}"
        );
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
