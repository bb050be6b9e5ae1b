//! The daemon on real hosts: a stalled daemon, several network namespaces with the
//! same interface names, conntrack and stateful firewalls.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::{Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};
use syncookie::{bpf::pins::PinDir, keys::KeyMaps};
use syncookie_common::stats::Counter;
use syncookie_tests::{
    daemon::{Daemon, Unpin, command_in, pins, syncookie_in},
    endtoend,
    lab::Lab,
    netns::{Netns, unique},
    packets::{Accepted, serve_echo},
    require_root, wait_until,
};

const PORT: u16 = 8080;

/// An echo server on `ip:PORT` in `ns`.
fn echo_server(ns: &Netns, ip: Ipv4Addr) -> (SocketAddr, Accepted) {
    let l = {
        let _in = ns.enter();
        TcpListener::bind((ip, PORT)).expect("bind")
    };
    let addr = l.local_addr().unwrap();
    (addr, serve_echo(l, |_| {}))
}

/// Connects from the lab's client, sends `payload`, and checks the echo.
fn exchange(lab: &Lab, addr: SocketAddr, payload: &[u8]) {
    let _in = lab.client.enter();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(payload).unwrap();
    let mut back = vec![0u8; payload.len()];
    s.read_exact(&mut back).expect("echo");
    assert_eq!(back, payload);
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Removes pins a killed daemon left, even when the test fails.
/// Waits until the process is stopped (state `T` in /proc/PID/stat).
fn wait_stopped(pid: Pid) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("daemon stat");
        // The state follows the command name, which is in parentheses.
        if stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('T')
        {
            return;
        }
        assert!(Instant::now() < deadline, "the daemon did not stop: {stat}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// A daemon stopped (SIGSTOP, a frozen cgroup) for several rotation periods must rotate once on
/// resume, not once per missed period: a burst would expire the cookies it issued just before.
#[test]
fn stalled_daemon_rotates_once_on_resume() {
    require_root!();
    let mut lab = Lab::new();
    let (addr, _) = echo_server(&lab.server, lab.server_ip);
    let d = Daemon::start(
        &lab.server,
        &lab.server_if,
        &["--ports", &PORT.to_string(), "--rotate-secs", "1"],
    );
    let keys = KeyMaps::open(&pins(&lab.server, &lab.server_if)).expect("keys");
    let epoch = || keys.current_epoch().expect("epoch");

    d.signal(Signal::SIGSTOP);
    wait_stopped(d.pid().unwrap());
    let stalled_at = epoch();
    thread::sleep(Duration::from_millis(3500));
    assert_eq!(epoch(), stalled_at, "a stopped daemon rotated");

    // A handshake whose SYN-ACK the shield sends now, with the stalled epoch's key. Its bare ACK
    // is lost, so the first data segment, after the resume, is the one that must complete it.
    lab.drop_next_acks(1, PORT);
    let mut s = {
        let _in = lab.client.enter();
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect")
    };
    assert_eq!(lab.dropped_acks(), 1, "the bare ACK was not dropped");

    d.signal(Signal::SIGCONT);
    // The resumed daemon makes up for the missed rotations with one rotation (within a
    // period), not a burst: wait for it, then check the epoch after the handshake.
    assert!(
        wait_until(Duration::from_secs(3), || epoch() > stalled_at),
        "no rotation within 3 s of the resume (1 s rotations)"
    );
    let first = std::time::Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(b"after the stall").unwrap();
    let mut back = [0u8; 15];
    let echoed = s.read_exact(&mut back).is_ok() && &back == b"after the stall";
    let resumed_at = epoch();
    // One rotation for the stall, then one a period: never more than that by now.
    let periods = first.elapsed().as_secs();
    let c = lab.counters();
    assert!(
        resumed_at - stalled_at <= 1 + periods && echoed,
        "after a 3.5 s stall with 1 s rotations the key epoch went {stalled_at} -> {resumed_at} \
         (at most one rotation, and one per second after it, expected) and the handshake {}:\n{}",
        if echoed { "completed" } else { "failed" },
        c.table()
    );
    assert_eq!(
        (c.get(Counter::HandoffOk), c.get(Counter::AckExpired)),
        (1, 0)
    );
}

/// Renames the lab's server interface to `name` (down, rename, up: the address stays).
fn rename_server_if(lab: &mut Lab, name: &str) {
    let ns = &lab.server;
    ns.exec(&["ip", "link", "set", &lab.server_if, "down"]);
    ns.exec(&["ip", "link", "set", &lab.server_if, "name", name]);
    ns.exec(&["ip", "link", "set", name, "up"]);
    lab.server_if = name.into();
}

/// Files in a pin directory, sorted.
fn pinned(p: &PinDir) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(&p.dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Two namespaces (containers, say) each with an interface of the same name: each gets its own
/// shield, and neither command touches the other's.
#[test]
fn same_interface_name_in_two_namespaces() {
    require_root!();
    let name = unique("eth");
    let (mut a, mut b) = (Lab::new(), Lab::new());
    rename_server_if(&mut a, &name);
    rename_server_if(&mut b, &name);
    let ((addr_a, accepted_a), (addr_b, accepted_b)) = (
        echo_server(&a.server, a.server_ip),
        echo_server(&b.server, b.server_ip),
    );
    let (pins_a, pins_b) = (pins(&a.server, &name), pins(&b.server, &name));
    let _unpin_a = Unpin(pins_a.clone());
    let ports = ["--ports", "8080"];
    let mut da = Daemon::start(&a.server, &name, &ports);
    let mut db = Daemon::start(&b.server, &name, &ports);
    assert!(pins_a.exists() && pins_b.exists() && pins_a.dir != pins_b.dir);

    // Each namespace's commands see their own shield; a third namespace sees none.
    for (lab, p) in [(&a, &pins_a), (&b, &pins_b)] {
        let status = stdout(&syncookie_in(&lab.server, &["status", "--iface", &name]));
        assert!(status.contains(&p.dir.display().to_string()), "{status}");
    }
    let elsewhere = Netns::new(&unique("sco"));
    // (There, no interface has the name: that is what it says.)
    let out = syncookie_in(&elsewhere, &["status", "--iface", &name]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no interface named"),
        "{err}"
    );
    // A second run in one namespace is refused: the lock is per namespace, not global.
    let again = run_to_exit(&a.server, &name);
    assert!(
        !again.status.success()
            && String::from_utf8_lossy(&again.stderr).contains("is already active on"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    for i in 0..5u8 {
        exchange(&a, addr_a, &[i; 2000]);
        exchange(&b, addr_b, &[i; 2000]);
    }
    accepted_a.assert_exactly(5);
    accepted_b.assert_exactly(5);
    endtoend::handoffs_fit(&a.counters(), 5, endtoend::Handoffs::OnePerConnection).unwrap();
    endtoend::handoffs_fit(&b.counters(), 5, endtoend::Handoffs::OnePerConnection).unwrap();

    // A crashes; detaching it from its namespace leaves B's shield whole.
    let before_b = pinned(&pins_b);
    da.kill();
    let out = syncookie_in(&a.server, &["detach", "--iface", &name]);
    assert!(stdout(&out).contains("detached"), "{out:?}");
    assert!(!pins_a.exists(), "A's pins left");
    assert!(
        !pins_a.dir.parent().unwrap().exists(),
        "A's empty namespace directory left: {}",
        pins_a.dir.parent().unwrap().display()
    );
    let shown = a.server.exec(&["ip", "link", "show", &name]);
    assert!(!shown.contains("xdp"), "XDP left attached in A: {shown}");
    assert_eq!(pinned(&pins_b), before_b, "B's pins changed");
    let shown = b.server.exec(&["ip", "link", "show", &name]);
    assert!(
        shown.contains("prog/xdp"),
        "B lost its XDP program: {shown}"
    );
    for i in 0..5u8 {
        exchange(&b, addr_b, &[i; 2000]);
    }
    let c = b.counters();
    assert_eq!(c.get(Counter::SynackSent), 10, "{}", c.table());
    accepted_b.assert_exactly(10);
    endtoend::handoffs_fit(&c, 10, endtoend::Handoffs::OnePerConnection).unwrap();
    // And B stops cleanly, leaving no directory of its namespace either.
    assert!(db.stop());
    assert!(!pins_b.dir.parent().unwrap().exists());
    assert!(!pins_b.lock_file().exists());
}

/// `syncookie run --iface IFACE --ports 8080` in `ns`, expected to exit by itself: one that is
/// still running after a while (it attached) is stopped and the test fails.
fn run_to_exit(ns: &Netns, iface: &str) -> Output {
    let mut child = command_in(ns, &["run", "--iface", iface, "--ports", "8080"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn syncookie run");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let out = child.wait_with_output().expect("wait");
            panic!(
                "syncookie run kept running (it attached):\n{}{}",
                stdout(&out),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// The server's firewall: stateful, default drop, new connections to PORT accepted; the rule
/// counts what it accepts.
fn stateful_firewall(ns: &Netns) {
    let rules = format!(
        "table inet f {{
            chain in {{
                type filter hook input priority 0; policy drop;
                ct state established,related accept
                ct state invalid drop
                iifname \"lo\" accept
                tcp dport {PORT} ct state new counter accept
            }}
        }}"
    );
    let file = std::env::temp_dir().join(format!("{}.nft", unique("sc-fw")));
    std::fs::write(&file, rules).unwrap();
    ns.exec(&["nft", "-f", file.to_str().unwrap()]);
    let _ = std::fs::remove_file(&file);
}

/// Connections the firewall's `ct state new` rule accepted.
fn accepted_new(ns: &Netns) -> u64 {
    let rules = ns.exec(&["nft", "list", "chain", "inet", "f", "in"]);
    let line = rules
        .lines()
        .find(|l| l.contains("ct state new counter"))
        .unwrap_or_else(|| panic!("no counter rule in:\n{rules}"));
    let mut packets = line.split_whitespace().skip_while(|w| *w != "packets");
    packets.nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Conntrack first sees a shielded connection at its ACK; with tcp_loose=1 (the default) it
/// picks it up, and a stateful ruleset lets every connection through.
#[test]
fn stateful_firewall_with_tcp_loose_passes_shielded_connections() {
    require_root!();
    let lab = Lab::new();
    // The ct rules load nf_conntrack: its sysctls exist from then on.
    stateful_firewall(&lab.server);
    lab.server
        .sysctl("net.netfilter.nf_conntrack_tcp_loose", "1");
    let (addr, accepted) = echo_server(&lab.server, lab.server_ip);
    let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    for i in 0..10u8 {
        exchange(&lab, addr, &[i; 3000]);
    }
    let c = lab.counters();
    assert_eq!(c.get(Counter::SynackSent), 10, "{}", c.table());
    accepted.assert_exactly(10);
    endtoend::handoffs_fit(&c, 10, endtoend::Handoffs::OnePerConnection).unwrap();
    assert_eq!(lab.kernel_synacks(), 0, "the kernel answered SYNs itself");
    assert!(
        accepted_new(&lab.server) >= 10,
        "the firewall did not see the connections as new"
    );
}

/// With tcp_loose=0 conntrack calls every shielded connection invalid: `syncookie run` refuses
/// to start, says which sysctl to change, and leaves nothing behind.
#[test]
fn strict_conntrack_is_refused_before_attaching() {
    require_root!();
    let lab = Lab::new();
    stateful_firewall(&lab.server);
    lab.server
        .sysctl("net.netfilter.nf_conntrack_tcp_loose", "0");
    let p = pins(&lab.server, &lab.server_if);
    let _unpin = Unpin(p.clone());
    let out = run_to_exit(&lab.server, &lab.server_if);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("sysctl -w net.netfilter.nf_conntrack_tcp_loose=1")
            && err.contains("ct state new"),
        "the error must name the sysctl, the fix and the ruleset idiom: {err}"
    );
    assert!(!p.exists(), "pins left: {}", p.dir.display());
    assert!(
        !p.dir.parent().unwrap().exists(),
        "the namespace's pin directory was left"
    );
    assert!(
        !Path::new(p.lock_file()).exists(),
        "lock file left: {}",
        p.lock_file().display()
    );
    let shown = lab.server.exec(&["ip", "link", "show", &lab.server_if]);
    assert!(!shown.contains("xdp"), "XDP attached: {shown}");
}
