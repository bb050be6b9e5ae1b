//! Forgery odds, counted exactly: ACKs through the shield's own cookie check (`lab_forge_ack`
//! runs `ack::check`) with both key slots live, as right after a rotation. The genuine ACK
//! passes; of all the values of a group of checked bits (the ISN's MAC bits, its attribute
//! bits, the TSecr's MAC byte) exactly one passes, so a blind guess of them passes with
//! probability 2^-bits.

use aya::{
    Ebpf,
    maps::{Array, MapData},
    programs::{TestRun, TestRunOptions, Xdp},
};
use syncookie_common::{
    cookie,
    lab::{LabCounter, forge, map, prog},
    maps::{KEY_RETIRED, Key},
};
use syncookie_tests::{LAB_OBJECT, interrupted, lab_counter, require_root};

use crate::{
    KEY1,
    expect::{cookie_for, handshake_ack, key, linux_attrs, linux_syn},
};

/// The cookie's low bits that carry, without timestamps, the MSS index and the SYN's options
/// (the layout in syncookie-common/src/cookie.rs); the 23 above them are MAC bits. With
/// timestamps only the low 6 carry options and the 26 above them are MAC bits.
const ATTR_BITS: u32 = 9;
const MAC_BITS: u32 = 32 - ATTR_BITS;
const OPT_BITS: u32 = 6;

/// Runs `frame` through `lab_forge_ack` `tries` times in `mode` (`forge::*`, XOR of try `i` at
/// bit `shift`); returns how many passed the check.
fn passed(frame: &[u8], mode: u32, shift: u32, tries: u32) -> u64 {
    let mut e = Ebpf::load(LAB_OBJECT).expect("lab object");
    {
        let mut keys: Array<&mut MapData, Key> =
            Array::try_from(e.map_mut(map::KEYS).unwrap()).unwrap();
        // Epoch 2 current (slot 0), epoch 1 still valid (slot 1): both slots accept. No bit
        // of the cookie names its key, so the check tries both, and a sweep of 2^n values
        // would also find about one value that passes under the other key by chance: sweeps
        // run with the current key alone, and the odds double while two keys are live.
        keys.set(0, key(2), 0).unwrap();
        let other = if mode == forge::GENUINE {
            KEY1
        } else {
            Key::default()
        };
        keys.set(1, other, 0).unwrap();
        keys.set(KEY_RETIRED, Key::default(), 0).unwrap();
        let mut epoch: Array<&mut MapData, u64> =
            Array::try_from(e.map_mut(map::EPOCH).unwrap()).unwrap();
        epoch.set(0, 2, 0).unwrap();
        let mut f: Array<&mut MapData, u32> =
            Array::try_from(e.map_mut(map::FORGE).unwrap()).unwrap();
        f.set(forge::MODE, mode, 0).unwrap();
        f.set(forge::SHIFT, shift, 0).unwrap();
    }
    let p: &mut Xdp = e.program_mut(prog::FORGE_ACK).unwrap().try_into().unwrap();
    p.load().expect("load lab_forge_ack");
    let mut done = 0;
    while done < tries as u64 {
        let p: &Xdp = e.program(prog::FORGE_ACK).unwrap().try_into().unwrap();
        match p.test_run(TestRunOptions {
            data_in: Some(frame),
            repeat: tries - done as u32,
            ..Default::default()
        }) {
            Ok(r) => assert_eq!(r.return_value, 1, "XDP_DROP after every try"),
            // A signal cut the long run short: the tries made are counted; run the rest.
            Err(err) if interrupted(&err) => {}
            Err(err) => panic!("test run: {err}"),
        }
        done = lab_counter(&e, LabCounter::ForgeTries);
    }
    assert_eq!(done, tries as u64);
    lab_counter(&e, LabCounter::Forged)
}

/// Without timestamps the ISN holds 23 MAC bits and 9 attribute bits, all covered by the MAC:
/// of the 2^23 MAC values exactly one passes, and of the 2^9 attribute values (MSS index and
/// options) exactly one with the MAC they were sent with. Every attribute value decodes, so a
/// blind ACK passes with probability 2^9 / 2^32 = 2^-23 per live key (2^-22 while the
/// previous epoch's key is live too). With timestamps the ISN holds 26 MAC bits (the 23 above
/// and the 3 below them are swept apart: a 2^26 sweep takes too long) and the TSecr's low
/// byte 8 more: of its 256 values exactly one passes (2^-34 per key, 2^-33 with two).
#[test]
fn every_checked_bit_counts_exactly_once() {
    require_root!();
    let syn = linux_syn();
    let plain = cookie_for(&key(2), &syn, linux_attrs(), false);
    let stamped = cookie_for(&key(2), &syn, linux_attrs(), true);
    let no_ts = handshake_ack(&syn, plain.isn, None).frame();
    let ts = handshake_ack(&syn, stamped.isn, Some(cookie::tsval(0, &stamped))).frame();
    let cases: [(&str, &[u8], u32, u32, u32); 7] = [
        ("the genuine ACK", &no_ts, forge::GENUINE, 0, 1),
        ("the genuine ACK with timestamps", &ts, forge::GENUINE, 0, 1),
        (
            "the ISN's MAC bits",
            &no_ts,
            forge::SWEEP_COOKIE,
            ATTR_BITS,
            1 << MAC_BITS,
        ),
        (
            "the ISN's attribute bits",
            &no_ts,
            forge::SWEEP_COOKIE,
            0,
            1 << ATTR_BITS,
        ),
        (
            "the ISN's MAC bits, timestamps",
            &ts,
            forge::SWEEP_COOKIE,
            ATTR_BITS,
            1 << MAC_BITS,
        ),
        (
            "the ISN's low MAC bits, timestamps",
            &ts,
            forge::SWEEP_COOKIE,
            OPT_BITS,
            1 << (ATTR_BITS - OPT_BITS),
        ),
        ("the TSecr's MAC byte", &ts, forge::SWEEP_TSECR, 0, 256),
    ];
    for (what, frame, mode, shift, tries) in cases {
        let n = passed(frame, mode, shift, tries);
        eprintln!("{what}: {n} of {tries} passed");
        assert_eq!(n, 1, "{what}: {n} of {tries} values passed the check");
    }
}
