//! The `syncookie` binary's first-contact errors: for each mistake an admin can make,
//! the exit status and the message, said once, with what to do. Every test has its own
//! namespace and interface names (the lock files under /run/syncookie are per namespace and
//! interface name: `PinDir::lock_file`).

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use aya::{
    Ebpf,
    maps::MapData,
    programs::{Xdp, XdpMode},
};
use syncookie::{
    bpf::pins::{MapLayout, NetnsId, PinDir, ensure_bpffs, expected_layouts},
    host::vlan::{Stripping, stripping},
};
use syncookie_common::{
    lab::{map, prog},
    maps::{KFUNC_ASSIGN_REQSK, MAP_CONFIG},
};
use syncookie_tests::{
    daemon::{Daemon, bin},
    netns::{Netns, unique, with_veth},
    require_root,
};

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `prefix... syncookie args...` in `ns` (network namespace only).
fn syncookie_with(ns: &Netns, prefix: &[&str], args: &[&str]) -> Out {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.path()))
        .args(prefix)
        .arg(bin())
        .args(args)
        .output()
        .expect("run syncookie");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn syncookie(ns: &Netns, args: &[&str]) -> Out {
    syncookie_with(ns, &[], args)
}

/// The command failed with status 1 and printed exactly `syncookie: <msg>` and nothing else.
fn assert_fails_with(o: &Out, msg: &str) {
    eprint!("{}", o.stderr);
    assert_eq!(
        o.stderr,
        format!("syncookie: {msg}\n"),
        "stdout:\n{}",
        o.stdout
    );
    assert_eq!(o.code, Some(1), "{}", o.stderr);
}

/// `n` appears exactly once in `hay`.
fn once(hay: &str, n: &str) {
    assert_eq!(hay.matches(n).count(), 1, "{n:?} once in:\n{hay}");
}

/// A namespace with a bridge: an interface whose driver has no native XDP.
fn with_bridge(tag: &str) -> (Netns, String) {
    let name = unique(tag);
    let ns = Netns::new(&name);
    ns.exec(&["ip", "link", "add", &name, "type", "bridge"]);
    ns.exec(&["ip", "link", "set", &name, "up"]);
    (ns, name)
}

/// No trace of the shield: no XDP program (but `other`'s, when given), no pins, no lock file.
fn assert_left_only(ns: &Netns, iface: &str, other: Option<u32>) {
    let shown = ns.exec(&["ip", "link", "show", iface]);
    match other {
        None => assert!(!shown.contains("prog/xdp"), "XDP left attached: {shown}"),
        Some(id) => assert!(
            shown.contains(&format!("prog/xdp id {id} ")),
            "the other program was replaced: {shown}"
        ),
    }
    let pins = syncookie_tests::daemon::pins(ns, iface);
    assert!(!pins.exists(), "pins left behind");
    let lock = pins.lock_file();
    assert!(!lock.exists(), "lock file left: {}", lock.display());
}

fn assert_nothing_left(ns: &Netns, iface: &str) {
    assert_left_only(ns, iface, None);
}

#[test]
fn ports_outside_1_to_65535_are_refused_at_parsing() {
    require_root!();
    let (ns, iface) = with_bridge("cp");
    for (ports, bad) in [("0", "0"), ("80,65536", "65536"), ("http", "http")] {
        let o = syncookie(
            &ns,
            &[
                "run",
                "--iface",
                &iface,
                "--ports",
                ports,
                "--xdp-mode",
                "skb",
            ],
        );
        eprint!("{}", o.stderr);
        assert_eq!(o.code, Some(2), "{}", o.stderr);
        once(
            &o.stderr,
            &format!(
                "error: invalid value '{bad}' for '--ports <PORTS>': not a TCP port (1-65535)"
            ),
        );
        assert!(!o.stdout.contains("attached"), "{}", o.stdout);
    }
    assert_nothing_left(&ns, &iface);
}

