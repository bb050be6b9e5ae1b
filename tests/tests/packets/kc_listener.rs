//! Kernel-cookie mode as it runs on 5.x (`SC_KC_LISTENER` 1): the cookie made on the listener by
//! `bpf_tcp_gen_syncookie`, ACKs checked by `bpf_tcp_check_syncookie` alone. Run here on the
//! host's kernel, which has these helpers too: a new listener's first SYN is answered at once
//! (making the cookie stamps the listener's overflow: no SYN goes to the kernel for it), the ACK
//! passes to the kernel, a forged one is dropped; over IPv4 and IPv6.

use syncookie_common::stats::Counter;
use syncookie_tests::{
    frames::{Segment, expected_synack, expected_synack6, parse_synack, parse_synack6},
    require_root,
};

use crate::{
    CLIENT_ISN, CLIENT_PORT, CONFIG, XDP_DROP, XDP_PASS, XDP_TX,
    expect::{handshake_ack, linux_syn},
    harness::{Shield, assert_action, assert_untouched},
    kc_ipv6::linux_syn6,
};

/// A shield on the listener with tcp_syncookies=2 (as the daemon sets it) and a listener that
/// has never overflowed: no handshake of the kernel's stamped it.
fn unstamped(v6: bool) -> (Shield, std::net::TcpListener) {
    let s = Shield::on_listener(CONFIG);
    s.ns.sysctl("net.ipv4.tcp_syncookies", "2");
    let l = if v6 {
        s.enable_v6();
        s.listen6()
    } else {
        s.listen()
    };
    (s, l)
}

#[test]
fn on_the_listener_a_new_listeners_first_syn_is_answered_and_its_ack_passes() {
    require_root!();
    for v6 in [false, true] {
        let family = if v6 { "IPv6" } else { "IPv4" };
        let (s, _l) = unstamped(v6);
        let syn = if v6 { linux_syn6() } else { linux_syn() };
        let run = s.xdp_kc(&syn.frame());
        assert_action(
            &run,
            XDP_TX,
            &format!("{family}: the first SYN, no stamp yet"),
        );
        let mut mss = vec![2, 4];
        let isn = if v6 {
            mss.extend_from_slice(&CONFIG.mss_v6.to_be_bytes());
            let isn = parse_synack6(&run.frame)
                .expect("SYN-ACK")
                .tcp
                .sequence_number;
            let want = expected_synack6(&syn, isn, CONFIG.window_v6, CONFIG.hop_limit, false, &mss);
            assert_eq!(run.frame, want, "{family}: the SYN-ACK, byte for byte");
            isn
        } else {
            mss.extend_from_slice(&CONFIG.mss_v4.to_be_bytes());
            let isn = parse_synack(&run.frame)
                .expect("SYN-ACK")
                .tcp
                .sequence_number;
            let want = expected_synack(&syn, isn, CONFIG.window, CONFIG.ttl, false, &mss);
            assert_eq!(run.frame, want, "{family}: the SYN-ACK, byte for byte");
            isn
        };
        // The kernel's own check takes it: the generator stamped the listener.
        let ack = handshake_ack(&syn, isn, None).frame();
        assert_untouched(
            &s.xdp_kc(&ack),
            &ack,
            XDP_PASS,
            &format!("{family}: the ACK"),
        );
        let forged = handshake_ack(&syn, isn ^ 0x0010_0000, None).frame();
        let what = format!("{family}: a forged ACK");
        assert_untouched(&s.xdp_kc(&forged), &forged, XDP_DROP, &what);
        let other = Segment::syn(CLIENT_PORT + 1, crate::PORT, CLIENT_ISN);
        let other = if v6 { other.v6() } else { other }.frame();
        assert_action(
            &s.xdp_kc(&other),
            XDP_TX,
            &format!("{family}: a second SYN"),
        );
        s.assert_counters(
            &[
                (Counter::SynSeen, 2),
                (Counter::SynackSent, 2),
                (Counter::AckValid, 1),
                (Counter::HandoffOk, 1),
                (Counter::AckBadCookie, 1),
            ],
            &format!("{family}: two SYNs, no refresh; an ACK; a forged ACK"),
        );
    }
}
