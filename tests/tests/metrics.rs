//! What admins read: Prometheus metrics from `syncookie run --metrics`, checked against
//! `syncookie stats --json`, and `syncookie stats --watch`.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use syncookie_common::stats::Counter;
use syncookie_tests::{
    daemon::{Daemon, bin},
    lab::Lab,
    netns::Netns,
    require_root,
};

const PORT: u16 = 8080;
const METRICS: &str = "127.0.0.1:9813";

fn scrape(ns: &Netns) -> String {
    let _in = ns.enter();
    let mut s = TcpStream::connect(METRICS).expect("metrics port");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    let (head, body) = r.split_once("\r\n\r\n").expect("HTTP response");
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    body.to_string()
}

fn stats_json(ns: &Netns, iface: &str) -> serde_json::Value {
    let out = ns.exec(&[bin().to_str().unwrap(), "stats", "--iface", iface, "--json"]);
    serde_json::from_str(&out).expect("stats --json")
}

#[test]
fn metrics_match_stats() {
    require_root!();
    let lab = Lab::new();
    let addr = lab.echo_server(lab.server_ip.into(), PORT);
    let _d = Daemon::start(
        &lab.server,
        &lab.server_if,
        &["--ports", &PORT.to_string(), "--metrics", METRICS],
    );
    for _ in 0..3 {
        lab.echo(addr, b"hi").expect("echo");
    }
    // The connections' closing segments still arrive after the echoes: compare a scrape and
    // `stats --json` once the counters have settled.
    let mut last = lab.counters().table();
    for _ in 0..20 {
        thread::sleep(Duration::from_millis(300));
        let now = lab.counters().table();
        if now == last {
            break;
        }
        last = now;
    }
    let body = scrape(&lab.server);
    let stats = stats_json(&lab.server, &lab.server_if);
    assert!(body.ends_with("# EOF\n"), "OpenMetrics text:\n{body}");
    assert!(
        body.contains(&format!(
            "syncookie_attached{{iface=\"{}\"}} 1",
            lab.server_if
        )),
        "{body}"
    );
    assert!(body.contains("syncookie_key_epoch "), "{body}");
    assert!(body.contains("syncookie_mode{mode=\"always\"} 1"), "{body}");
    assert!(
        body.contains("syncookie_mode{mode=\"monitor\"} 0"),
        "{body}"
    );
    assert!(body.contains("syncookie_engaged 1"), "{body}");
    for c in Counter::ALL {
        let line = format!("syncookie_packets_total{{reason=\"{}\"}} ", c.name());
        let v: u64 = body
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no {line} in\n{body}"))
            .parse()
            .unwrap();
        assert_eq!(v, stats[c.name()].as_u64().unwrap(), "{}", c.name());
    }
    assert_eq!(stats["handoff_ok"].as_u64(), Some(3));
    // No key material: tests/secrets.rs searches the metrics for the live keys themselves.
}

#[test]
fn stats_watch_prints_rates_every_second() {
    require_root!();
    let lab = Lab::new();
    let addr = lab.echo_server(lab.server_ip.into(), PORT);
    let _d = Daemon::start(&lab.server, &lab.server_if, &["--ports", &PORT.to_string()]);
    let mut child = Command::new("nsenter")
        .arg(format!("--net={}", lab.server.path()))
        .arg(bin())
        .args(["stats", "--iface", &lab.server_if, "--watch", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("stats --watch");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    for _ in 0..4 {
        lab.echo(addr, b"hi").expect("echo");
    }
    thread::sleep(Duration::from_millis(200));
    let second: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(first["per_sec"]["handoff_ok"], 0, "{first}");
    assert_eq!(second["total"]["handoff_ok"], 4, "{second}");
    assert_eq!(second["per_sec"]["handoff_ok"], 4, "{second}");
}
