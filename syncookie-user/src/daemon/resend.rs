//! The SYN-ACK retransmit a cookie server otherwise lacks (see `syncookie_common::maps::Resend`):
//! XDP remembers the SYN-ACKs it sends in the pinned `SC_RESEND` table and forgets each when
//! its ACK's cookie checks; the daemon sends what is still there after 1 s again, once more 2 s
//! later, as the kernel does for its own SYN-ACKs, then forgets it. The frame is sent as XDP
//! built it (same cookie, same TSval), on the interface the SYN came in on, through a packet
//! socket: the client's repeated ACK then checks like the lost one would have.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use aya::maps::{HashMap, IterableMap, MapData, MapError};
use syncookie_common::maps::{RESEND_AFTER_NS, RESEND_AGAIN_NS, RESEND_FRAME, Resend, ResendKey};

use crate::bpf::{
    pinned::{PinnedError, PinnedMaps},
    pins::PinDir,
};

#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    #[error(transparent)]
    Pinned(#[from] PinnedError),
    #[error("reading the SYN-ACKs to send again")]
    Map(#[from] MapError),
    #[error("opening a packet socket to send SYN-ACKs again")]
    Socket(#[source] std::io::Error),
    #[error("reading the SYN-ACKs to send again in batches")]
    Batch(#[source] std::io::Error),
}

/// Sends again at most this many SYN-ACKs per tick: a reflection victim gets no more than the
/// budget XDP already gave it, three times at most, and the daemon stays cheap.
const MAX_PER_TICK: usize = 4096;
/// bpf(2)'s BPF_MAP_UPDATE_ELEM flag: only an existing entry is updated.
const BPF_EXIST: u64 = 2;
/// bpf(2)'s command that reads a map's entries in batches (Linux 5.6).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
/// Entries per batch read.
const BATCH: usize = 4096;

/// bpf(2)'s `union bpf_attr` as the batch commands read it.
#[repr(C)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}
/// Entries older than this are gone from the protocol's point of view (the client gave up).
const STALE_NS: u64 = 10_000_000_000;

pub struct Resender {
    /// Read in batches through its descriptor (aya 0.14 has no batch reads).
    table: HashMap<MapData, ResendKey, Resend>,
    sock: OwnedFd,
    /// Reused between passes: one batch of keys and values.
    keys: Vec<ResendKey>,
    values: Vec<Resend>,
}

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub sent: usize,
    pub forgotten: usize,
}

impl Resender {
    pub fn open(pins: &PinDir) -> Result<Self, ResendError> {
        let table = PinnedMaps::new(pins).resend()?;
        // SAFETY: a plain socket(2) call; the descriptor is owned from here on.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(ResendError::Socket(std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self {
            table,
            sock,
            keys: vec![ResendKey::default(); BATCH],
            // SAFETY: plain-old-data (aya::Pod): all zeroes is a valid value.
            values: vec![unsafe { std::mem::zeroed::<Resend>() }; BATCH],
        })
    }

    /// Every entry of the table, read in batches of [`BATCH`] (BPF_MAP_LOOKUP_BATCH, one
    /// syscall per batch): a walk with aya's iterator costs two syscalls per entry, about
    /// 130,000 a second for a full table read four times a second.
    fn entries(&mut self) -> Result<Vec<(ResendKey, Resend)>, ResendError> {
        let mut out = Vec::new();
        let (mut token, mut first) = (0u32, true);
        loop {
            let mut next = 0u32;
            let mut attr = BatchAttr {
                in_batch: if first {
                    0
                } else {
                    &token as *const u32 as u64
                },
                out_batch: &mut next as *mut u32 as u64,
                keys: self.keys.as_mut_ptr() as u64,
                values: self.values.as_mut_ptr() as u64,
                count: BATCH as u32,
                map_fd: self.table.map().fd().as_fd().as_raw_fd() as u32,
                elem_flags: 0,
                flags: 0,
            };
            // SAFETY: `attr` points at buffers of `count` keys and values and at two u32
            // tokens (a hash map's batch token), all alive for the call.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_bpf,
                    BPF_MAP_LOOKUP_BATCH,
                    &mut attr as *mut BatchAttr,
                    std::mem::size_of::<BatchAttr>(),
                )
            };
            let err = (r < 0).then(std::io::Error::last_os_error);
            let n = (attr.count as usize).min(BATCH);
            out.extend(
                self.keys[..n]
                    .iter()
                    .copied()
                    .zip(self.values[..n].iter().copied()),
            );
            match err {
                None => {}
                // The end of the table (the last batch may still have entries).
                Some(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
                Some(e) => return Err(ResendError::Batch(e)),
            }
            token = next;
            first = false;
        }
    }

    /// Sends the SYN-ACKs that are due again and forgets those done with; `now_ns` is
    /// CLOCK_MONOTONIC, the clock XDP stamped them with.
    pub fn pass(&mut self, now_ns: u64) -> Result<Pass, ResendError> {
        let mut done = Pass::default();
        let due: Vec<(ResendKey, Resend)> = self
            .entries()?
            .into_iter()
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
