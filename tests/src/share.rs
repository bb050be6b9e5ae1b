//! The smoke suite's hook-sharing check: the shield in libxdp's multi-program dispatcher beside
//! Debian's xdp-tools 1.3.1, in both orders (`xdp-filter load` first, then `syncookie run`; and
//! `syncookie run --xdp-share` first, then `xdp-filter load` and `xdp-loader load`), leaving
//! by `kill -9` and `syncookie detach` in the first, by a restart and a stop in the second.
//! It needs a kernel that loads `freplace` programs: where libxdp itself cannot build a
//! dispatcher (it then loads xdp-filter alone, as on this project's own VM kernel) the check is
//! skipped, loudly, never passed.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use crate::{
    daemon::{Daemon, syncookie_in},
    lab::Lab,
};

/// xdp-filter's program (allow policy: drops what its rules name).
const FILTER: &str = "xdpfilt_alw_all";
/// A third program, loaded by `xdp-loader` (xdp-filter's TCP filter: with empty rules it
/// passes everything).
const THIRD: &str = "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_alw_tcp.o";
const THIRD_NAME: &str = "xdpfilt_alw_tcp";

/// The refusal of a kernel that keeps packet-changing programs out of libxdp 1.3's slots.
const PACKET_DATA: &str = "lets no program that changes packets";

pub enum Shared {
    Checked(String),
    Skipped(String),
}

/// `open` and `dropped` are echo servers on the server, both on protected ports; an
/// `xdp-filter port` rule drops `dropped`'s. `ext` is the name the shield's program has in the
/// dispatcher; `args` are `run`'s (ports and mode).
pub fn both_orders(
    lab: &Lab,
    open: SocketAddr,
    dropped: SocketAddr,
    ext: &str,
    args: &[&str],
) -> Result<Shared, String> {
    let t = Tools { lab };
    // Whatever happens, libxdp's programs go: the next checks want an empty hook.
    let _clean = Unload(lab);
    let dport = dropped.port().to_string();
    // Order 1: xdp-filter first.
    t.run(&["xdp-filter", "load", &lab.server_if])?;
    let status = t.status()?;
    if !status.contains("xdp_dispatcher") {
        t.run(&["xdp-filter", "unload", &lab.server_if])?;
        return Ok(Shared::Skipped(format!(
            "libxdp built no dispatcher here (the kernel refuses freplace programs): {}",
            status.replace('\n', " | ")
        )));
    }
    t.run(&["xdp-filter", "port", &dport])?;
    let mut d = match Daemon::try_start(&lab.server, &lab.server_if, args) {
        Ok(d) => d,
        // Linux 6.13+ and Debian's 6.12.118: libxdp 1.3's slots cannot take the shield.
        Err(out) if out.contains(PACKET_DATA) => {
            let why = out
                .lines()
                .find(|l| l.contains(PACKET_DATA))
                .unwrap_or_default();
            return Ok(Shared::Skipped(why.into()));
        }
        Err(out) => return Err(out),
    };
    t.listed(&[ext, FILTER], &[])?;
    let sent = t.answered(open, dropped)?;
    // A crash, then `syncookie detach` (the second order stops the daemon instead).
    d.kill();
    let out = syncookie_in(&lab.server, &["detach", "--iface", &lab.server_if]);
    if !out.status.success() {
        return Err(format!(
            "syncookie detach: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    // Only the shield left: the filter still drops, the kernel answers the rest.
    t.listed(&[FILTER], &[ext])?;
    connects(lab, open)?;
    if connects(lab, dropped).is_ok() {
        return Err("after the shield left, xdp-filter's rule no longer drops".into());
    }
    t.dispatchers(1)?;
    t.run(&["xdp-filter", "unload", &lab.server_if])?;
    t.dispatchers(0)?;
    let first = format!(
        "filter first: shield joined, {sent} SYN-ACKs; after kill -9, `syncookie detach` left \
         xdp-filter alone"
    );
    // Order 2: the shield first, starting a dispatcher, then xdp-filter and xdp-loader.
    let share: Vec<&str> = args.iter().copied().chain(["--xdp-share"]).collect();
    let mut d = Daemon::try_start(&lab.server, &lab.server_if, &share)?;
    t.listed(&[ext, "xdp_dispatcher"], &[FILTER])?;
    t.run(&["xdp-filter", "load", &lab.server_if])?;
    t.run(&["xdp-filter", "port", &dport])?;
    t.run(&["xdp-loader", "load", &lab.server_if, THIRD])?;
    t.listed(&[ext, FILTER, THIRD_NAME], &[])?;
    t.answered(open, dropped)?;
    // A crash and a restart: the shield stays in the dispatcher, the restart replaces it.
    d.kill();
    connects(lab, open)?;
    let mut d = Daemon::try_start(&lab.server, &lab.server_if, args)?;
    let status = t.listed(&[ext, FILTER, THIRD_NAME], &[])?;
    if status.matches(ext).count() != 1 {
        return Err(format!(
            "after a restart the shield is listed twice: {status}"
        ));
    }
    t.dispatchers(1)?;
    let after = t.answered(open, dropped)?;
    if !d.stop() {
        return Err(format!(
            "run did not stop cleanly: {}",
            d.output.lock().unwrap()
        ));
    }
    t.listed(&[FILTER, THIRD_NAME], &[ext])?;
    if connects(lab, dropped).is_ok() {
        return Err("after the shield left, xdp-filter's rule no longer drops".into());
    }
    t.dispatchers(1)?;
    t.run(&["xdp-loader", "unload", &lab.server_if, "--all"])?;
    t.run(&["xdp-filter", "unload", &lab.server_if])
        .map_err(|e| format!("xdp-filter's pins: {e}"))
        .ok();
    t.dispatchers(0)?;
    Ok(Shared::Checked(format!(
        "{first}; shield first: xdp-filter and xdp-loader joined, kill -9 and restart kept one \
         shield ({after} SYN-ACKs), detach left the other two"
    )))
}

/// Removes every libxdp program from the server's interface on drop, and xdp-filter's pins.
struct Unload<'a>(&'a Lab);

impl Drop for Unload<'_> {
    fn drop(&mut self) {
        let iface = &self.0.server_if;
        let _ = self
            .0
            .server
            .try_exec(&["xdp-loader", "unload", iface, "--all"]);
        let _ = self.0.server.try_exec(&["xdp-filter", "unload", iface]);
    }
}

struct Tools<'a> {
    lab: &'a Lab,
}