#[test]
fn normal_user_is_told_to_be_root() {
    require_root!();
    let (ns, iface) = with_bridge("cu");
    // Mounted, so that CAP_SYS_ADMIN is not also needed to mount one.
    ensure_bpffs(Path::new("/sys/fs/bpf")).unwrap();
    // The binary must be reachable by `nobody`.
    let mut p = bin();
    while p.pop() {
        if p.as_os_str().is_empty() {
            break;
        }
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert!(
            mode & 0o001 != 0,
            "{} is not searchable by others",
            p.display()
        );
    }
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
    ];
    let o = syncookie_with(&ns, &nobody, &["run", "--iface", &iface, "--ports", "80"]);
    assert_fails_with(
        &o,
        "`run` needs root: this process lacks CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON (or \
         CAP_SYS_ADMIN, which covers them); run it as root (sudo syncookie run ...)",
    );
    for cmd in ["status", "stats", "rotate", "detach"] {
        let o = syncookie_with(&ns, &nobody, &[cmd, "--iface", &iface]);
        assert_fails_with(
            &o,
            &format!(
                "`{cmd}` needs root: the shield's pins and lock files belong to root; run it as \
                 root (sudo syncookie {cmd} ...)"
            ),
        );
    }
    // Root without some capabilities (a container, a systemd unit): the missing ones named.
    let o = syncookie_with(
        &ns,
        &["setpriv", "--bounding-set=-bpf,-perfmon,-sys_admin", "--"],
        &["run", "--iface", &iface, "--ports", "80"],
    );
    assert_fails_with(
        &o,
        "`run` needs root: this process lacks CAP_BPF, CAP_PERFMON (or CAP_SYS_ADMIN, which \
         covers them); run it as root (sudo syncookie run ...)",
    );
    assert_nothing_left(&ns, &iface);
}

#[test]
fn unknown_interface_is_named() {
    require_root!();
    let ns = Netns::new(&unique("cn"));
    let iface = unique("nosuch");
    let msg = format!("no interface named {iface} in this network namespace (see `ip link`)");
    let o = syncookie(&ns, &["run", "--iface", &iface, "--ports", "80"]);
    assert_fails_with(&o, &msg);
    for cmd in ["status", "stats", "rotate", "detach"] {
        assert_fails_with(&syncookie(&ns, &[cmd, "--iface", &iface]), &msg);
    }
    // The library's own path (`<netns-inode>-<iface>.lock`), not a name typed here.
    let pins = syncookie_tests::daemon::pins(&ns, &iface);
    let lock = pins.lock_file();
    assert!(!lock.exists(), "lock file made: {}", lock.display());
}

#[test]
fn no_native_xdp_suggests_skb_mode() {
    require_root!();
    let (ns, iface) = with_bridge("cx");
    ns.sysctl("net.ipv4.tcp_syncookies", "1");
    let o = syncookie(&ns, &["run", "--iface", &iface, "--ports", "80"]);
    assert_fails_with(
        &o,
        &format!(
            "{iface} has no native XDP (its driver does not support it): run with --xdp-mode skb \
             (generic XDP, slower)"
        ),
    );
    assert_nothing_left(&ns, &iface);
    // The advice works.
    let mut d = Daemon::start(&ns, &iface, &["--ports", "80", "--xdp-mode", "skb"]);
    assert!(d.stop());
    assert_nothing_left(&ns, &iface);
}

/// `lab_pass` loaded (and attached by the caller).
fn lab_pass() -> Ebpf {
    let mut ebpf = Ebpf::load(syncookie_tests::LAB_OBJECT).expect("lab object");
    let p: &mut Xdp = ebpf.program_mut(prog::PASS).unwrap().try_into().unwrap();
    p.load().expect("load lab_pass");
    ebpf
}

fn prog_id(ebpf: &Ebpf) -> u32 {
    let p: &Xdp = ebpf.program(prog::PASS).unwrap().try_into().unwrap();
    p.info().unwrap().id()
}

