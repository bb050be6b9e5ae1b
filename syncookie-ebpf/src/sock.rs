//! Socket lookups: tell handshake packets (a listener answers) from those of existing sockets.
//! `bpf_skc_lookup_tcp`, not `bpf_sk_lookup_tcp`: the latter maps the kernel's own request
//! sockets to their listener, and the ACKs of its own handshakes would look like ours.

use core::ffi::c_void;

use aya_ebpf::{
    EbpfContext,
    bindings::{
        bpf_sock, bpf_sock_tuple, bpf_sock_tuple__bindgen_ty_1,
        bpf_sock_tuple__bindgen_ty_1__bindgen_ty_1,
    },
    helpers::{bpf_sk_release, bpf_skc_lookup_tcp},
};
use syncookie_common::proto::TCP_LISTEN;

use crate::parse::Tcp;

/// `BPF_F_CURRENT_NETNS`: the netns of the device (XDP) or of the skb (TC).
const CURRENT_NETNS: u64 = u64::MAX;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Sock {
    None,
    Listener,
    /// Established, time-wait, or the kernel's own request socket.
    Other,
}

/// Looks up the socket for `t` and returns it still referenced: release with `bpf_sk_release`.
#[inline(always)]
pub fn lookup(ctx: &impl EbpfContext, t: &Tcp) -> *mut bpf_sock {
    let v4 = bpf_sock_tuple__bindgen_ty_1__bindgen_ty_1 {
        saddr: t.saddr.to_be(),
        daddr: t.daddr.to_be(),
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

#[inline(always)]
pub fn classify(ctx: &impl EbpfContext, t: &Tcp) -> Sock {
    let sk = lookup(ctx, t);
    if sk.is_null() {
        return Sock::None;
    }
    // SAFETY: non-null socket returned by the lookup, still referenced.
    let state = unsafe { (*sk).state };
    // SAFETY: the reference the lookup took, released once.
    unsafe { bpf_sk_release(sk as *mut c_void) };
    if state == TCP_LISTEN {
        Sock::Listener
    } else {
        Sock::Other
    }
}
