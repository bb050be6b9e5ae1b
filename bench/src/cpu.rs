//! CPU placement and accounting: threads pinned to the attacker's or the server's CPU, and the
//! per-CPU busy time from /proc/stat.
//!
//! The server's CPU time is its CPU's wall-clock time less its idle time (idle + iowait on its
//! line in /proc/stat). Everything the server side does runs there: the
//! threaded NAPI poll of its veth (driver, XDP, the whole kernel receive path, TCP, netfilter,
//! the transmission of replies), timers (SYN-ACK retransmissions), and the echo server.

use std::{fs, time::Instant};

use nix::unistd::{SysconfVar, sysconf};

/// Pins thread `tid` (0: the calling thread) to `cpu`.
pub fn pin(tid: i32, cpu: usize) -> std::io::Result<()> {
    Ok(syncookie_tests::netns::pin_thread(tid, cpu)?)
}

/// CPUs online (not only those this thread may run on).
pub fn online_cpus() -> usize {
    match sysconf(SysconfVar::_NPROCESSORS_ONLN) {
        Ok(Some(n)) if n > 0 => n as usize,
        _ => 1,
    }
}

/// Clock ticks per second of /proc/stat (USER_HZ).
fn clk_tck() -> f64 {
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// Idle ticks (idle + iowait) of every CPU, from /proc/stat. With NO_HZ these come from the
/// kernel's idle-time accounting (get_cpu_idle_time_us), exact to the tick unit, where the busy
/// columns (user, system, softirq...) are sampled at each timer tick, which a workload in step
/// with the tick can fool.
fn idle_ticks() -> Vec<u64> {
    let s = fs::read_to_string("/proc/stat").unwrap_or_default();
    s.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            // user nice system idle iowait irq softirq steal ...
            v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0)
        })
        .collect()
}

/// A point in time and the idle time of every CPU so far.
#[derive(Clone)]
pub struct Sample {
    at: Instant,
    idle: Vec<u64>,
}

impl Sample {
    pub fn now() -> Self {
        Self {
            at: Instant::now(),
            idle: idle_ticks(),
        }
    }

    /// Busy seconds of `cpu` since `earlier` (wall-clock time less idle time), and the
    /// wall-clock seconds between the two.
    pub fn busy_since(&self, earlier: &Sample, cpu: usize) -> (f64, f64) {
        let t = |s: &Sample| s.idle.get(cpu).copied().unwrap_or(0);
        let idle = t(self).saturating_sub(t(earlier)) as f64 / clk_tck();
        let wall = self.at.duration_since(earlier.at).as_secs_f64();
        ((wall - idle).clamp(0.0, wall), wall)
    }
}

/// CPU time (ns) threads have run so far, from /proc/<tid>/schedstat.
pub fn run_ns(tids: &[i32]) -> u64 {
    tids.iter()
        .filter_map(|t| {
            fs::read_to_string(format!("/proc/{t}/schedstat"))
                .ok()?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}
