//! SYNs the kernel never lets reach a listener (a bad IPv4 header, malformed or echoed IPv4
//! options, source routes, martian sources and loopback destinations from outside) are never
//! answered: they pass untouched, for the kernel to drop, counted by reason. Positive controls
//! beside them: the same SYN from an ordinary client on the same wire is answered, and so is
//! one with options the kernel neither refuses nor echoes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener};

use syncookie_common::stats::Counter;
use syncookie_tests::{frames::ETH_HLEN, require_root};

use crate::{
    CLIENT_PORT, PORT, XDP_PASS, XDP_TX,
    expect::linux_syn,
    harness::{
        Shield, WIRE_CLIENT, WIRE_CLIENT6, WIRE_IP, WIRE_IP6, assert_action, assert_untouched,
    },
};

/// The Linux SYN from `src` to `dst`, one source port per call.
fn syn(src: IpAddr, dst: IpAddr, n: &mut u16) -> syncookie_tests::frames::Segment {
    *n += 1;
    let mut s = linux_syn();
    s.sport = CLIENT_PORT + *n;
    match (src, dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            s.src = a.octets();
            s.dst = b.octets();
            s
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mut s = s.v6();
            let ip6 = s.ip6.as_mut().expect("IPv6");
            ip6.src = a.octets();
            ip6.dst = b.octets();
            s
        }
        _ => unreachable!("one family"),
    }
}

fn wired() -> (Shield, u32, TcpListener) {
    let s = Shield::new();
    let ifindex = s.wire();
    // A dual-stack wildcard listener: IPv4 and IPv6 SYNs to the wire's addresses find it.
    let l = TcpListener::bind((Ipv6Addr::UNSPECIFIED, PORT)).expect("listen on [::]");
    (s, ifindex, l)
}