#[test]
fn another_xdp_link_is_named_with_its_link() {
    require_root!();
    let (ns, iface) = with_veth("cl");
    let mut ebpf = lab_pass();
    {
        let _in = ns.enter();
        let p: &mut Xdp = ebpf.program_mut(prog::PASS).unwrap().try_into().unwrap();
        p.attach(&iface, XdpMode::Driver).expect("attach lab_pass");
    }
    let id = prog_id(&ebpf);
    for mode in ["native", "skb"] {
        let o = syncookie(
            &ns,
            &[
                "run",
                "--iface",
                &iface,
                "--ports",
                "80",
                "--xdp-mode",
                mode,
            ],
        );
        let e = &o.stderr;
        eprint!("{e}");
        assert_eq!(o.code, Some(1), "{e}");
        let head = format!(
            "syncookie: {iface} already has an XDP program: id {id} `lab_pass`, native mode, \
             held by BPF link "
        );
        assert!(e.starts_with(&head), "{e}");
        once(e, "shares the XDP hook only through libxdp's dispatcher");
        once(e, "`xdp-loader load ");
        once(e, "`bpftool link detach id ");
        assert!(!e.contains("--xdp-mode"), "wrong hint: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        assert_left_only(&ns, &iface, Some(id));
    }
}

#[test]
fn another_xdp_program_is_named_with_how_to_remove_it() {
    require_root!();
    let (ns, iface) = with_veth("ce");
    let mut ebpf = lab_pass();
    let p: &mut Xdp = ebpf.program_mut(prog::PASS).unwrap().try_into().unwrap();
    let _attached = ns.attach_generic(&iface, p, "pass");
    let id = prog_id(&ebpf);
    let o = syncookie(&ns, &["run", "--iface", &iface, "--ports", "80"]);
    assert_fails_with(
        &o,
        &format!(
            "{iface} already has an XDP program: id {id} `lab_pass`, generic (skb) mode. The \
             shield shares the XDP hook only through libxdp's dispatcher: load that program with \
             `xdp-loader load {iface} PROG.o` instead, or remove it with `ip link set dev {iface} \
             xdpgeneric off`"
        ),
    );
    assert_left_only(&ns, &iface, Some(id));
    // The advice works.
    ns.exec(&["ip", "link", "set", "dev", &iface, "xdpgeneric", "off"]);
    let mut d = Daemon::start(&ns, &iface, &["--ports", "80"]);
    assert!(d.stop());
}

/// A pin directory whose SC_CONFIG is not this version's (a map of another layout pinned there).
#[test]
fn pins_of_another_version_are_refused_with_the_fix() {
    require_root!();
    let (ns, iface) = with_veth("cv");
    ensure_bpffs(Path::new("/sys/fs/bpf")).unwrap();
    let root = PathBuf::from(format!("/sys/fs/bpf/{}", unique("scroot")));
    let pins = PinDir::in_netns(
        &root,
        NetnsId::of(ns.path().as_ref()).expect("namespace id"),
        &iface,
    );
    struct Cleanup(PinDir);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = self.0.remove();
        }
    }
    let _cleanup = Cleanup(pins.clone());
    std::fs::create_dir_all(&pins.dir).unwrap();
    let ebpf = Ebpf::load(syncookie_tests::LAB_OBJECT).expect("lab object");
    let other: &MapData = match ebpf.map(map::SYNACKS).unwrap() {
        aya::maps::Map::Array(m) => m,
        _ => panic!("LAB_SYNACKS is an array"),
    };
    other.pin(pins.map(MAP_CONFIG)).unwrap();
    let found = aya::maps::MapInfo::from_pin(pins.map(MAP_CONFIG)).unwrap();
    let found = MapLayout {
        key_size: found.key_size(),
        value_size: found.value_size(),
        max_entries: found.max_entries(),
    };
    let expected = expected_layouts()
        .into_iter()
        .find(|(n, _)| n == MAP_CONFIG)
        .unwrap()
        .1;
    assert_ne!(found, expected);
    let dir = pins.dir.display();
    let msg = format!(
        "pins at {dir} were made by another syncookie version ({MAP_CONFIG}: {found}, this \
         version expects {expected}): run `syncookie detach --iface {iface}` (or remove {dir})"
    );
    let root_arg = root.to_str().unwrap();
    let o = syncookie(
        &ns,
        &[
            "run",
            "--iface",
            &iface,
            "--ports",
            "80",
            "--pin-root",
            root_arg,
        ],
    );
    assert_fails_with(&o, &msg);
    for cmd in ["status", "stats", "rotate"] {
        let o = syncookie(&ns, &[cmd, "--iface", &iface, "--pin-root", root_arg]);
        assert_fails_with(&o, &msg);
    }
    // The fix it names works.
    let o = syncookie(&ns, &["detach", "--iface", &iface, "--pin-root", root_arg]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(!pins.exists());
}

