//! Checks the cookie in a handshake ACK (`ack - 1`), hands the result from XDP to TC, and turns
//! it into what TC hands the kernel.

use aya_ebpf::{helpers::bpf_xdp_adjust_meta, programs::XdpContext};
use syncookie_common::{
    cookie::{self, WSCALE_NONE},
    maps::{
        Config, HANDOFF_MAGIC, HandoffMeta, KEY_RETIRED, META_ECN, META_SACK, META_TS, ReqAttrs,
    },
};

use crate::{
    keys::Keys,
    parse::{Options, Tcp},
};

pub enum AckCheck {
    Valid(HandoffMeta),
    /// Signed by the key that last left the cookie's slot: a real cookie, too old.
    Expired,
    Bad,
}

/// Checks the cookie with the current epoch's key, then the previous epoch's (no bit of the
/// cookie names its key: a bad ACK costs two MACs, and a third to tell an expired one apart).
#[inline(always)]
pub fn check(keys: &impl Keys, t: &Tcp, o: &Options) -> AckCheck {
    let cookie_isn = t.ack.wrapping_sub(1);
    let client_isn = t.seq.wrapping_sub(1);
    let flow = t.flow();
    let tsecr = o.ts.map(|(_, ecr)| ecr);
    let epoch = keys.current_epoch();
    // The current key's slot first (most ACKs answer SYN-ACKs of this epoch), then the other.
    let first = cookie::slot_of_epoch(epoch);
    for slot in [first, first ^ 1] {
        if let Some(key) = keys.key(slot)
            && cookie::epoch_valid(key.epoch, epoch)
            && let Some(a) = cookie::check(&key, &flow, client_isn, cookie_isn, tsecr)
        {
            let (tsval, tsecr) = o.ts.unwrap_or((0, 0));
            let flags = if a.sack { META_SACK } else { 0 }
                | if o.ts.is_some() { META_TS } else { 0 }
                | if a.ecn { META_ECN } else { 0 };
            return AckCheck::Valid(HandoffMeta {
                magic: HANDOFF_MAGIC,
                tsval,
                tsecr,
                mss: a.mss,
                snd_wscale: a.wscale,
                flags,
            });
        }
    }
    if let Some(old) = keys.key(KEY_RETIRED)
        && old.epoch != 0
        && cookie::check(&old, &flow, client_isn, cookie_isn, tsecr).is_some()
    {
        return AckCheck::Expired;
    }
    AckCheck::Bad
}

/// `struct bpf_tcp_req_attrs` for a checked ACK. `rcv_wscale` is the shift our SYN-ACK offered.
#[inline(always)]
pub fn req_attrs(cfg: &Config, m: &HandoffMeta) -> ReqAttrs {
    let ws = m.snd_wscale != WSCALE_NONE;
    ReqAttrs {
        rcv_tsval: m.tsval,
        rcv_tsecr: m.tsecr,
        mss: m.mss,
        rcv_wscale: if ws { cfg.wscale } else { 0 },
        snd_wscale: if ws { m.snd_wscale } else { 0 },
        ecn_ok: (m.flags & META_ECN != 0) as u8,
        wscale_ok: ws as u8,
        sack_ok: (m.flags & META_SACK != 0) as u8,
        tstamp_ok: (m.flags & META_TS != 0) as u8,
        usec_ts_ok: 0,
        reserved: [0; 3],
    }
}

/// Puts the decoded attributes in front of the frame for TC; false when the driver has no room
/// for metadata (TC must then re-check the cookie itself).
#[inline(always)]
pub fn hand_to_tc(ctx: &XdpContext, m: HandoffMeta) -> bool {
    const LEN: usize = core::mem::size_of::<HandoffMeta>();
    // SAFETY: helper call on our own context; pointers re-read below.
    if unsafe { bpf_xdp_adjust_meta(ctx.ctx, -(LEN as i32)) } != 0 {
        return false;
    }
    let (meta, data) = (ctx.metadata(), ctx.data());
    if meta + LEN > data {
        return false;
    }
    // SAFETY: [meta, meta + LEN) is the metadata area, checked against data above.
    unsafe { *(meta as *mut HandoffMeta) = m };
    true
}
