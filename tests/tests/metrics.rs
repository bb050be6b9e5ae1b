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
    let mut next = || -> serde_json::Value {
        serde_json::from_str(&lines.next().expect("a line").expect("read")).expect("JSON")
    };
    let first = next();
    assert_eq!(first["per_sec"]["synack_sent"], 0, "{first}");
    let start = std::time::Instant::now();
    for _ in 0..4 {
        lab.echo(addr, b"hi").expect("echo");
    }
    // The echoes may straddle a tick (a loaded machine): read lines until the total holds all
    // four; each line's rate is exactly what its total gained on the line before, and the
    // rates add up to the four SYN-ACKs.
    let (mut prev, mut rates, mut ticks) = (first["total"]["synack_sent"].clone(), 0, 0);
    while prev != 4 {
        let line = next();
        ticks += 1;
        let (total, rate) = (
            &line["total"]["synack_sent"],
            &line["per_sec"]["synack_sent"],
        );
        let gained = total.as_u64().unwrap() - prev.as_u64().unwrap();
        assert_eq!(rate.as_u64(), Some(gained), "{line}");
        rates += gained;
        prev = total.clone();
        assert!(
            ticks <= 10,
            "four echoes not counted after {ticks} lines: {line}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(rates, 4);
    // One line a second: the lines it took cover the time the echoes took (within a tick).
    let secs = start.elapsed().as_secs();
    assert!(ticks <= secs + 2, "{ticks} lines in {secs} s");
}
