//! The SYN-ACK retransmit a cookie server otherwise lacks (see `syncookie_common::maps::Resend`):
//! XDP remembers the SYN-ACKs it sends in the pinned `SC_RESEND` table and forgets each when
//! its ACK's cookie checks; the daemon sends what is still there after 1 s again, once more 2 s
//! later, as the kernel does for its own SYN-ACKs, then forgets it. The frame is sent as XDP
//! built it (same cookie, same TSval), on the interface the SYN came in on, through a packet
//! socket: the client's repeated ACK then checks like the lost one would have.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use aya::maps::{HashMap, MapData, MapError};
use syncookie_common::maps::{
    MAP_RESEND, RESEND_AFTER_NS, RESEND_AGAIN_NS, RESEND_FRAME, Resend, ResendKey,
};

use crate::pins::PinDir;

#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    #[error("cannot open the shield's pinned map {}", path.display())]
    Open {
        path: std::path::PathBuf,
        source: MapError,
    },
    #[error("reading the SYN-ACKs to send again")]
    Map(#[from] MapError),
    #[error("opening a packet socket to send SYN-ACKs again")]
    Socket(#[source] std::io::Error),
}

/// Sends again at most this many SYN-ACKs per tick: a reflection victim gets no more than the
/// budget XDP already gave it, three times at most, and the daemon stays cheap.
const MAX_PER_TICK: usize = 4096;
/// bpf(2)'s BPF_MAP_UPDATE_ELEM flag: only an existing entry is updated.
const BPF_EXIST: u64 = 2;
/// Entries older than this are gone from the protocol's point of view (the client gave up).
const STALE_NS: u64 = 10_000_000_000;

pub struct Resender {
    table: HashMap<MapData, ResendKey, Resend>,
    sock: OwnedFd,
}

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub sent: usize,
    pub forgotten: usize,
}

impl Resender {
    pub fn open(pins: &PinDir) -> Result<Self, ResendError> {
        let path = pins.map(MAP_RESEND);
        let err = |source| ResendError::Open {
            path: path.clone(),
            source,
        };
        let data = MapData::from_pin(&path).map_err(err)?;
        let table = HashMap::try_from(aya::maps::Map::LruHashMap(data)).map_err(err)?;
        // SAFETY: a plain socket(2) call; the descriptor is owned from here on.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(ResendError::Socket(std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { table, sock })
    }

    /// Sends the SYN-ACKs that are due again and forgets those done with; `now_ns` is
    /// CLOCK_MONOTONIC, the clock XDP stamped them with.
    pub fn pass(&mut self, now_ns: u64) -> Result<Pass, ResendError> {
        let mut done = Pass::default();
        let due: Vec<(ResendKey, Resend)> = self
            .table
            .iter()
            .filter_map(Result::ok)
            .filter(|(_, v)| now_ns.saturating_sub(v.sent_ns) >= wait(v.tries))
            .take(MAX_PER_TICK)
            .collect();
        for (k, mut v) in due {
            let age = now_ns.saturating_sub(v.sent_ns);
            if v.tries >= 2 || age > STALE_NS {
                let _ = self.table.remove(&k);
                done.forgotten += 1;
                continue;
            }
            // The ACK may have come (and removed the entry) since the walk: only an entry
            // still there is sent, and a failed send is tried again next pass.
            if self.table.get(&k, 0).is_err() || self.send(&v).is_err() {
                continue;
            }
            v.tries += 1;
            done.sent += 1;
            // BPF_EXIST: an entry the ACK removed meanwhile is not brought back.
            let _ = self.table.insert(k, v, BPF_EXIST);
        }
        Ok(done)
    }

    fn send(&self, v: &Resend) -> std::io::Result<()> {
        let len = usize::from(v.len).min(RESEND_FRAME);
        let frame = &v.frame[..len];
        // SAFETY: zeroed sockaddr_ll is valid; the fields set below are all it needs.
        let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        to.sll_family = libc::AF_PACKET as u16;
        to.sll_ifindex = v.ifindex as i32;
        to.sll_halen = 6;
        to.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: the buffer and address live for the call; lengths match them.
        let n = unsafe {
            libc::sendto(
                self.sock.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
                &to as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// How long after the first SYN-ACK the next send is due (then, after the last, it is
/// forgotten): 1 s, 3 s, 3 s.
const fn wait(tries: u8) -> u64 {
    match tries {
        0 => RESEND_AFTER_NS,
        _ => RESEND_AFTER_NS + RESEND_AGAIN_NS,
    }
}

/// CLOCK_MONOTONIC in ns, as `bpf_ktime_get_coarse_ns` counts (the coarse clock lags by at
/// most a tick).
pub fn monotonic_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always there");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_at_one_and_three_seconds_then_forgets() {
        assert_eq!(wait(0), 1_000_000_000);
        assert_eq!(wait(1), 3_000_000_000);
        assert_eq!(wait(2), 3_000_000_000);
    }
}
