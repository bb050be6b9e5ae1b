use proptest::prelude::*;

use super::*;

fn key(k0: u64, k1: u64, epoch: u64) -> Key {
    Key { k0, k1, epoch }
}

prop_compose! {
    fn flows()(v6: bool, s: [u32; 4], d: [u32; 4], sport: u16, dport: u16) -> Flow {
        if v6 {
            Flow { saddr: s, daddr: d, sport, dport, v6 }
        } else {
            Flow::v4(s[0], d[0], sport, dport)
        }
    }
}

prop_compose! {
    fn syn_attrs()(mss in 1u16.., ws in prop::option::of(0u8..=20), sack: bool, ecn: bool)
        -> SynAttrs {
        SynAttrs { mss, wscale: wscale_field(ws), sack, ecn }
    }
}

proptest! {
    /// With timestamps, the socket gets the client's MSS exactly; without, the table entry
    /// at or below it, or no cookie at all below the table.
    #[test]
    fn encode_then_check_returns_the_inputs(
        k0: u64, k1: u64, epoch in 1u64..1 << 40,
        flow in flows(), isn: u32, a in syn_attrs(), ts: bool, clock: u32,
    ) {
        let k = key(k0, k1, epoch);
        let Some(c) = encode(&k, &flow, isn, &a, ts) else {
            prop_assert!(!ts && mss_index(flow.v6, a.mss).is_none());
            return Ok(());
        };
        let tsecr = ts.then(|| tsval(clock, &c));
        let want = if ts {
            a
        } else {
            SynAttrs { mss: mss_rounded(flow.v6, a.mss).unwrap(), ..a }
        };
        prop_assert!(want.mss <= a.mss);
        prop_assert_eq!(check(&k, &flow, isn, c.isn, tsecr), Some(want));
    }

    #[test]
    fn any_input_bit_changes_the_mac(
        k0: u64, k1: u64, epoch in 1u64..1 << 40, flow in flows(), isn: u32,
        attrs in 0u32..512, ts: bool, field in 0usize..10, bit: u32,
    ) {
        let k = key(k0, k1, epoch);
        let base = mac(&k, &flow, isn, attrs, ts);
        let (mut k2, mut f2, mut isn2, mut attrs2, mut ts2) = (k, flow, isn, attrs, ts);
        // IPv4 hashes only address word 0 (the others are zero by construction).
        let words = if flow.v6 { 4 } else { 1 };
        let b = bit as usize;
        match field {
            0 => f2.saddr[b / 32 % words] ^= 1 << (b % 32),
            1 => f2.daddr[b / 32 % words] ^= 1 << (b % 32),
            2 => f2.sport ^= 1 << (b % 16),
            3 => f2.dport ^= 1 << (b % 16),
            4 => isn2 ^= 1 << (b % 32),
            5 => k2.epoch ^= 1 << (b % 40),
            6 => attrs2 ^= 1 << (b % 9),
            7 => ts2 = !ts2,
            8 => k2.k0 ^= 1 << (b % 64),
            _ => k2.k1 ^= 1 << (b % 64),
        }
        prop_assert_ne!(base, mac(&k2, &f2, isn2, attrs2, ts2));
    }

    #[test]
    fn a_wrong_cookie_or_timestamp_is_refused(
        k0: u64, k1: u64, flow in flows(), isn: u32, a in syn_attrs(), flip in 0u32..32,
    ) {
        let k = key(k0, k1, 7);
        let c = encode(&k, &flow, isn, &a, true).unwrap();
        let good_ts = tsval(123_456, &c);
        // Any flipped bit of the ISN (MAC or options) is caught...
        prop_assert_eq!(check(&k, &flow, isn, c.isn ^ (1 << flip), Some(good_ts)), None);
        // ...so is a flipped MAC bit in the echoed TSval, and the wrong key or epoch.
        prop_assert_eq!(check(&k, &flow, isn, c.isn, Some(good_ts ^ (1 << (flip % 8)))), None);
        prop_assert_eq!(check(&key(k0 ^ 1, k1, 7), &flow, isn, c.isn, Some(good_ts)), None);
        prop_assert_eq!(check(&key(k0, k1, 8), &flow, isn, c.isn, Some(good_ts)), None);
        // Stripping the timestamps changes the MAC input too.
        prop_assert_eq!(check(&k, &flow, isn, c.isn, None), None);
        // The clock byte is not checked: any time of the SYN-ACK's is the same cookie.
        let later = check(&k, &flow, isn, c.isn, Some(good_ts ^ (1 << (8 + flip % 8))));
        prop_assert_eq!(later.map(|x| x.mss), Some(a.mss));
    }

    /// Without timestamps every ISN bit is checked too (MAC, MSS index, options).
    #[test]
    fn a_wrong_cookie_without_timestamps_is_refused(
        k0: u64, k1: u64, flow in flows(), isn: u32, a in syn_attrs(), flip in 0u32..32,
    ) {
        let k = key(k0, k1, 7);
        prop_assume!(mss_index(flow.v6, a.mss).is_some());
        let c = encode(&k, &flow, isn, &a, false).unwrap();
        prop_assert!(check(&k, &flow, isn, c.isn, None).is_some());
        prop_assert_eq!(check(&k, &flow, isn, c.isn ^ (1 << flip), None), None);
    }
}

