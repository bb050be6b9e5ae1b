//! Inside the VM: the virtio NIC moved into a namespace of its own (so that the test helpers'
//! namespace-keyed pins and commands apply as on the host), an echo server on the protected port
//! that records each accepted socket's TCP_INFO, and the control port: one command per
//! connection, answered `ok`/`err` and a body.

use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    panic::{AssertUnwindSafe, catch_unwind},
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use syncookie_tests::{
    daemon::{Daemon, syncookie_in},
    negotiated::End,
    netns::{Netns, sh},
    packets::serve_echo,
    panic_message,
};

use super::{CONTROL, GUEST_IP, HOST_IP, PORT};

/// What the echo server saw: each accepted connection's end, in order.
type Served = Arc<Mutex<Vec<End>>>;

pub fn run() -> ExitCode {
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("virtio: guest FAIL: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve() -> Result<(), String> {
    let nic = virtio_nic()?;
    let ns = Netns::new("guest");
    sh(&["ip", "link", "set", &nic, "netns", &ns.name]);
    let ip = format!("{GUEST_IP}/24");
    ns.exec(&["ip", "addr", "add", &ip, "dev", &nic]);
    ns.exec(&["ip", "link", "set", &nic, "up"]);
    // A way back to the flood's spoofed sources, as a real host's default route gives: the
    // kernel's own SYN-ACKs (kernel mode's refreshes) must leave, to be counted by the host.
    ns.exec(&["ip", "route", "add", "default", "via", &HOST_IP.to_string()]);
    ns.sysctl("net.ipv4.tcp_syncookies", "1");
    let _in = ns.enter();
    let served = Served::default();
    let echo = TcpListener::bind((GUEST_IP, PORT)).map_err(|e| format!("bind {PORT}: {e}"))?;
    let s = served.clone();
    let accepted = serve_echo(echo, move |stream| s.lock().unwrap().push(End::of(stream)));
    let control = TcpListener::bind((GUEST_IP, CONTROL)).map_err(|e| e.to_string())?;
    println!("virtio: guest ready: {nic} at {GUEST_IP}, control port {CONTROL}");
    let mut daemon = None;
    for conn in control.incoming() {
        let Ok(mut conn) = conn else { continue };
        let mut line = String::new();
        let _ = BufReader::new(&conn).read_line(&mut line);
        let words: Vec<&str> = line.split_whitespace().collect();
        if words == ["poweroff"] {
            let _ = conn.write_all(b"ok\n");
            return Ok(());
        }
        // A helper's panic fails the command, not the guest.
        let answer = catch_unwind(AssertUnwindSafe(|| match words.as_slice() {
            ["attach", args @ ..] => attach(&ns, &nic, args, &mut daemon),
            ["detach"] => detach(&ns, &nic, &mut daemon),
            ["stats"] => stats(&ns, &nic),
            ["log"] => Ok(daemon
                .as_ref()
                .map(|d: &Daemon| d.output.lock().unwrap().clone())
                .unwrap_or_default()),
            ["served"] => Ok(served_json(accepted.count(), &served)),
            ["nic"] => Ok(nic_facts(&ns, &nic)),
            _ => Err(format!("unknown command {line:?}")),
        }))
        .unwrap_or_else(|p| Err(panic_message(p.as_ref())));
        reply(&mut conn, answer);
    }
    Err("the control port closed".into())
}

fn reply(conn: &mut TcpStream, answer: Result<String, String>) {
    let text = match answer {
        Ok(body) => format!("ok\n{body}"),
        Err(why) => format!("err\n{why}"),
    };
    let _ = conn.write_all(text.as_bytes());
}

/// The interface virtio_net made (waiting for its probe, which follows the module's load).
fn virtio_nic() -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for e in std::fs::read_dir("/sys/class/net").map_err(|e| e.to_string())? {
            let name = e.map_err(|e| e.to_string())?.file_name();
            let name = name.to_string_lossy();
            let driver = std::fs::read_link(format!("/sys/class/net/{name}/device/driver"));
            if driver.is_ok_and(|d| d.ends_with("virtio_net")) {
                return Ok(name.into_owned());
            }
        }
        if Instant::now() > deadline {
            return Err("no virtio_net interface within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn attach(
    ns: &Netns,
    nic: &str,
    args: &[&str],
    daemon: &mut Option<Daemon>,
) -> Result<String, String> {
    if daemon.is_some() {
        return Err("attached already".into());
    }
    let d = Daemon::try_start(ns, nic, args)?;
    let out = d.output.lock().unwrap().clone();
    *daemon = Some(d);
    Ok(format!("{}\n{out}", link(ns, nic)))
}

/// Stops the daemon (SIGTERM): `ok` with what the link shows after, or why the stop was not
/// clean (it died, failed to exit, or logged an error: the test helper's own judgement).
fn detach(ns: &Netns, nic: &str, daemon: &mut Option<Daemon>) -> Result<String, String> {
    let Some(d) = daemon.take() else {
        return Err("not attached".into());
    };
    let out = d.output.lock().unwrap().clone();
    catch_unwind(AssertUnwindSafe(|| drop(d)))
        .map_err(|p| format!("{}\n{out}", panic_message(p.as_ref())))?;
    Ok(link(ns, nic))
}

/// `ip -d link show`: iproute2's by its path (busybox's nsenter would run its own `ip`, which
/// knows no `-d`).
fn link(ns: &Netns, nic: &str) -> String {
    ns.try_exec(&["/usr/sbin/ip", "-d", "link", "show", "dev", nic])
        .unwrap_or_else(|e| e)
}

fn stats(ns: &Netns, nic: &str) -> Result<String, String> {
    let out = syncookie_in(ns, &["stats", "--iface", nic, "--json"]);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn served_json(accepted: u64, served: &Served) -> String {
    let ends: Vec<serde_json::Value> = served
        .lock()
        .unwrap()
        .iter()
        .map(|e| serde_json::json!([e.options, e.snd_wscale, e.rcv_wscale]))
        .collect();
    serde_json::json!({ "accepted": accepted, "ends": ends }).to_string()
}

/// The driver, its queues and the receive offloads XDP cares about, as ethtool shows them.
fn nic_facts(ns: &Netns, nic: &str) -> String {
    let run = |args: &[&str]| ns.try_exec(args).unwrap_or_else(|e| e);
    let driver = run(&["ethtool", "-i", nic]);
    let driver = driver.lines().next().unwrap_or_default().to_string();
    let channels = run(&["ethtool", "-l", nic]);
    // "Combined: N" appears twice: the maximum, then the current count.
    let combined: Vec<&str> = channels
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Combined:"))
        .map(str::trim)
        .collect();
    let features = run(&["ethtool", "-k", nic]);
    let offloads: Vec<&str> = features
        .lines()
        .map(str::trim)
        .filter(|l| {
            ["large-receive-offload", "rx-gro-hw", "rx-checksumming"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .collect();
    // virtio_net says when XDP_TX has no queue of its own per CPU ("... slower locked tx mode").
    let dmesg = run(&["dmesg"]);
    let xdp = dmesg
        .lines()
        .filter(|l| l.contains("XDP") && l.contains("virtio"))
        .map(|l| l.split_once("] ").map_or(l, |(_, m)| m).trim())
        .next_back()
        .map(|l| format!("; driver: {l}"))
        .unwrap_or_default();
    format!(
        "{driver}; queues {} of {} max; {}{xdp}",
        combined.get(1).unwrap_or(&"?"),
        combined.first().unwrap_or(&"?"),
        offloads.join(", ")
    )
}
