//! Keys never appear in what admins read (the README's promise): the live keys, read from the
//! pinned key map, are searched for in every form a leak could take (hex in both byte orders,
//! decimal, byte lists) in the daemon's trace log, `status`, `stats`, `stats --json`, the
//! metrics, `rotate`'s output and the errors of failing commands, a fleet master key in the
//! errors about its file.

use std::{io::Read, io::Write, net::TcpStream, os::unix::fs::PermissionsExt};

use syncookie::bpf::pinned::PinnedMaps;
use syncookie_common::maps::KEYS_LEN;
use syncookie_tests::{
    daemon::{Daemon, pins, syncookie_in},
    lab::Lab,
    netns::unique,
    require_root,
};

const PORT: u16 = 8080;
const METRICS: &str = "127.0.0.1:9814";

/// The forms `bytes` (a key word or a whole key) would take in a leak: hex (lower, upper) and
/// decimal of the bytes read in either byte order, and their Debug byte lists (decimal, hex).
fn needles(bytes: &[u8]) -> Vec<String> {
    let mut v = Vec::new();
    let mut rev = bytes.to_vec();
    rev.reverse();
    for b in [bytes, &rev[..]] {
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        v.push(hex.to_uppercase());
        v.push(hex);
        // Without the brackets: the word may sit inside a longer list (a whole key's bytes).
        let list = |f: &dyn Fn(&u8) -> String| b.iter().map(f).collect::<Vec<_>>().join(", ");
        v.push(list(&|x| x.to_string()));
        v.push(list(&|x| format!("{x:#04x}")));
        if let Ok(w) = <[u8; 8]>::try_from(b) {
            v.push(u64::from_be_bytes(w).to_string());
            v.push(i64::from_be_bytes(w).to_string());
        }
    }
    v
}

/// Every needle of every live key word (k0, k1) in the pinned key map.
fn live_key_needles(lab: &Lab) -> Vec<String> {
    let pins = pins(&lab.server, &lab.server_if);
    let keys = PinnedMaps::new(&pins).keys().expect("key map");
    let mut v = Vec::new();
    for i in 0..KEYS_LEN {
        let k = keys.get(&i, 0).unwrap();
        if k.epoch == 0 {
            continue;
        }
        assert!(k.k0 != 0 && k.k1 != 0, "slot {i} holds a zero key word");
        for w in [k.k0, k.k1] {
            v.extend(needles(&w.to_be_bytes()));
        }
    }
    assert!(!v.is_empty(), "no live key in {}", pins.dir.display());
    v
}

fn found<'a>(text: &str, needles: &'a [String]) -> Option<&'a String> {
    needles.iter().find(|n| text.contains(n.as_str()))
}

/// Panics naming the first needle found in `what`.
fn assert_clean(what: &str, text: &str, needles: &[String]) {
    if let Some(n) = found(text, needles) {
        panic!("key material ({n}) in {what}:\n{text}");
    }
}

fn run_out(o: std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn scrape(lab: &Lab) -> String {
    let _in = lab.server.enter();
    let mut s = TcpStream::connect(METRICS).expect("metrics port");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    r
}

#[test]
fn keys_appear_in_no_log_output_error_or_metric() {
    require_root!();
    let lab = Lab::new();
    let addr = lab.echo_server(lab.server_ip.into(), PORT);
    let iface = lab.server_if.as_str();
    let mut d = Daemon::start_with_log(
        &lab.server,
        iface,
        &["--ports", &PORT.to_string(), "--metrics", METRICS],
        "trace",
    );
    let mut keys = live_key_needles(&lab);
    let mut outputs = Vec::new();
    for i in 0..3u8 {
        lab.echo(addr, &[i; 100]).expect("echo");
    }
    outputs.push((
        "rotate",
        run_out(syncookie_in(&lab.server, &["rotate", "--iface", iface])),
    ));
    keys.extend(live_key_needles(&lab));
    lab.echo(addr, b"after the rotation").expect("echo");
    for args in [
        &["status", "--iface", iface][..],
        &["stats", "--iface", iface],
        &["stats", "--iface", iface, "--json"],
        // Failing commands: a second run on the same interface, a bad mode, an unknown one.
        &["run", "--iface", iface, "--ports", "8080"],
        &["mode", "nosuch", "--iface", iface],
        &["rotate", "--iface", "nosuch0"],
    ] {
        outputs.push((args[0], run_out(syncookie_in(&lab.server, args))));
    }
    outputs.push(("the metrics", scrape(&lab)));
    assert!(d.stop(), "the daemon stops cleanly");
    let log = d.output.lock().unwrap().clone();
    assert!(
        log.contains(" DEBUG ") || log.contains(" TRACE "),
        "the daemon logged nothing below info:\n{log}"
    );
    outputs.push(("the daemon's trace log", log));
    for (what, text) in &outputs {
        assert_clean(what, text, &keys);
    }
    // The positive control: each form of a live key word is found when it is there.
    for n in &keys {
        assert!(found(&format!("key {n}."), &keys).is_some(), "{n} missed");
    }

    // A fleet master key: the errors about its file (readable by others, too short) name the
    // file and the fix, never its bytes.
    let dir = std::env::temp_dir().join(unique("secrets"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("master.key");
    let master: [u8; 32] = rand::random();
    let mut master_needles = needles_of_words(&master);
    master_needles.extend(needles(&master));
    for (mode, bytes) in [(0o644, &master[..]), (0o600, &master[..8])] {
        std::fs::write(&file, bytes).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        let o = syncookie_in(
            &lab.server,
            &[
                "run",
                "--iface",
                iface,
                "--ports",
                "8080",
                "--master-key-file",
                file.to_str().unwrap(),
            ],
        );
        assert!(!o.status.success(), "a bad master key file was accepted");
        assert_clean("a master key file's error", &run_out(o), &master_needles);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// [`needles`] of each 8-byte word of `bytes`.
fn needles_of_words(bytes: &[u8]) -> Vec<String> {
    bytes.chunks(8).flat_map(needles).collect()
}
