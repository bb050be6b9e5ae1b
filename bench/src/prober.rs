//! The legitimate clients: connections opened on a fixed schedule (an open loop: a slow answer
//! does not lower the offered rate), each connecting, sending a payload and reading its echo.
//! Success means connected and echoed within the timeouts; latency is the time connect() took.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use syncookie_tests::netns::Netns;

use crate::cpu;

#[derive(Clone, Copy, Debug)]
pub struct ProbeConfig {
    /// Connections started per second.
    pub rate: f64,
    /// Threads sharing the schedule (each runs one connection at a time).
    pub threads: usize,
    /// For connect() and for the echo each.
    pub timeout: Duration,
    /// Bytes sent (and echoed back) per connection.
    pub payload: usize,
}

#[derive(Clone, Debug, Default)]
pub struct ProbeStats {
    pub attempts: u64,
    pub ok: u64,
    /// Connect latencies of the successful connections, sorted.
    pub latencies: Vec<Duration>,
    /// Payload bytes sent plus received.
    pub bytes: u64,
}

impl ProbeStats {
    pub fn success(&self) -> f64 {
        if self.attempts == 0 {
            return 0.0;
        }
        self.ok as f64 / self.attempts as f64
    }

    pub fn pct(&self, p: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let i = ((self.latencies.len() - 1) as f64 * p / 100.0).round() as usize;
        Some(self.latencies[i])
    }
}

/// One connection; `Some(connect latency)` when it connected and echoed the payload.
fn attempt(dst: SocketAddr, c: &ProbeConfig, payload: &[u8], bytes: &mut u64) -> Option<Duration> {
    let t = Instant::now();
    let mut s = TcpStream::connect_timeout(&dst, c.timeout).ok()?;
    let lat = t.elapsed();
    s.set_read_timeout(Some(c.timeout)).ok()?;
    s.set_write_timeout(Some(c.timeout)).ok()?;
    s.write_all(payload).ok()?;
    *bytes += payload.len() as u64;
    let mut back = vec![0u8; payload.len()];
    s.read_exact(&mut back).ok()?;
    *bytes += back.len() as u64;
    (back == payload).then_some(lat)
}

/// Starts connections to `dst` from `ns` for `window`, on `cpu`; returns when the last one has
/// finished.
pub fn run(
    ns: &Netns,
    dst: SocketAddr,
    c: &ProbeConfig,
    window: Duration,
    cpu: usize,
) -> ProbeStats {
    let start = Instant::now();
    let payload: Vec<u8> = (0..c.payload).map(|i| (i % 251) as u8).collect();
    let parts: Vec<ProbeStats> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..c.threads)
            .map(|id| {
                let payload = &payload;
                s.spawn(move || {
                    let _ = cpu::pin(0, cpu);
                    let _in = ns.enter();
                    let mut st = ProbeStats::default();
                    for k in 0u64.. {
                        let due = start
                            + Duration::from_secs_f64(
                                (k * c.threads as u64 + id as u64) as f64 / c.rate,
                            );
                        if due >= start + window {
                            break;
                        }
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        st.attempts += 1;
                        if let Some(lat) = attempt(dst, c, payload, &mut st.bytes) {
                            st.ok += 1;
                            st.latencies.push(lat);
                        }
                    }
                    st
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all = ProbeStats::default();
    for p in parts {
        all.attempts += p.attempts;
        all.ok += p.ok;
        all.bytes += p.bytes;
        all.latencies.extend(p.latencies);
    }
    all.latencies.sort();
    all
}
