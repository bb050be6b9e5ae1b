//! Forgery odds, measured: random ACKs (what an attacker guessing blind sends) through the
//! shield's own cookie check (`lab_forge_ack` runs `ack::check` with a fresh random `ack`, and
//! TSecr, on every repetition) with both key slots live, as right after a rotation.

use aya::{
    Ebpf,
    maps::{Array, MapData},
    programs::{TestRun, TestRunOptions, Xdp},
};
use syncookie_common::{
    lab::{LabCounter, map, prog},
    maps::{KEY_RETIRED, Key},
};
use syncookie_tests::{LAB_OBJECT, interrupted, lab_counter, require_root};

use crate::{
    KEY1,
    expect::{handshake_ack, key, linux_syn},
};

/// Runs `tries` random forgeries of `frame`; returns how many passed the check.
fn forged(frame: &[u8], tries: u32) -> u64 {
    let mut e = Ebpf::load(LAB_OBJECT).expect("lab object");
    {
        let mut keys: Array<&mut MapData, Key> =
            Array::try_from(e.map_mut(map::KEYS).unwrap()).unwrap();
        // Epoch 2 current (slot 0), epoch 1 still valid (slot 1): both slots accept.
        keys.set(0, key(2), 0).unwrap();
        keys.set(1, KEY1, 0).unwrap();
        keys.set(KEY_RETIRED, Key::default(), 0).unwrap();
        let mut epoch: Array<&mut MapData, u64> =
            Array::try_from(e.map_mut(map::EPOCH).unwrap()).unwrap();
        epoch.set(0, 2, 0).unwrap();
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

/// Without timestamps a random ACK passes with probability 2^-23 (23 MAC bits in the ISN; the
/// 9 attribute bits decode to something whatever they are): 2^25 tries expect 4 forgeries.
/// With timestamps 8 more MAC bits ride in TSecr: 2^-31, none expected in 2^24 tries.
#[test]
fn random_acks_pass_as_rarely_as_documented() {
    require_root!();
    let syn = linux_syn();
    let no_ts = forged(&handshake_ack(&syn, 0, None).frame(), 1 << 25);
    let ts = forged(&handshake_ack(&syn, 0, Some(0)).frame(), 1 << 24);
    eprintln!(
        "forgeries: {no_ts} of 2^25 random ACKs without timestamps (2^-23 expects 4), \
         {ts} of 2^24 with timestamps (2^-31 expects 0.008)"
    );
    // Poisson(4) exceeds 20 with probability 1e-8; a check of 2^-20 would give 32.
    assert!(
        no_ts <= 20,
        "{no_ts} forgeries in 2^25 tries without timestamps"
    );
    assert!(ts <= 2, "{ts} forgeries in 2^24 tries with timestamps");
}
