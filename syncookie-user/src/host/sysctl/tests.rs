use super::*;

/// Linux's defaults, conntrack loose.
pub(crate) fn kernel() -> TcpSettings {
    TcpSettings {
        syncookies: 1,
        timestamps: true,
        timestamps_2: false,
        sack: true,
        window_scaling: true,
        ecn: false,
        rmem_max: 6 * 1024 * 1024,
        rmem_default: 131_072,
        ttl: 64,
        conntrack_tcp_loose: Some(true),
    }
}

#[test]
fn syncookies_off_is_refused_with_the_fix() {
    let e = TcpSettings {
        syncookies: 0,
        ..kernel()
    }
    .check()
    .unwrap_err();
    assert!(e.to_string().contains("set it to 1"));
}

#[test]
fn strict_conntrack_is_refused_with_the_fix() {
    let e = TcpSettings {
        conntrack_tcp_loose: Some(false),
        ..kernel()
    }
    .check()
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("sysctl -w net.netfilter.nf_conntrack_tcp_loose=1"),
        "{e}"
    );
    assert!(e.contains("ct state new"), "{e}");
    // No conntrack at all is fine.
    TcpSettings {
        conntrack_tcp_loose: None,
        ..kernel()
    }
    .check()
    .unwrap();
}

/// A stand-in /proc/sys/net holding `files` (name -> contents), removed on drop.
struct FakeProc(PathBuf);

impl FakeProc {
    fn new(tag: &str, files: &[(&str, &str)]) -> Self {
        let root =
            std::env::temp_dir().join(format!("syncookie-sysctl-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (name, value) in files {
            let p = root.join(name.replace('.', "/"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, format!("{value}\n")).unwrap();
        }
        Self(root)
    }
}

impl Drop for FakeProc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const ALL: &[(&str, &str)] = &[
    ("ipv4.tcp_syncookies", "1"),
    ("ipv4.tcp_timestamps", "1"),
    ("ipv4.tcp_sack", "0"),
    ("ipv4.tcp_window_scaling", "1"),
    ("ipv4.tcp_ecn", "0"),
    ("ipv4.tcp_rmem", "4096\t131072\t6291456"),
    ("ipv4.ip_default_ttl", "63"),
    ("core.rmem_max", "16777216"),
    ("netfilter.nf_conntrack_tcp_loose", "0"),
];

#[test]
fn reads_every_setting() {
    let p = FakeProc::new("all", ALL);
    let k = TcpSettings::read_from(&p.0).unwrap();
    assert_eq!(
        k,
        TcpSettings {
            sack: false,
            ecn: false,
            rmem_max: 16777216,
            ttl: 63,
            conntrack_tcp_loose: Some(false),
            ..kernel()
        }
    );
}

/// Linux 6.1 has no net.core.rmem_max in a child namespace: the daemon used to stop there.
#[test]
fn a_setting_the_namespace_lacks_takes_the_kernels_default() {
    let files: Vec<_> = ALL
        .iter()
        .copied()
        .filter(|(n, _)| !matches!(*n, "core.rmem_max" | "netfilter.nf_conntrack_tcp_loose"))
        .collect();
    let p = FakeProc::new("old", &files);
    let k = TcpSettings::read_from(&p.0).unwrap();
    assert_eq!(k.rmem_max, 6291456, "tcp_rmem's max is the larger one");
    assert_eq!(k.conntrack_tcp_loose, None);
    k.check().unwrap();
    let p = FakeProc::new("bare", &[("ipv4.tcp_syncookies", "1")]);
    let k = TcpSettings::read_from(&p.0).unwrap();
    assert_eq!(
        k,
        TcpSettings {
            ecn: true,
            conntrack_tcp_loose: None,
            ..kernel()
        }
    );
}

#[test]
fn ipv6_settings_of_the_interface() {
    let p = FakeProc::new(
        "v6",
        &[
            ("ipv6.conf.all.disable_ipv6", "0"),
            ("ipv6.conf.default.hop_limit", "64"),
            ("ipv6.conf.eth0.hop_limit", "42"),
            ("ipv6.conf.eth0.disable_ipv6", "0"),
            ("ipv6.conf.eth1.disable_ipv6", "1"),
        ],
    );
    let v = Ipv6::read_from(&p.0, "eth0").unwrap();
    assert_eq!(
        v,
        Ipv6 {
            enabled: true,
            hop_limit: 42
        }
    );
    let v = Ipv6::read_from(&p.0, "eth1").unwrap();
    assert_eq!(
        v,
        Ipv6 {
            enabled: false,
            hop_limit: 64
        }
    );
    let mut c = kernel().config(1500, false);
    v.apply(&mut c);
    assert_eq!(c.flags & flags::IPV6, 0);
    // No IPv6 at all (ipv6.disable=1): not protected, the kernel's default hop limit.
    let p = FakeProc::new("nov6", &[("ipv4.tcp_syncookies", "1")]);
    let v = Ipv6::read_from(&p.0, "eth0").unwrap();
    assert!(!v.enabled);
}

#[test]
fn tcp_syncookies_is_mandatory() {
    let files: Vec<_> = ALL
        .iter()
        .copied()
        .filter(|(n, _)| *n != "ipv4.tcp_syncookies")
        .collect();
    let p = FakeProc::new("nosyncookies", &files);
    let e = TcpSettings::read_from(&p.0).unwrap_err();
    assert!(matches!(e, SysctlError::NoSyncookies), "{e}");
}