impl Tools<'_> {
    /// A command in the server's network namespace (host bpffs: libxdp's pins are shared).
    fn run(&self, args: &[&str]) -> Result<String, String> {
        self.lab.server.try_exec(args)
    }

    fn status(&self) -> Result<String, String> {
        self.run(&["xdp-loader", "status", &self.lab.server_if])
    }

    /// `xdp-loader status` lists each of `want` and none of `not`; returns it.
    fn listed(&self, want: &[&str], not: &[&str]) -> Result<String, String> {
        let s = self.status()?;
        let missing: Vec<_> = want.iter().filter(|w| !s.contains(**w)).collect();
        let extra: Vec<_> = not.iter().filter(|n| s.contains(**n)).collect();
        if missing.is_empty() && extra.is_empty() {
            Ok(s)
        } else {
            Err(format!(
                "xdp-loader status lacks {missing:?} or has {extra:?}: {}",
                s.replace('\n', " | ")
            ))
        }
    }

    /// libxdp's pin directories of the server's interface: exactly `n` (no stale ones).
    fn dispatchers(&self, n: usize) -> Result<(), String> {
        // `ip -o link`: "2: name@peer: ..." (this process's /sys shows another namespace).
        let link = self.run(&["ip", "-o", "link", "show", &self.lab.server_if])?;
        let ifindex = link
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let prefix = format!("dispatch-{ifindex}-");
        let dirs: Vec<String> = std::fs::read_dir("/sys/fs/bpf/xdp")
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&prefix))
                    .collect()
            })
            .unwrap_or_default();
        if dirs.len() == n {
            Ok(())
        } else {
            Err(format!("libxdp pin directories {dirs:?}, want {n}"))
        }
    }

    /// `open` connects through the shield's cookies (it answers every SYN, but those kernel
    /// mode leaves to the kernel to keep its stamp fresh), `dropped` does not connect at all
    /// (xdp-filter drops it, before the shield). Returns SYN-ACKs sent.
    fn answered(&self, open: SocketAddr, dropped: SocketAddr) -> Result<u64, String> {
        let (sent0, refresh0) = self.synacks()?;
        for _ in 0..5 {
            connects(self.lab, open)?;
        }
        let (sent, refresh) = self.synacks()?;
        let (sent, refresh) = (sent - sent0, refresh - refresh0);
        if sent == 0 || sent + refresh != 5 {
            return Err(format!(
                "5 connections, but the shield sent {sent} SYN-ACKs and left {refresh} SYNs to \
                 the kernel's stamp refresh"
            ));
        }
        if connects(self.lab, dropped).is_ok() {
            return Err(format!(
                "{dropped} connected: xdp-filter's rule did not drop it"
            ));
        }
        Ok(sent)
    }

    /// `synack_sent` and `syn_refresh`.
    fn synacks(&self) -> Result<(u64, u64), String> {
        let out = syncookie_in(
            &self.lab.server,
            &["stats", "--iface", &self.lab.server_if, "--json"],
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("syncookie stats --json: {e}"))?;
        let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        Ok((n("synack_sent"), n("syn_refresh")))
    }
}

/// One echo exchange from the client's namespace, within 2 s.
fn connects(lab: &Lab, addr: SocketAddr) -> Result<(), String> {
    let _in = lab.client.enter();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"shared").map_err(|e| e.to_string())?;
    let mut back = [0u8; 6];
    s.read_exact(&mut back)
        .map_err(|e| format!("echo from {addr}: {e}"))?;
    Ok(())
}
