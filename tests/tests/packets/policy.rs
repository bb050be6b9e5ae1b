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
    harness::{Shield, assert_action, assert_untouched, in_one_budget_second},
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
/// from there on they get cookies. One CPU, one second: exactly the first two SYNs pass.
#[test]
fn auto_engages_at_the_threshold() {
    require_root!();
    let syn = linux_syn().frame();
    let ((s, _l), verdicts) = in_one_budget_second(
        || {
            let s = shield(|c| {
                c.mode = Mode::Auto as u8;
                c.engage_per_sec = 3;
            });
            let l = s.listen();
            (s, l)
        },
        |(s, _)| (0..10).map(|_| s.xdp(&syn).action).collect::<Vec<u32>>(),
    );
    let want: Vec<u32> = (0..10)
        .map(|i| if i < AUTO_IDLE { XDP_PASS } else { XDP_TX })
        .collect();
    assert_eq!(verdicts, want, "auto with a threshold of 3 SYNs a second");
    s.assert_counters(
        &[
            (Counter::SynSeen, 10),
            (Counter::SynIdle, AUTO_IDLE as u64),
            (Counter::SynackSent, 10 - AUTO_IDLE as u64),
        ],
        "auto mode",
    );
}

/// SYNs a threshold of 3 a second leaves to the kernel: the third of a second reaches the
/// threshold and gets a cookie.
const AUTO_IDLE: usize = 2;

/// One client /24 gets exactly its SYN-ACK budget in a second; another /24 is still answered.
#[test]
fn synack_budget_caps_one_prefix() {
    require_root!();
    let ((s, _l), tx) = in_one_budget_second(
        || {
            let s = shield(|c| c.synack_per_prefix = 2);
            let l = s.listen();
            (s, l)
        },
        |(s, _)| {
            let mut tx = Vec::new();
            for i in 0..5u8 {
                let mut seg = linux_syn();
                seg.src = [127, 0, 0, 10 + i];
                tx.push(s.xdp(&seg.frame()).action == XDP_TX);
            }
            let mut other = linux_syn();
            other.src = [127, 0, 1, 10];
            assert_action(&s.xdp(&other.frame()), XDP_TX, "a SYN from another /24");
            tx
        },
    );
    assert_eq!(
        tx,
        [true, true, false, false, false],
        "a budget of 2 a second"
    );
    s.assert_counters(
        &[
            (Counter::SynSeen, 6),
            (Counter::SynackSent, 3),
            (Counter::SynDroppedBudget, 3),
        ],
        "the SYN-ACK budget",
    );
}

/// `--synack-rate`: the SYN-ACK budget in all (per CPU and second), whatever the clients'
/// prefixes: exactly the budget's first SYNs of a second are answered, the rest dropped.
#[test]
fn synack_budget_in_all_caps_every_prefix() {
    require_root!();
    let ((s, _l), tx) = in_one_budget_second(
        || {
            let s = shield(|c| c.synack_per_sec = 2);
            let l = s.listen();
            (s, l)
        },
        |(s, _)| {
            (0..5u8)
                .map(|i| {
                    // A /24 of its own each: the budget in all is what stops them.
                    let mut seg = linux_syn();
                    seg.src = [127, 0, 10 + i, 10];
                    s.xdp(&seg.frame()).action
                })
                .collect::<Vec<u32>>()
        },
    );
    assert_eq!(
        tx,
        [XDP_TX, XDP_TX, XDP_DROP, XDP_DROP, XDP_DROP],
        "a budget in all of 2 a second"
    );
    s.assert_counters(
        &[
            (Counter::SynSeen, 5),
            (Counter::SynackSent, 2),
            (Counter::SynDroppedBudget, 3),
        ],
        "the SYN-ACK budget in all",
    );
}

/// IPv6: one client /48 gets exactly its budget, whatever its lower bits; another /48
/// (differing in bits 32..47 only) is still answered, and an IPv4 client is counted apart.
#[test]
fn synack_budget_caps_one_ipv6_prefix() {
    require_root!();
    let from = |last: [u8; 2], word2: u8| {
        let mut seg = linux_syn().v6();
        let ip6 = seg.ip6.as_mut().expect("IPv6");
        ip6.src[5] = word2;
        ip6.src[14..].copy_from_slice(&last);
        seg
    };
    let (_shield, verdicts) = in_one_budget_second(
        || {
            let s = shield(|c| c.synack_per_prefix = 2);
            s.enable_v6();
            let l = (s.listen(), s.listen6());
            (s, l)
        },
        |(s, _)| {
            let mut v = Vec::new();
            for i in 0..5u8 {
                // Same /48, lower bits (interface id and subnet) all different.
                let mut seg = from([i, 1], 0);
                seg.ip6.as_mut().expect("IPv6").src[7] = i;
                v.push(s.xdp(&seg.frame()).action);
            }
            v.push(s.xdp(&from([0, 1], 9).frame()).action);
            v.push(s.xdp(&linux_syn().frame()).action);
            v
        },
    );
    assert_eq!(
        verdicts,
        [XDP_TX, XDP_TX, XDP_DROP, XDP_DROP, XDP_DROP, XDP_TX, XDP_TX],
        "five SYNs from one /48 (budget 2), one from another /48, one IPv4"
    );
}

/// Bad ACKs: exactly the budget's first ones of a second go to the kernel (which resets them),
/// the rest are dropped.
#[test]
fn bad_acks_beyond_the_reset_budget_are_dropped() {
    require_root!();
    let c = cookie_for(&KEY1, &linux_syn(), linux_attrs(), false);
    let bad = handshake_ack(&linux_syn(), c.isn ^ 0x4000_0000, None).frame();
    let ((s, _l), passed) = in_one_budget_second(
        || {
            let s = shield(|c| c.rst_per_sec = 2);
            let l = s.listen();
            (s, l)
        },
        |(s, _)| {
            let mut passed = Vec::new();
            for _ in 0..6 {
                let run = s.xdp(&bad);
                assert!(run.action == XDP_PASS || run.action == XDP_DROP);
                assert_eq!(run.frame, bad, "untouched");
                passed.push(run.action == XDP_PASS);
            }
            passed
        },
    );
    assert_eq!(
        passed,
        [true, true, false, false, false, false],
        "a reset budget of 2 a second"
    );
    s.assert_counters(
        &[(Counter::AckReset, 2), (Counter::AckBadCookie, 4)],
        "bad ACKs and the reset budget",
    );
}
