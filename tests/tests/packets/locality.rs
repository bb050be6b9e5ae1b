//! Locality: the shield answers or drops only what this host would accept itself. A
//! wildcard listener matches any destination, so a SYN or a bad ACK for another host (a frame
//! for another MAC, or a destination that does not route locally) must pass untouched, as it
//! does on a router or a host bridging VMs.

use syncookie_common::stats::Counter;
use syncookie_tests::{frames::Segment, require_root};

use crate::{
    CLIENT_PORT, KEY1, PORT, XDP_DROP, XDP_PASS, XDP_TX,
    expect::{
        assert_synack_for, cookie_for, handshake_ack, key, linux_attrs, linux_syn, linux_want,
    },
    harness::{Shield, WIRE_CLIENT, WIRE_IP, assert_action, assert_untouched},
};

/// A destination no route of the test's namespace makes local.
const FAR: [u8; 4] = [10, 99, 0, 5];
/// A MAC that no interface of the namespace has, broadcast, and an IPv4 multicast MAC.
const OTHER_MACS: [[u8; 6]; 3] = [
    [0x02, 0, 0, 0, 0, 0x99],
    [0xff; 6],
    [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01],
];

#[test]
fn syn_to_a_destination_that_is_not_local_passes_untouched() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen_any();
    let mut syn = linux_syn();
    syn.dst = FAR;
    let input = syn.frame();
    let run = s.xdp(&input);
    assert_untouched(&run, &input, XDP_PASS, "a SYN to 10.99.0.5 (not local)");
    s.assert_counters(
        &[(Counter::SynSeen, 1), (Counter::NotLocal, 1)],
        "a SYN to a destination that is not local",
    );
}

#[test]
fn syn_for_another_mac_passes_untouched() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen_any();
    for (i, mac) in OTHER_MACS.iter().enumerate() {
        let mut syn = linux_syn();
        syn.dst_mac = *mac;
        let input = syn.frame();
        let run = s.xdp(&input);
        assert_untouched(&run, &input, XDP_PASS, &format!("a SYN for MAC {mac:02x?}"));
        let n = i as u64 + 1;
        s.assert_counters(
            &[(Counter::SynSeen, n), (Counter::NotLocal, n)],
            &format!("a SYN for MAC {mac:02x?}"),
        );
    }
}

#[test]
fn bad_or_expired_ack_to_another_host_passes_untouched() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen_any();
    // A forwarded flow's ACK: no cookie of ours at all.
    let mut ack = Segment::ack(CLIENT_PORT, PORT, 0x1111_2222, 0x3333_4444);
    ack.dst = FAR;
    let input = ack.frame();
    let run = s.xdp(&input);
    assert_untouched(&run, &input, XDP_PASS, "a bad-cookie ACK to 10.99.0.5");
    s.assert_counters(&[(Counter::NotLocal, 1)], "a bad ACK to another host");

    // The same for another MAC, to a local destination.
    let mut ack = Segment::ack(CLIENT_PORT, PORT, 0x1111_2222, 0x3333_4444);
    ack.dst_mac = OTHER_MACS[0];
    let input = ack.frame();
    let run = s.xdp(&input);
    assert_untouched(&run, &input, XDP_PASS, "a bad-cookie ACK for another MAC");
    s.assert_counters(&[(Counter::NotLocal, 2)], "a bad ACK for another MAC");

    // A real cookie for the far destination whose key has been rotated out (expired).
    let mut syn = linux_syn();
    syn.dst = FAR;
    let c = cookie_for(&KEY1, &syn, linux_attrs(), false);
    let mut ack = handshake_ack(&syn, c.isn, None);
    ack.dst = FAR;
    s.install(key(2));
    s.install(key(3));
    let input = ack.frame();
    let run = s.xdp(&input);
    assert_untouched(&run, &input, XDP_PASS, "an expired-cookie ACK to 10.99.0.5");
    s.assert_counters(&[(Counter::NotLocal, 3)], "an expired ACK to another host");

    // Ours: the same bad ACK to this host is still dropped.
    let ack = Segment::ack(CLIENT_PORT, PORT, 0x1111_2222, 0x3333_4444);
    let run = s.xdp(&ack.frame());
    assert_action(&run, XDP_DROP, "a bad-cookie ACK to this host");
    s.assert_counters(
        &[(Counter::NotLocal, 3), (Counter::AckBadCookie, 1)],
        "a bad ACK to this host",
    );
}

/// `lo`'s address is all zero, and the kernel takes any frame on `lo`; on a wire, a frame to
/// 00:00:00:00:00:00 is for another host (PACKET_OTHERHOST), and so is its SYN. (It is also
/// what SC_LOCAL_HINTS holds while the interface's MAC is not known: never a match.)
#[test]
fn syn_to_the_zero_mac_is_ours_on_lo_only() {
    require_root!();
    let s = Shield::new();
    let ifindex = s.wire();
    let _l = s.listen_any();
    let mut syn = linux_syn();
    syn.dst_mac = [0; 6];
    syn.src = WIRE_CLIENT.octets();
    syn.dst = WIRE_IP.octets();
    let input = syn.frame();
    let run = s.xdp_on(&input, ifindex);
    assert_untouched(&run, &input, XDP_PASS, "a SYN to the zero MAC on a wire");
    // The positive control: the same frame on `lo` is answered.
    assert_action(&s.xdp(&input), XDP_TX, "a SYN to the zero MAC on lo");
    s.assert_counters(
        &[
            (Counter::SynSeen, 2),
            (Counter::NotLocal, 1),
            (Counter::SynackSent, 1),
        ],
        "a SYN to the zero MAC on a wire, then on lo",
    );
}

#[test]
fn syn_to_any_local_address_is_answered() {
    require_root!();
    let s = Shield::new();
    let _l = s.listen_any();
    // 127.0.0.0/8 is local as a whole (one RTN_LOCAL route), not only 127.0.0.1.
    let mut syn = linux_syn();
    syn.dst = [127, 0, 0, 5];
    let c = cookie_for(&KEY1, &syn, linux_attrs(), true);
    assert_synack_for(&s, &syn, c, &linux_want());
    s.assert_counters(
        &[(Counter::SynSeen, 1), (Counter::SynackSent, 1)],
        "a SYN to 127.0.0.5",
    );

    // AnyIP: a whole prefix made local by a route, on any interface (Linux is a weak host).
    s.ns.exec(&["ip", "route", "add", "local", "192.0.2.0/24", "dev", "lo"]);
    s.sync_local();
    let mut syn = linux_syn();
    syn.dst = [192, 0, 2, 77];
    let c = cookie_for(&KEY1, &syn, linux_attrs(), true);
    assert_synack_for(&s, &syn, c, &linux_want());
    s.assert_counters(
        &[(Counter::SynSeen, 2), (Counter::SynackSent, 2)],
        "a SYN to an AnyIP address",
    );

    // The route gone, so is the answer.
    s.ns.exec(&["ip", "route", "del", "local", "192.0.2.0/24", "dev", "lo"]);
    s.sync_local();
    let input = syn.frame();
    let run = s.xdp(&input);
    assert_untouched(&run, &input, XDP_PASS, "a SYN to a removed AnyIP address");
    s.assert_counters(
        &[
            (Counter::SynSeen, 3),
            (Counter::SynackSent, 2),
            (Counter::NotLocal, 1),
        ],
        "a SYN to a removed AnyIP address",
    );
}
