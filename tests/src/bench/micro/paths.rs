//! The timed paths: the shield's beside the reflector and pass-only, and the SYN path's steps.

use syncookie_common::maps::PROG_XDP;

use super::{XDP_DROP, XDP_PASS, XDP_TX, runner::Case, setup::Frames};

/// The SYN path (the shield's, the reflector's, the shield's modules with one step left out,
/// the MAC and parsing alone), pass-only, and the shield's ACK and established paths.
pub(super) fn cases(f: &Frames) -> Vec<Case> {
    let Frames {
        syn,
        valid,
        bad,
        est,
    } = *f;
    [
        ("SYN -> SYN-ACK", PROG_XDP, false, true, true, syn, XDP_TX),
        (
            "SYN -> SYN-ACK",
            "lab_reflect",
            false,
            true,
            true,
            syn,
            XDP_TX,
        ),
        (
            "SYN -> SYN-ACK",
            "lab_syn_all",
            false,
            true,
            true,
            syn,
            XDP_TX,
        ),
        (
            "SYN -> SYN-ACK",
            "lab_syn_no_lookup",
            false,
            true,
            true,
            syn,
            XDP_TX,
        ),
        (
            "SYN -> SYN-ACK",
            "lab_syn_no_csum",
            false,
            true,
            true,
            syn,
            XDP_TX,
        ),
        ("SYN", "lab_syn_mac", false, false, false, syn, XDP_DROP),
        ("SYN", "lab_syn_parse", false, false, false, syn, XDP_DROP),
        ("pass", "lab_pass", false, false, false, syn, XDP_PASS),
        ("valid ACK", PROG_XDP, false, false, false, valid, XDP_PASS),
        ("bad ACK", PROG_XDP, false, false, false, bad, XDP_DROP),
        ("established", PROG_XDP, false, false, false, est, XDP_PASS),
    ]
    .map(Case::from)
    .into()
}
