//! The comparisons: ACKs with lookup or cookie first, XDP metadata against a TC re-check.

use syncookie_common::lab::prog;

use super::{XDP_DROP, XDP_PASS, runner::Case, setup::Frames};

/// The lab's ACK paths in both orders, and the handoff's two ways (`lab_ack_meta` and
/// `lab_ack_no_meta` in XDP, `lab_tc_meta` and `lab_tc_recheck` in TC).
pub(super) fn cases(f: &Frames) -> Vec<Case> {
    let Frames {
        valid, bad, est, ..
    } = *f;
    let (lookup, cookie) = (prog::ACK_LOOKUP_FIRST, prog::ACK_COOKIE_FIRST);
    vec![
        Case::xdp("valid ACK", lookup, valid, XDP_PASS),
        Case::xdp("valid ACK", cookie, valid, XDP_PASS),
        Case::xdp("bad ACK", lookup, bad, XDP_DROP),
        Case::xdp("bad ACK", cookie, bad, XDP_DROP),
        Case::xdp("established", lookup, est, XDP_PASS),
        Case::xdp("established", cookie, est, XDP_PASS),
        // Live frames: a valid cookie's verdict is XDP_DROP there (XDP_PASS would feed the
        // frame to the whole stack).
        Case::xdp("valid ACK", prog::ACK_META, valid, XDP_DROP).live(),
        Case::xdp("valid ACK", prog::ACK_NO_META, valid, XDP_DROP).live(),
        Case::tc("valid ACK", prog::TC_META, valid),
        Case::tc("valid ACK", prog::TC_RECHECK, valid),
    ]
}
