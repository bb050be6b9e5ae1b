//! Socket lookups: tell handshake packets (a listener answers) from those of existing sockets.
//! `bpf_skc_lookup_tcp`, not `bpf_sk_lookup_tcp`: the latter maps the kernel's own request
//! sockets to their listener, and the ACKs of its own handshakes would look like ours.

use core::ffi::c_void;

use aya_ebpf::{
    EbpfContext,
    bindings::{
        bpf_sock, bpf_sock_tuple, bpf_sock_tuple__bindgen_ty_1,
        bpf_sock_tuple__bindgen_ty_1__bindgen_ty_1, bpf_sock_tuple__bindgen_ty_1__bindgen_ty_2,
    },
    helpers::{
        bpf_sk_release, bpf_skc_lookup_tcp, bpf_skc_to_mptcp_sock, bpf_skc_to_tcp_sock,
        bpf_tcp_check_syncookie,
    },
};
use syncookie_common::proto::{IPV4_HLEN, IPV6_HLEN, TCP_HLEN, TCP_LISTEN};

use crate::parse::{Tcp, opaque};

/// `BPF_F_CURRENT_NETNS`: the netns of the device (XDP) or of the skb (TC).
const CURRENT_NETNS: u64 = u64::MAX;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Sock {
    None,
    Listener,
    /// A listener of an MPTCP socket: bpf_sk_assign_tcp_reqsk refuses it (sk_is_mptcp), so its
    /// handshakes, plain TCP ones included, stay the kernel's.
    MptcpListener,
    /// Established or time-wait.
    Other,
    /// The kernel's own request socket (TCP_NEW_SYN_RECV): this ACK completes its handshake.
    Request,
}

/// `TCP_NEW_SYN_RECV`: a request socket, as `bpf_skc_lookup_tcp` returns them.
pub const TCP_NEW_SYN_RECV: u32 = 12;

/// Looks up the socket for `t` and returns it still referenced: release with `bpf_sk_release`.
#[inline(always)]
pub fn lookup(ctx: &impl EbpfContext, t: &Tcp) -> *mut bpf_sock {
    if t.is_v6() {
        return lookup6(ctx, t);
    }
    let v4 = bpf_sock_tuple__bindgen_ty_1__bindgen_ty_1 {
        saddr: t.saddr[0].to_be(),
        daddr: t.daddr[0].to_be(),
        sport: t.sport.to_be(),
        dport: t.dport.to_be(),
    };
    // Only the IPv4 member is set (no memset of the whole union): the helper reads `size` bytes.
    let mut tuple = bpf_sock_tuple {
        __bindgen_anon_1: bpf_sock_tuple__bindgen_ty_1 { ipv4: v4 },
    };
    let size = core::mem::size_of_val(&v4) as u32;
    // SAFETY: helper call with a valid context and tuple.
    unsafe { bpf_skc_lookup_tcp(ctx.as_ptr(), &mut tuple, size, CURRENT_NETNS, 0) }
}

/// The IPv6 lookup: its own call with a constant size (the verifier checks the tuple's bytes
/// against it).
#[inline(always)]
fn lookup6(ctx: &impl EbpfContext, t: &Tcp) -> *mut bpf_sock {
    let v6 = bpf_sock_tuple__bindgen_ty_1__bindgen_ty_2 {
        saddr: t.saddr.map(u32::to_be),
        daddr: t.daddr.map(u32::to_be),
        sport: t.sport.to_be(),
        dport: t.dport.to_be(),
    };
    let mut tuple = bpf_sock_tuple {
        __bindgen_anon_1: bpf_sock_tuple__bindgen_ty_1 { ipv6: v6 },
    };
    let size = core::mem::size_of_val(&v6) as u32;
    // SAFETY: helper call with a valid context and tuple.
    unsafe { bpf_skc_lookup_tcp(ctx.as_ptr(), &mut tuple, size, CURRENT_NETNS, 0) }
}

/// A socket a lookup found, still referenced: the reference is released when this is dropped,
/// on every path (the verifier refuses a program that could leave one held).
pub struct Found(*mut bpf_sock);

