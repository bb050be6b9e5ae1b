//! The comparisons: ACKs with lookup or cookie first, XDP metadata against a TC re-check.

use super::{XDP_DROP, XDP_PASS, runner::Case, setup::Frames};

/// The lab's ACK paths in both orders, and the handoff's two ways (`lab_ack_meta` and
/// `lab_ack_no_meta` in XDP, `lab_tc_meta` and `lab_tc_recheck` in TC).
pub(super) fn cases(f: &Frames) -> Vec<Case> {
    let Frames {
        valid, bad, est, ..
    } = *f;
    [
        (
            "valid ACK",
            "lab_ack_lookup_first",
            false,
            false,
            false,
            valid,
            XDP_PASS,
        ),
        (
            "valid ACK",
            "lab_ack_cookie_first",
            false,
            false,
            false,
            valid,
            XDP_PASS,
        ),
        (
            "bad ACK",
            "lab_ack_lookup_first",
            false,
            false,
            false,
            bad,
            XDP_DROP,
        ),
        (
            "bad ACK",
            "lab_ack_cookie_first",
            false,
            false,
            false,
            bad,
            XDP_DROP,
        ),
        (
            "established",
            "lab_ack_lookup_first",
            false,
            false,
            false,
            est,
            XDP_PASS,
        ),
        (
            "established",
            "lab_ack_cookie_first",
            false,
            false,
            false,
            est,
            XDP_PASS,
        ),
        (
            "valid ACK",
            "lab_ack_meta",
            false,
            true,
            false,
            valid,
            XDP_DROP,
        ),
        (
            "valid ACK",
            "lab_ack_no_meta",
            false,
            true,
            false,
            valid,
            XDP_DROP,
        ),
        ("valid ACK", "lab_tc_meta", true, false, false, valid, 0),
        ("valid ACK", "lab_tc_recheck", true, false, false, valid, 0),
    ]
    .map(Case::from)
    .into()
}