/// A minimal valid BTF blob with no types: a kernel whose BTF lacks the kfunc.
fn empty_btf() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0xeb9fu16.to_le_bytes()); // magic
    b.extend_from_slice(&[1, 0]); // version, flags
    for v in [24u32, 0, 0, 0, 1] {
        // hdr_len, type_off, type_len, str_off, str_len
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.push(0);
    b
}

/// `syncookie run` in a private mount namespace where `setup` (a shell line) changed
/// /sys/kernel/btf first.
fn run_with_btf(ns: &Netns, iface: &str, setup: &str) -> Out {
    let script = format!("{setup} && exec \"$0\" \"$@\"");
    syncookie_with(
        ns,
        &[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ],
        &[
            "run",
            "--iface",
            iface,
            "--ports",
            "80",
            "--xdp-mode",
            "skb",
            // Full mode asked for: on its own the daemon would fall back to the kernel's
            // cookies where the kfunc is missing (and run).
            "--cookies",
            "own",
        ],
    )
}

#[test]
fn kernel_without_btf_is_named() {
    require_root!();
    let (ns, iface) = with_bridge("cb");
    let o = run_with_btf(&ns, &iface, "mount -t tmpfs none /sys/kernel/btf");
    let release = nix::sys::utsname::uname().expect("uname");
    let release = release.release().to_string_lossy();
    assert_fails_with(
        &o,
        &format!(
            "not supported: kernel {release} has no BTF (/sys/kernel/btf/vmlinux): the kfuncs \
             are found there; use a kernel built with CONFIG_DEBUG_INFO_BTF=y"
        ),
    );
    assert_nothing_left(&ns, &iface);
}

#[test]
fn kernel_without_the_kfunc_names_its_version() {
    require_root!();
    let (ns, iface) = with_bridge("ck");
    let btf = std::env::temp_dir().join(format!("{}.btf", unique("empty")));
    std::fs::write(&btf, empty_btf()).unwrap();
    let o = run_with_btf(
        &ns,
        &iface,
        &format!("mount --bind {} /sys/kernel/btf/vmlinux", btf.display()),
    );
    let _ = std::fs::remove_file(&btf);
    let release = nix::sys::utsname::uname().unwrap();
    let release = release.release().to_string_lossy();
    assert_fails_with(
        &o,
        &format!("not supported: kernel {release} has no {KFUNC_ASSIGN_REQSK} (Linux 6.9+)"),
    );
    assert_nothing_left(&ns, &iface);
}

#[test]
fn second_run_on_an_interface_is_told_which_holds_it() {
    require_root!();
    let (ns, iface) = with_veth("cr");
    let mut d = Daemon::start(&ns, &iface, &["--ports", "80"]);
    let o = syncookie(&ns, &["run", "--iface", &iface, "--ports", "80"]);
    let lock = syncookie_tests::daemon::pins(&ns, &iface);
    let lock = lock.lock_file().display();
    assert_fails_with(
        &o,
        &format!(
            "`syncookie run` is already active on {iface} (it holds {lock}): stop it first \
             (SIGTERM), or use `syncookie status --iface {iface}`"
        ),
    );
    let o = syncookie(&ns, &["detach", "--iface", &iface]);
    assert_eq!(o.code, Some(1));
    once(&o.stderr, "is already active");
    assert!(d.stop());
    assert_nothing_left(&ns, &iface);
}

