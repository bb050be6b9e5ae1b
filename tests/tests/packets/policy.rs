//! The admin's policy in SC_CONFIG: modes (always, auto, monitor), the SYN-ACK budget per
//! client prefix, and the budget of bad ACKs left to the kernel to reset.

use syncookie_common::{
    maps::{Config, Mode},
    stats::Counter,
};
use syncookie_tests::require_root;

use crate::{
    CONFIG, KEY1, XDP_DROP, XDP_PASS, XDP_TX,
    expect::{cookie_for, handshake_ack, linux_attrs, linux_syn, synack_of_linux_syn},
    harness::{Shield, assert_action, assert_untouched},
};

fn shield(f: impl FnOnce(&mut Config)) -> Shield {
    let mut c = CONFIG;
    f(&mut c);
    Shield::with_config(c)
}

/// Monitor: SYNs and bad ACKs pass untouched and are counted as what would have been done; a
/// valid cookie (a handshake begun before the switch) still gets its metadata.
#[test]
fn monitor_answers_and_drops_nothing() {
    require_root!();
    let always = shield(|_| {});
    let _l = always.listen();
    let (isn, tsval) = synack_of_linux_syn(&always);
    drop(_l);
    drop(always);

    let s = shield(|c| c.mode = Mode::Monitor as u8);
    let _l = s.listen();
    let syn = linux_syn().frame();
    assert_untouched(&s.xdp(&syn), &syn, XDP_PASS, "a SYN in monitor mode");
    let bad = handshake_ack(&linux_syn(), isn ^ 0x8000_0000, Some(tsval)).frame();
    assert_untouched(&s.xdp(&bad), &bad, XDP_PASS, "a bad ACK in monitor mode");
    let valid = handshake_ack(&linux_syn(), isn, Some(tsval)).frame();
    let run = s.xdp(&valid);
    assert_action(&run, XDP_PASS, "a valid ACK in monitor mode");
    assert_eq!(run.meta.len(), 16, "a valid cookie still gets its metadata");
    s.assert_counters(
        &[
            (Counter::SynSeen, 1),
            (Counter::MonitorSynack, 1),
            (Counter::MonitorDrop, 1),
            (Counter::AckValid, 1),
        ],
        "monitor mode",
    );
}

/// Auto: SYNs go to the kernel until their rate (per second and CPU) reaches the threshold;
/// from there on they get cookies.
#[test]
fn auto_engages_at_the_threshold() {
    require_root!();
    let s = shield(|c| {
        c.mode = Mode::Auto as u8;
        c.engage_per_sec = 3;
    });
    let _l = s.listen();
    let syn = linux_syn().frame();
    // The test runs may straddle a second: then the count starts again. Two rounds of five
    // are enough for three in one second.
    let mut verdicts = Vec::new();
    for _ in 0..10 {
        verdicts.push(s.xdp(&syn).action);
    }
    assert_eq!(verdicts[0], XDP_PASS, "the first SYN of a quiet time");
    assert_eq!(
        verdicts[9], XDP_TX,
        "engaged after the threshold: {verdicts:?}"
    );
    let idle = verdicts.iter().filter(|v| **v == XDP_PASS).count() as u64;
    s.assert_counters(
        &[
            (Counter::SynSeen, 10),
            (Counter::SynIdle, idle),
            (Counter::SynackSent, 10 - idle),
        ],
        "auto mode",
    );
}

/// One client /24 gets at most its SYN-ACK budget; another /24 is still answered.
#[test]
fn synack_budget_caps_one_prefix() {
    require_root!();
    let s = shield(|c| c.synack_per_prefix = 2);
    let _l = s.listen();
    let mut tx = 0;
    for i in 0..5u8 {
        let mut seg = linux_syn();
        seg.src = [127, 0, 0, 10 + i];
        tx += (s.xdp(&seg.frame()).action == XDP_TX) as u64;
    }
    // Two per second: five SYNs within a second boundary give at most four.
    assert!(
        (2..=4).contains(&tx),
        "{tx} SYN-ACKs to one /24 with a budget of 2"
    );
    let mut other = linux_syn();
    other.src = [127, 0, 1, 10];
    assert_action(&s.xdp(&other.frame()), XDP_TX, "a SYN from another /24");
    s.assert_counters(
        &[
            (Counter::SynSeen, 6),
            (Counter::SynackSent, tx + 1),
            (Counter::SynDroppedBudget, 5 - tx),
        ],
        "the SYN-ACK budget",
    );
}

/// IPv6: one client /48 gets at most its budget, whatever its lower bits; another /48 (differing
/// in bits 32..47 only) is still answered, and an IPv4 client is counted apart.
#[test]
fn synack_budget_caps_one_ipv6_prefix() {
    require_root!();
    let s = shield(|c| c.synack_per_prefix = 2);
    s.enable_v6();
    let (_l, _l6) = (s.listen(), s.listen6());
    let from = |last: [u8; 2], word2: u8| {
        let mut seg = linux_syn().v6();
        let ip6 = seg.ip6.as_mut().expect("IPv6");
        ip6.src[5] = word2;
        ip6.src[14..].copy_from_slice(&last);
        seg
    };
    let mut tx = 0;
    for i in 0..5u8 {
        // Same /48, lower bits (interface id and subnet) all different.
        let mut seg = from([i, 1], 0);
        seg.ip6.as_mut().expect("IPv6").src[7] = i;
        tx += (s.xdp(&seg.frame()).action == XDP_TX) as u64;
    }
    assert!(
        (2..=4).contains(&tx),
        "{tx} SYN-ACKs to one /48 with a budget of 2"
    );
    assert_action(
        &s.xdp(&from([0, 1], 9).frame()),
        XDP_TX,
        "a SYN from another /48",
    );
    assert_action(&s.xdp(&linux_syn().frame()), XDP_TX, "an IPv4 SYN");
}

/// Bad ACKs: the first ones of a second go to the kernel (which resets them), the rest are
/// dropped.
#[test]
fn bad_acks_beyond_the_reset_budget_are_dropped() {
    require_root!();
    let s = shield(|c| c.rst_per_sec = 2);
    let _l = s.listen();
    let c = cookie_for(&KEY1, &linux_syn(), linux_attrs(), false);
    let bad = handshake_ack(&linux_syn(), c.isn ^ 0x4000_0000, None).frame();
    let mut passed = 0;
    for _ in 0..6 {
        let run = s.xdp(&bad);
        assert!(run.action == XDP_PASS || run.action == XDP_DROP);
        assert_eq!(run.frame, bad, "untouched");
        passed += (run.action == XDP_PASS) as u64;
    }
    assert!(
        (2..=4).contains(&passed),
        "{passed} of 6 bad ACKs passed with a budget of 2"
    );
    s.assert_counters(
        &[
            (Counter::AckReset, passed),
            (Counter::AckBadCookie, 6 - passed),
        ],
        "bad ACKs and the reset budget",
    );
}
