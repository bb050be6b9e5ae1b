//! Running as a service: the config file (flags override it; a bad one changes nothing on a
//! running shield), the interface going away and coming back, a restart that keeps the shield.

use std::{
    io::{Read, Write},
    net::TcpStream,
    thread,
    time::{Duration, Instant},
};

use syncookie_common::stats::Counter;
use syncookie_tests::{
    daemon::{Daemon, pins, syncookie_in},
    lab::Lab,
    netns::unique,
    require_root,
};

const PORT: u16 = 8080;

fn write_config(text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("{}.toml", unique("cfg")));
    std::fs::write(&p, text).unwrap();
    p
}

/// The file gives the ports and the mode; a flag overrides the file's mode. A second run with
/// a bad file names the key and leaves the running shield as it was.
#[test]
fn config_file_sets_run_and_a_bad_one_changes_nothing() {
    require_root!();
    let lab = Lab::new();
    let addr = lab.echo_server(lab.server_ip.into(), PORT);
    let good = write_config(&format!(
        "ports = [{PORT}]\nmode = \"monitor\"\nreport-secs = 0\n"
    ));
    let _d = Daemon::start(
        &lab.server,
        &lab.server_if,
        &["--config", good.to_str().unwrap(), "--mode", "always"],
    );
    let mode = syncookie_in(&lab.server, &["mode", "--iface", &lab.server_if]);
    assert_eq!(
        String::from_utf8_lossy(&mode.stdout).trim(),
        "always",
        "the flag wins"
    );
    assert!(lab.echo(addr, b"hello").is_ok());
    assert_eq!(
        lab.counters().get(Counter::SynackSent),
        1,
        "ports from the file"
    );

    for (text, named) in [
        ("ports = [8080]\nmode = \"fast\"\n", "fast"),
        ("port = [8080]\n", "unknown field `port`"),
        ("ports = [0]\n", "ports"),
    ] {
        let bad = write_config(text);
        let out = syncookie_in(
            &lab.server,
            &[
                "run",
                "--iface",
                &lab.server_if,
                "--config",
                bad.to_str().unwrap(),
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(named),
            "{text}: {err}"
        );
        std::fs::remove_file(bad).unwrap();
    }
    let mode = syncookie_in(&lab.server, &["mode", "--iface", &lab.server_if]);
    assert_eq!(
        String::from_utf8_lossy(&mode.stdout).trim(),
        "always",
        "unchanged"
    );
    assert!(lab.echo(addr, b"hello").is_ok());
    assert_eq!(
        lab.counters().get(Counter::SynackSent),
        2,
        "still protecting"
    );
    std::fs::remove_file(good).unwrap();
}

/// The interface is deleted and made again under the same name while the daemon runs: it says
/// so and attaches again; connections are protected again.
#[test]
fn interface_that_comes_back_is_attached_again() {
    require_root!();
    let mut lab = Lab::new();
    let addr = lab.echo_server(lab.server_ip.into(), PORT);
    let d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    assert!(lab.echo(addr, b"hello").is_ok());
    lab.recreate_wire();
    let again = format!("attached to {} again", lab.server_if);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !d.output.lock().unwrap().contains(&again) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    let before = lab.counters().get(Counter::SynackSent);
    assert!(
        lab.echo(addr, b"hello").is_ok(),
        "{}",
        d.output.lock().unwrap()
    );
    let c = lab.counters();
    let log = d.output.lock().unwrap().clone();
    assert_eq!(
        c.get(Counter::SynackSent),
        before + 1,
        "the shield answers on the new interface: {log}\n{}",
        c.table()
    );
    // The new veth strips VLAN tags, as the first did: the start's checks ran again (their note
    // is logged before each attach), so a VLAN device there would have been refused.
    let note = format!("{} strips VLAN tags before XDP sees them", lab.server_if);
    assert_eq!(log.matches(&note).count(), 2, "{log}");
}

/// `--on-exit keep` (the service's restart): the shield stays attached with its keys after the
/// daemon ends, and a handshake spanning the restart completes.
#[test]
fn restart_with_on_exit_keep_loses_no_handshake() {
    require_root!();
    let mut lab = Lab::new();
    let addr = lab.echo_server(lab.server_ip.into(), PORT);
    let args = ["--ports", "8080", "--on-exit", "keep"];
    let mut d = Daemon::start(&lab.server, &lab.server_if, &args);
    lab.drop_next_acks(1, PORT);
    let s = {
        let _in = lab.client.enter();
        TcpStream::connect(addr).expect("connect")
    };
    assert!(d.stop(), "the daemon ends on SIGTERM");
    assert!(pins(&lab.server, &lab.server_if).exists(), "kept");
    let _d2 = Daemon::start(&lab.server, &lab.server_if, &args);
    let _ = &mut d;
    let mut s = s;
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(b"hi").unwrap();
    let mut b = [0u8; 2];
    s.read_exact(&mut b)
        .expect("the handshake begun before the restart completes after it");
    let mut d2 = _d2;
    assert!(d2.stop());
    let out = syncookie_in(&lab.server, &["detach", "--iface", &lab.server_if]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !pins(&lab.server, &lab.server_if).exists(),
        "detach removes what keep left"
    );
}