#[test]
fn mss_index_takes_the_largest_entry_not_above() {
    assert_eq!(mss_index(false, 1460), Some(6));
    assert_eq!(mss_index(false, 9000), Some(7));
    assert_eq!(mss_index(false, 1459), Some(5));
    assert_eq!(mss_index(false, 1300), Some(1));
    assert_eq!(mss_index(false, 536), Some(0));
    assert_eq!(mss_index(false, 535), None);
    assert_eq!(mss_index(true, 8940), Some(7));
    assert_eq!(mss_index(true, 1440), Some(6));
    assert_eq!(mss_index(true, 1280), Some(1));
    assert_eq!(mss_index(true, 1219), None);
    assert_eq!(mss_rounded(false, 1400), Some(1400));
    assert_eq!(mss_rounded(false, 500), None);
}

/// Never less than the kernel's own cookies give (its tables are subsets of ours).
#[test]
fn tables_contain_the_kernels() {
    for m in [536, 1300, 1440, 1460] {
        assert!(MSS_TABLE_V4.contains(&m));
    }
    for m in [1220, 1420, 1440, 8940] {
        assert!(MSS_TABLE_V6.contains(&m));
    }
    assert!(MSS_TABLE_V4.is_sorted() && MSS_TABLE_V6.is_sorted());
}

#[test]
fn wscale_is_clamped_and_none_is_kept() {
    assert_eq!(wscale_field(None), WSCALE_NONE);
    assert_eq!(wscale_field(Some(7)), 7);
    assert_eq!(wscale_field(Some(15)), MAX_WSCALE);
}

#[test]
fn epochs_are_valid_for_their_own_and_the_next() {
    assert!(epoch_valid(5, 5));
    assert!(epoch_valid(5, 6));
    assert!(!epoch_valid(5, 7));
    assert!(!epoch_valid(6, 5));
    assert!(!epoch_valid(0, 0));
    assert!(!epoch_valid(0, 1));
}

#[test]
fn tsval_takes_the_word_and_the_clock_byte() {
    let c = Cookie {
        isn: 0,
        ts_word: 0x5b40_00ab,
        ts_off: 0x10,
    };
    assert_eq!(tsval(0x1234_56f8, &c), 0x5b40_08ab);
}

/// Two connections from the same client with the same MSS have different TSvals: the MSS
/// half is masked per connection.
#[test]
fn tsvals_differ_per_connection() {
    let k = key(1, 2, 3);
    let a = SynAttrs {
        mss: 1460,
        ..Default::default()
    };
    let c1 = encode(&k, &Flow::v4(1, 2, 1000, 80), 5, &a, true).unwrap();
    let c2 = encode(&k, &Flow::v4(1, 2, 1001, 80), 5, &a, true).unwrap();
    assert_ne!(c1.ts_word >> 16, c2.ts_word >> 16);
}