#[test]
fn martian_sources_and_loopback_destinations_go_to_the_kernel() {
    require_root!();
    let (s, ifindex, _l) = wired();
    let mut n = 0;
    let (v4, v6) = (IpAddr::V4(WIRE_IP), IpAddr::V6(WIRE_IP6));
    // Positive controls: ordinary clients on the same wire.
    for (src, dst) in [
        (IpAddr::V4(WIRE_CLIENT), v4),
        (IpAddr::V6(WIRE_CLIENT6), v6),
    ] {
        let run = s.xdp_on(&syn(src, dst, &mut n).frame(), ifindex);
        assert_action(&run, XDP_TX, &format!("a SYN from {src}"));
    }
    let v4src = |a: [u8; 4]| (IpAddr::V4(Ipv4Addr::from(a)), v4);
    let v6src = |a: &str| (IpAddr::V6(a.parse().unwrap()), v6);
    let martians = [
        v4src([0, 0, 0, 0]),
        v4src([0, 1, 2, 3]),
        v4src([127, 0, 0, 1]),
        v4src([224, 0, 0, 1]),
        v4src([239, 255, 255, 250]),
        v4src([255, 255, 255, 255]),
        // The wire's subnet broadcast (`brd +`): the kernel drops it with rp_filter on and
        // answers it to ff:ff:ff:ff:ff:ff with rp_filter off; the kernel's either way.
        v4src([10, 9, 0, 255]),
        // The host's own address, from outside (accept_local is 0).
        (v4, v4),
        // Loopback destinations from outside (route_localnet is 0).
        (IpAddr::V4(WIRE_CLIENT), IpAddr::V4(Ipv4Addr::LOCALHOST)),
        v6src("::"),
        v6src("::1"),
        v6src("ff02::1"),
        v6src("::ffff:10.9.0.2"),
        (v6, v6),
        (IpAddr::V6(WIRE_CLIENT6), IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ];
    for (src, dst) in martians {
        let input = syn(src, dst, &mut n).frame();
        let run = s.xdp_on(&input, ifindex);
        assert_untouched(
            &run,
            &input,
            XDP_PASS,
            &format!("a SYN from {src} to {dst}"),
        );
    }
    // The broadcast address as a destination (a unicast frame): not this host's to answer,
    // though it is in the local table.
    let to_brd = IpAddr::V4(Ipv4Addr::new(10, 9, 0, 255));
    let input = syn(IpAddr::V4(WIRE_CLIENT), to_brd, &mut n).frame();
    let run = s.xdp_on(&input, ifindex);
    assert_untouched(&run, &input, XDP_PASS, "a SYN to the subnet broadcast");
    let m = martians.len() as u64;
    s.assert_counters(
        &[
            (Counter::SynSeen, m + 3),
            (Counter::SynackSent, 2),
            (Counter::Martian, m),
            (Counter::NotLocal, 1),
        ],
        "martian SYNs, one to the broadcast address and two controls",
    );
}

#[test]
fn bad_ipv4_headers_source_routes_and_echoed_options_go_to_the_kernel() {
    require_root!();
    let (s, ifindex, _l) = wired();
    let mut n = 0;
    let client = IpAddr::V4(WIRE_CLIENT);
    let server = IpAddr::V4(WIRE_IP);
    let with_options = |opts: &[u8], n: &mut u16| {
        let mut seg = syn(client, server, n);
        seg.ip_options = opts.to_vec();
        seg.frame()
    };
    // Answered: NOP padding and a router alert, which the kernel neither refuses nor echoes.
    for opts in [
        &[1u8, 1, 1, 1][..],
        &[148, 4, 0, 0],
        &[1, 148, 4, 0, 0, 0, 0, 0],
    ] {
        let run = s.xdp_on(&with_options(opts, &mut n), ifindex);
        assert_action(&run, XDP_TX, &format!("IP options {opts:?}"));
    }
    let mut bad_sum = syn(client, server, &mut n).frame();
    bad_sum[ETH_HLEN + 10] ^= 0x5a;
    let cases: Vec<(&str, Vec<u8>, Counter)> = vec![
        (
            "a wrong IPv4 header checksum",
            bad_sum,
            Counter::IpHeaderBad,
        ),
        (
            "an option longer than the header",
            with_options(&[68, 12, 5, 0], &mut n),
            Counter::IpHeaderBad,
        ),
        (
            "an option of length 1",
            with_options(&[25, 1, 0, 0], &mut n),
            Counter::IpHeaderBad,
        ),
        (
            "a router alert of length 3",
            with_options(&[148, 3, 0, 0], &mut n),
            Counter::IpHeaderBad,
        ),
        (
            "a loose source route",
            with_options(&[131, 7, 4, 10, 9, 0, 3, 0], &mut n),
            Counter::IpSourceRoute,
        ),
        (
            "a strict source route",
            with_options(&[1, 137, 7, 4, 10, 9, 0, 3], &mut n),
            Counter::IpSourceRoute,
        ),
        (
            "record route",
            with_options(&[7, 7, 4, 0, 0, 0, 0, 0], &mut n),
            Counter::IpOptionsKernel,
        ),
        (
            "a timestamp option",
            with_options(&[68, 8, 5, 0, 0, 0, 0, 0], &mut n),
            Counter::IpOptionsKernel,
        ),
    ];
    for (what, input, _) in &cases {
        let run = s.xdp_on(input, ifindex);
        assert_untouched(&run, input, XDP_PASS, what);
    }
    let count = |c| cases.iter().filter(|(_, _, x)| *x == c).count() as u64;
    s.assert_counters(
        &[
            (Counter::SynSeen, cases.len() as u64 + 3),
            (Counter::SynackSent, 3),
            (Counter::IpHeaderBad, count(Counter::IpHeaderBad)),
            (Counter::IpSourceRoute, count(Counter::IpSourceRoute)),
            (Counter::IpOptionsKernel, count(Counter::IpOptionsKernel)),
        ],
        "SYNs with bad or kernel-only IPv4 headers and three controls",
    );
}
