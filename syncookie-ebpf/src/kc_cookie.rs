//! The kernel's own SYN cookies, made and checked from XDP for IPv4 and IPv6 alike:
//! `bpf_tcp_raw_gen_syncookie_ipv4/6` and `bpf_tcp_raw_check_syncookie_ipv4/6` (6.0+, no socket
//! needed), and `bpf_tcp_check_syncookie`, which runs `cookie_v4_check()`/`cookie_v6_check()`'s
//! own tests on a listener (tcp_syncookies, its overflow stamp, the cookie). On 5.x
//! ([`kc_listener`]) `bpf_tcp_gen_syncookie` makes the cookie on the listener instead.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::{bpf_sock, iphdr, ipv6hdr, tcphdr},
    helpers::{
        bpf_tcp_check_syncookie, bpf_tcp_gen_syncookie, bpf_tcp_raw_check_syncookie_ipv4,
        bpf_tcp_raw_check_syncookie_ipv6, bpf_tcp_raw_gen_syncookie_ipv4,
        bpf_tcp_raw_gen_syncookie_ipv6,
    },
};
use syncookie_common::proto::*;
use syncookie_ebpf::parse::{Tcp, opaque};

use crate::{kc_listener, maps::kernel_cookies::SC_KC_SCRATCH};

/// The kernel's cookie for the SYN `t`, computed as `tcp_conn_request()` would (from the
/// client's MSS option); on 5.x by `bpf_tcp_gen_syncookie` on `t`'s listener `sk`, which also
/// stamps its overflow. The helpers read `th_len` bytes of header, a length the verifier must
/// know: one call per possible TCP header length.
#[inline(always)]
pub fn make(sk: *mut bpf_sock, data: usize, end: usize, t: &Tcp) -> Option<u32> {
    let (ip, th) = (opaque(data + t.l3_off()), opaque(data + t.l4_off()));
    let v6 = t.is_v6();
    if ip + if v6 { IPV6_HLEN } else { IPV4_HLEN } > end {
        return None;
    }
    macro_rules! by_len {
        ($($n:literal)+) => {
            match t.hlen() {
                $($n => {
                    if th + $n > end {
                        return None;
                    }
                    // SAFETY: both headers lie inside the frame (checked above, the IP header
                    // at its family's size) and `$n` is the TCP header's own length, as the
                    // helpers require; `sk` is a referenced listener.
                    unsafe {
                        if kc_listener::on() {
                            let (ip, th) = (ip as *mut c_void, th as *mut tcphdr);
                            if v6 {
                                bpf_tcp_gen_syncookie(sk as *mut c_void, ip, IPV6_HLEN as u32, th, $n)
                            } else {
                                bpf_tcp_gen_syncookie(sk as *mut c_void, ip, IPV4_HLEN as u32, th, $n)
                            }
                        } else if v6 {
                            bpf_tcp_raw_gen_syncookie_ipv6(ip as *mut ipv6hdr, th as *mut tcphdr, $n)
                        } else {
                            bpf_tcp_raw_gen_syncookie_ipv4(ip as *mut iphdr, th as *mut tcphdr, $n)
                        }
                    }
                })+
                _ => return None,
            }
        };
    }
    let v = by_len!(20 24 28 32 36 40 44 48 52 56 60);
    // The cookie is in the low 32 bits, the MSS it encodes above; negative: no SYN cookies.
    if v < 0 { None } else { Some(v as u32) }
}