impl Drop for Found {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: the reference the lookup took (non-null, see `find`), released once.
        unsafe { bpf_sk_release(self.0 as *mut c_void) };
    }
}

/// The socket for `t`, if any.
#[inline(always)]
pub fn find(ctx: &impl EbpfContext, t: &Tcp) -> Option<Found> {
    let sk = lookup(ctx, t);
    if sk.is_null() { None } else { Some(Found(sk)) }
}

impl Found {
    /// Whether the socket listens (MPTCP listeners included).
    #[inline(always)]
    pub fn listening(&self) -> bool {
        // SAFETY: a referenced socket from the lookup.
        unsafe { (*self.0).state == TCP_LISTEN }
    }

    /// The referenced socket, for helpers that take it; valid while `self` holds the reference.
    #[inline(always)]
    pub fn as_ptr(&self) -> *mut bpf_sock {
        self.0
    }

    /// The socket as a full TCP socket (what `bpf_sk_assign_tcp_reqsk` takes), if it is one;
    /// valid while `self` holds the reference.
    #[inline(always)]
    pub fn tcp_sock(&self) -> Option<*mut bpf_sock> {
        // SAFETY: a referenced socket; the cast takes no reference of its own.
        let tp = unsafe { bpf_skc_to_tcp_sock(self.0 as *mut c_void) };
        (!tp.is_null()).then_some(tp as *mut bpf_sock)
    }

    #[inline(always)]
    pub fn kind(&self) -> Sock {
        self.kind_with(true)
    }

    /// [`Self::kind`]; without `mptcp` (kernels before 5.19 have no `bpf_skc_to_mptcp_sock`),
    /// MPTCP listeners are taken as plain ones.
    #[inline(always)]
    pub fn kind_with(&self, mptcp: bool) -> Sock {
        // SAFETY: a referenced socket from the lookup.
        let state = unsafe { (*self.0).state };
        if state == TCP_NEW_SYN_RECV {
            Sock::Request
        } else if state != TCP_LISTEN {
            Sock::Other
        // SAFETY: a referenced socket; the cast returns a plain (unreferenced) pointer we only
        // test for null.
        } else if mptcp && unsafe { !bpf_skc_to_mptcp_sock(self.0 as *mut c_void).is_null() } {
            Sock::MptcpListener
        } else {
            Sock::Listener
        }
    }

    /// Whether the ACK `t` (in the frame `data..end`) carries a valid SYN cookie of the
    /// kernel's own, this socket being its listener: one it sent for a SYN we left to it
    /// (TCP-MD5, MPTCP, no key yet) when its queue overflowed or with tcp_syncookies=2.
    /// `bpf_tcp_check_syncookie` checks it as the kernel would, and refuses unless the listener
    /// overflowed recently, so it costs little when unused.
    #[inline(always)]
    pub fn kernel_cookie_ok(&self, data: usize, end: usize, t: &Tcp) -> bool {
        // Opaque: the bounds check must be made on the very registers passed to the helper
        // (LLVM would otherwise check a re-derived sum the verifier cannot relate to them).
        let (ip, th) = (opaque(data + t.l3_off()), opaque(data + t.l4_off()));
        // The helper takes the fixed IP header only (the IPv6 one tells it the family).
        let ip_len = if t.is_v6() { IPV6_HLEN } else { IPV4_HLEN };
        if ip + IPV6_HLEN > end || th + TCP_HLEN > end {
            return false;
        }
        // SAFETY: a referenced socket from the lookup; both headers lie inside the frame
        // (checked above) and are passed with their fixed sizes.
        let r = unsafe {
            bpf_tcp_check_syncookie(
                self.0 as *mut c_void,
                ip as *mut c_void,
                ip_len as u32,
                th as *mut _,
                TCP_HLEN as u32,
            )
        };
        r == 0
    }
}

/// What kind of socket `t` belongs to (the lookup's reference released at once).
#[inline(always)]
pub fn classify(ctx: &impl EbpfContext, t: &Tcp) -> Sock {
    find(ctx, t).map_or(Sock::None, |s| s.kind())
}
