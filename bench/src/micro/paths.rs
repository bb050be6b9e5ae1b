//! The timed paths: the shield's beside the reflector and pass-only, and the SYN path's steps.

use syncookie_common::{lab::prog, maps::PROG_XDP};

use super::{XDP_DROP, XDP_PASS, XDP_TX, runner::Case, setup::Frames};

/// The SYN path (the shield's, the reflector's, the shield's modules with one step left out,
/// the MAC and parsing alone), pass-only, and the shield's ACK and established paths.
pub(super) fn cases(f: &Frames) -> Vec<Case> {
    let Frames {
        syn,
        syn6,
        valid,
        bad,
        est,
    } = *f;
    let synack = "SYN -> SYN-ACK";
    vec![
        Case::xdp(synack, PROG_XDP, syn, XDP_TX).fresh(),
        Case::xdp("SYN -> SYN-ACK (IPv6)", PROG_XDP, syn6, XDP_TX).fresh6(),
        Case::xdp("SYN -> SYN-ACK (budgets on)", PROG_XDP, syn, XDP_TX)
            .fresh()
            .with_budgets(),
        Case::xdp("SYN -> SYN-ACK (rp_filter on)", PROG_XDP, syn, XDP_TX)
            .fresh()
            .with_rp_filter(),
        Case::xdp(synack, prog::REFLECT, syn, XDP_TX).fresh(),
        Case::xdp(synack, prog::SYN_ALL, syn, XDP_TX).fresh(),
        Case::xdp(synack, prog::SYN_NO_LOOKUP, syn, XDP_TX).fresh(),
        Case::xdp(synack, prog::SYN_NO_CSUM, syn, XDP_TX).fresh(),
        Case::xdp("SYN", prog::SYN_MAC, syn, XDP_DROP),
        Case::xdp("SYN", prog::SYN_PARSE, syn, XDP_DROP),
        Case::xdp("pass", prog::PASS, syn, XDP_PASS),
        Case::xdp("valid ACK", PROG_XDP, valid, XDP_PASS),
        Case::xdp("bad ACK", PROG_XDP, bad, XDP_DROP),
        Case::xdp("established", PROG_XDP, est, XDP_PASS),
    ]
}