/// Whether the kernel would take the ACK the client sends for `isn` now: that ACK's TCP
/// header, built in [`SC_KC_SCRATCH`] from the SYN's, with the SYN's own IP header (the helper
/// reads its addresses, and its length names the family), through `bpf_tcp_check_syncookie`
/// on the listener `sk`.
#[inline(always)]
pub fn kernel_would_accept(sk: *mut bpf_sock, data: usize, end: usize, t: &Tcp, isn: u32) -> bool {
    let Some(slot) = SC_KC_SCRATCH.get_ptr_mut(0) else {
        return false;
    };
    let (ip, th) = (opaque(data + t.l3_off()), opaque(data + t.l4_off()));
    let ip_len = if t.is_v6() { IPV6_HLEN } else { IPV4_HLEN };
    if ip + ip_len > end || th + TCP_HLEN > end {
        return false;
    }
    // SAFETY: the TCP header lies in the frame (checked above); `slot` is this CPU's scratch.
    unsafe {
        let syn = th as *const u32;
        let ack = slot as *mut u32;
        // Ports as they are; seq + 1, the cookie + 1, data offset 5 and ACK (the window's half
        // word kept), and the rest of the SYN's header, which the check does not read.
        ack.write(syn.read_unaligned());
        ack.add(1).write(t.seq.wrapping_add(1).to_be());
        ack.add(2).write(isn.wrapping_add(1).to_be());
        let word3 = u32::from_ne_bytes([((TCP_HLEN / 4) as u8) << 4, TCP_ACK, 0, 0]);
        ack.add(3)
            .write((syn.add(3).read_unaligned() & u32::from_ne_bytes([0, 0, 0xff, 0xff])) | word3);
        ack.add(4).write(syn.add(4).read_unaligned());
        // SAFETY: a referenced listener; the IP header lies in the frame, the TCP header is
        // the scratch's first 20 bytes.
        check(sk, ip as *mut c_void, ip_len, ack as *mut tcphdr) == 0
    }
}

/// `bpf_tcp_check_syncookie` on an IP header of `ip_len` bytes and a bare TCP header.
///
/// # Safety
/// `sk` is a referenced listener, `ip` and `th` valid for `ip_len` and [`TCP_HLEN`] bytes.
#[inline(always)]
unsafe fn check(sk: *mut bpf_sock, ip: *mut c_void, ip_len: usize, th: *mut tcphdr) -> i64 {
    // SAFETY: the caller's promise.
    unsafe { bpf_tcp_check_syncookie(sk as *mut c_void, ip, ip_len as u32, th, TCP_HLEN as u32) }
}

/// The handshake ACK `t` against the kernel's cookies: `None` when its cookie is not one,
/// else whether the kernel's own check takes it now (`accepted`).
#[inline(always)]
pub fn check_ack(sk: *mut bpf_sock, data: usize, end: usize, t: &Tcp) -> Option<bool> {
    // Opaque: the bounds check must be made on the very registers passed to the helpers.
    let (ip, th) = (opaque(data + t.l3_off()), opaque(data + t.l4_off()));
    if th + TCP_HLEN > end {
        return None;
    }
    if kc_listener::on() {
        // No raw check on 5.x: the listener's check is the only one. Its stamp is as fresh as
        // our last cookie (made on the listener), so a refusal is a bad or expired cookie.
        let ip_len = if t.is_v6() { IPV6_HLEN } else { IPV4_HLEN };
        if ip + ip_len > end {
            return None;
        }
        // SAFETY: a referenced listener; headers inside the frame as checked above.
        return (unsafe { check(sk, ip as *mut c_void, ip_len, th as *mut tcphdr) } == 0)
            .then_some(true);
    }
    let (raw, ip_len) = if t.is_v6() {
        if ip + IPV6_HLEN > end {
            return None;
        }
        // SAFETY: both headers lie inside the frame, checked above, with the helper's sizes.
        let r = unsafe { bpf_tcp_raw_check_syncookie_ipv6(ip as *mut ipv6hdr, th as *mut tcphdr) };
        (r, IPV6_HLEN)
    } else {
        if ip + IPV4_HLEN > end {
            return None;
        }
        // SAFETY: as above.
        let r = unsafe { bpf_tcp_raw_check_syncookie_ipv4(ip as *mut iphdr, th as *mut tcphdr) };
        (r, IPV4_HLEN)
    };
    if raw != 0 {
        return None;
    }
    // SAFETY: a referenced listener; headers inside the frame as checked above.
    Some(unsafe { check(sk, ip as *mut c_void, ip_len, th as *mut tcphdr) } == 0)
}