#[test]
fn commands_on_an_interface_without_a_shield_say_so() {
    require_root!();
    let (ns, iface) = with_bridge("ca");
    let dir = syncookie_tests::daemon::pins(&ns, &iface)
        .dir
        .display()
        .to_string();
    for cmd in ["stats", "rotate"] {
        assert_fails_with(
            &syncookie(&ns, &[cmd, "--iface", &iface]),
            &format!(
                "the shield is not attached to {iface} in this network namespace (no {dir}): \
                 start it with `syncookie run --iface {iface} --ports ...`"
            ),
        );
    }
    let o = syncookie(&ns, &["status", "--iface", &iface]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    once(&o.stdout, "not attached");
    let o = syncookie(&ns, &["detach", "--iface", &iface]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(o.stdout, format!("{iface}: not attached\n"));
    assert_nothing_left(&ns, &iface);
}

/// What `ethtool -k` shows of the interface's rx VLAN stripping.
fn ethtool_stripping(ns: &Netns, iface: &str) -> Stripping {
    let shown = ns.exec(&["ethtool", "-k", iface]);
    let on = |name: &str| {
        let line = shown
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
            .unwrap_or_else(|| panic!("no {name} in `ethtool -k`:\n{shown}"));
        line.starts_with("on")
    };
    Stripping {
        ctag: on("rx-vlan-offload"),
        stag: on("rx-vlan-stag-hw-parse"),
    }
}

/// The stripping the daemon reads is what ethtool shows, as it is switched off. With stripping
/// on but no VLAN device (this kernel has no 8021q: the refusal itself is checked in the kernel
/// matrix, tests/src/bin/smoke.rs) the daemon attaches and notes it, with the fix; with
/// stripping off it says nothing of it.
#[test]
fn vlan_stripping_is_read_and_without_vlan_devices_only_noted() {
    require_root!();
    let (ns, iface) = with_veth("cs");
    let read = || {
        let _in = ns.enter();
        stripping(&iface).expect("read the features")
    };
    // veth's default, as many NICs'.
    let both = Stripping {
        ctag: true,
        stag: true,
    };
    assert_eq!(ethtool_stripping(&ns, &iface), both);
    assert_eq!(read(), both);
    let mut d = Daemon::start(&ns, &iface, &["--ports", "80"]);
    assert!(d.stop());
    let note = format!(
        "{iface} strips VLAN tags before XDP sees them (rx-vlan-offload and \
         rx-vlan-stag-hw-parse on): a tagged frame would look untagged to the shield; {iface} has \
         no VLAN device, so none is expected. Before adding one, turn stripping off: `ethtool -K \
         {iface} rxvlan off rx-vlan-stag-hw-parse off`"
    );
    // The log line is on stderr, read by a thread that may lag the daemon's exit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !d.output.lock().unwrap().contains(&note) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    once(&d.output.lock().unwrap(), &note);
    assert_nothing_left(&ns, &iface);

    ns.exec(&["ethtool", "-K", &iface, "rxvlan", "off"]);
    let stag = Stripping {
        ctag: false,
        stag: true,
    };
    assert_eq!(ethtool_stripping(&ns, &iface), stag);
    assert_eq!(read(), stag);
    ns.exec(&["ethtool", "-K", &iface, "rx-vlan-stag-hw-parse", "off"]);
    assert_eq!(ethtool_stripping(&ns, &iface), Stripping::default());
    assert_eq!(read(), Stripping::default());
    let mut d = Daemon::start(&ns, &iface, &["--ports", "80"]);
    assert!(d.stop());
    let out = d.output.lock().unwrap().clone();
    assert!(!out.contains("strips VLAN tags"), "{out}");
    assert_nothing_left(&ns, &iface);
}
