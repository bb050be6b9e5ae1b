//! The cost table: the shield's own program with one stage left out at a time (loaded with
//! `SC_SKIP`, sharing the pinned maps), beside the whole, in the same rounds.

use syncookie_common::maps::{PROG_XDP, stage};

use super::{XDP_PASS, XDP_TX, runner::Case, setup::Frames};

/// A stage priced on a path: the path timed whole (`base`) and without the stage (`without`).
#[derive(Clone, Copy, Debug)]
pub struct Priced {
    pub stage: u32,
    pub name: &'static str,
    pub base: &'static str,
    pub without: &'static str,
}

const SYN: &str = "SYN -> SYN-ACK, not sent";
const SYN_BUDGETS: &str = "SYN -> SYN-ACK, not sent (budgets on)";
const ACK: &str = "valid ACK";
const ACK_BUDGETS: &str = "valid ACK (budgets on)";

/// The SYN path's stages (plain repeat behind `lab_syn_fresh`: XDP_TX, not transmitted).
pub const SYN_STAGES: &[Priced] = &[
    p(
        stage::CHECKSUM,
        "checksum check",
        SYN,
        "SYN -> SYN-ACK, not sent, without the checksum",
    ),
    p(
        stage::OPTIONS,
        "option walk",
        SYN,
        "SYN -> SYN-ACK, not sent, without the option walk",
    ),
    p(
        stage::MARTIAN,
        "martian and IP header checks",
        SYN,
        "SYN -> SYN-ACK, not sent, without the martian checks",
    ),
    p(
        stage::LOOKUP,
        "listener lookup",
        SYN,
        "SYN -> SYN-ACK, not sent, without the lookup",
    ),
    p(
        stage::LOCALITY,
        "locality (MAC, addresses, rp_filter off)",
        SYN,
        "SYN -> SYN-ACK, not sent, without locality",
    ),
    p(
        stage::BUDGET,
        "SYN-ACK budgets (on)",
        SYN_BUDGETS,
        "SYN -> SYN-ACK, not sent (budgets on), without the budgets",
    ),
    p(
        stage::RESEND,
        "resend table",
        SYN,
        "SYN -> SYN-ACK, not sent, without the resend table",
    ),
    p(
        stage::COUNTERS,
        "counter",
        SYN,
        "SYN -> SYN-ACK, not sent, without the counter",
    ),
];

/// The valid ACK's stages (plain repeat, XDP_PASS).
pub const ACK_STAGES: &[Priced] = &[
    p(
        stage::LOOKUP,
        "socket lookup",
        ACK,
        "valid ACK without the lookup",
    ),
    p(
        stage::RESEND,
        "resend table",
        ACK,
        "valid ACK without the resend table",
    ),
    p(
        stage::BUDGET,
        "budget refund and `auto` (budgets on)",
        ACK_BUDGETS,
        "valid ACK (budgets on) without the budgets",
    ),
    p(
        stage::METADATA,
        "metadata for TC",
        ACK,
        "valid ACK without the metadata",
    ),
    p(
        stage::COUNTERS,
        "counter",
        ACK,
        "valid ACK without the counter",
    ),
];

const fn p(stage: u32, name: &'static str, base: &'static str, without: &'static str) -> Priced {
    Priced {
        stage,
        name,
        base,
        without,
    }
}

/// Every set of stages a copy of the shield is loaded without.
pub(super) fn skips() -> Vec<u32> {
    let mut v: Vec<u32> = SYN_STAGES
        .iter()
        .chain(ACK_STAGES)
        .map(|s| s.stage)
        .collect();
    v.sort();
    v.dedup();
    v
}

pub(super) fn cases(f: &Frames) -> Vec<Case> {
    let mut v = vec![
        Case::xdp(SYN, PROG_XDP, f.syn, XDP_TX).fresh_plain(),
        Case::xdp(SYN_BUDGETS, PROG_XDP, f.syn, XDP_TX)
            .fresh_plain()
            .with_budgets(),
        Case::xdp(ACK_BUDGETS, PROG_XDP, f.valid, XDP_PASS).with_budgets(),
    ];
    for s in SYN_STAGES {
        let c = Case::xdp(s.without, PROG_XDP, f.syn, XDP_TX)
            .fresh_plain()
            .skipping(s.stage);
        v.push(if s.base == SYN_BUDGETS {
            c.with_budgets()
        } else {
            c
        });
    }
    for s in ACK_STAGES {
        let c = Case::xdp(s.without, PROG_XDP, f.valid, XDP_PASS).skipping(s.stage);
        v.push(if s.base == ACK_BUDGETS {
            c.with_budgets()
        } else {
            c
        });
    }
    v
}
