//! The micro-benchmark section: the paths' table, the SYN path's costs, the two comparisons.

use std::fmt::Write;

use super::{Run, ns, ratio};

impl Run {
    pub(super) fn micro_md(&self) -> String {
        let Some(m) = &self.micro else {
            return "Not run (--no-micro).\n".into();
        };
        let x = syncookie_common::maps::PROG_XDP;
        let reflect = m.ns("lab_reflect", "SYN -> SYN-ACK");
        let pass = m.ns("lab_pass", "pass");
        let mut s = String::from(
            "| path | program | mode | ns per packet | × reflector | × pass-only | program alone \
             (BPF stats) |\n| --- | --- | --- | ---: | ---: | ---: | ---: |\n",
        );
        for (path, prog) in [
            ("SYN -> SYN-ACK", x),
            ("SYN -> SYN-ACK (IPv6)", x),
            ("SYN -> SYN-ACK (budgets on)", x),
            ("SYN -> SYN-ACK (rp_filter on)", x),
            ("SYN -> SYN-ACK", "lab_reflect"),
            ("pass", "lab_pass"),
            ("valid ACK", x),
            ("bad ACK", x),
            ("established", x),
        ] {
            let Some(r) = m.rows.iter().find(|r| r.path == path && r.program == prog) else {
                continue;
            };
            let _ = writeln!(
                s,
                "| {path} | `{prog}` | {} | {} | {:.2} | {:.1} | {} |",
                if r.live {
                    "live frames, XDP_TX"
                } else {
                    "plain repeat"
                },
                ns(r.ns),
                r.ns / reflect,
                r.ns / pass,
                r.prog_ns.map_or("–".into(), ns),
            );
        }
        let (syn_p, refl_p) = (
            m.prog_ns(x, "SYN -> SYN-ACK"),
            m.prog_ns("lab_reflect", "SYN -> SYN-ACK"),
        );
        let _ = writeln!(
            s,
            "\nSYN path / reflector: **{:.2}×** per packet with transmission (live frames), \
             {:.2}× for the programs alone (BPF statistics: {} against {}). IPv6 SYN path / \
             IPv4's: **{:.2}×** ({} against {} per packet). SYN-ACK budgets on (in all and per \
             /24, every SYN from one client, so its prefix's entry is updated each time): {} \
             per SYN, {:+.0} ns. The reverse-path filter's mirror on (rp_filter 1 or 2: one more \
             LPM lookup of the source): {} per SYN, {:+.0} ns.\n",
            ratio(m.ns(x, "SYN -> SYN-ACK"), reflect),
            ratio(syn_p, refl_p),
            ns(syn_p),
            ns(refl_p),
            ratio(m.ns(x, "SYN -> SYN-ACK (IPv6)"), m.ns(x, "SYN -> SYN-ACK")),
            ns(m.ns(x, "SYN -> SYN-ACK (IPv6)")),
            ns(m.ns(x, "SYN -> SYN-ACK")),
            ns(m.ns(x, "SYN -> SYN-ACK (budgets on)")),
            m.ns(x, "SYN -> SYN-ACK (budgets on)") - m.ns(x, "SYN -> SYN-ACK"),
            ns(m.ns(x, "SYN -> SYN-ACK (rp_filter on)")),
            m.ns(x, "SYN -> SYN-ACK (rp_filter on)") - m.ns(x, "SYN -> SYN-ACK"),
        );

        s += &stage_table(m);

        // Where the SYN path's time goes.
        let all = m.ns("lab_syn_all", "SYN -> SYN-ACK");
        let _ = writeln!(
            s,
            "**Where the SYN path's time goes** (the shield's own modules, one step left out at a \
             time; live frames through the same wrapper as the reflector): the whole path {} \
             (the shield's program: {}); without the listener lookup {} → the lookup costs \
             **{:.0} ns**; without verifying the SYN's checksum {} → the check costs **{:.0} \
             ns**; the cookie's SipHash-2-4 MAC alone (plain repeat, against parsing alone): \
             **{:.0} ns**; the reflector's whole path {}; what remains, about {:.0} ns, is the \
             rest of the SYN-ACK: option parsing, the clock read for TSval, map reads, resizing \
             the frame, writing the headers and options and their checksums.\n",
            ns(all),
            ns(m.ns(x, "SYN -> SYN-ACK")),
            ns(m.ns("lab_syn_no_lookup", "SYN -> SYN-ACK")),
            all - m.ns("lab_syn_no_lookup", "SYN -> SYN-ACK"),
            ns(m.ns("lab_syn_no_csum", "SYN -> SYN-ACK")),
            all - m.ns("lab_syn_no_csum", "SYN -> SYN-ACK"),
            m.ns("lab_syn_mac", "SYN") - m.ns("lab_syn_parse", "SYN"),
            ns(reflect),
            all - reflect
                - (all - m.ns("lab_syn_no_lookup", "SYN -> SYN-ACK"))
                - (all - m.ns("lab_syn_no_csum", "SYN -> SYN-ACK"))
                - (m.ns("lab_syn_mac", "SYN") - m.ns("lab_syn_parse", "SYN")),
        );

        // Lookup-first against cookie-first.
        let lf = |p| m.ns("lab_ack_lookup_first", p);
        let cf = |p| m.ns("lab_ack_cookie_first", p);
        s += "**ACKs: socket lookup first, or cookie first?** The shield's parse, lookup and \
              cookie code in both orders (`lab_ack_lookup_first`, `lab_ack_cookie_first`, plain \
              repeat):\n\n| ACK | lookup first | cookie first | cookie first − lookup first |\n\
              | --- | ---: | ---: | ---: |\n";
        for p in ["valid ACK", "bad ACK", "established"] {
            let _ = writeln!(
                s,
                "| {p} | {} | {} | {:+.1} ns |",
                ns(lf(p)),
                ns(cf(p)),
                cf(p) - lf(p)
            );
        }
        let save = lf("valid ACK") - cf("valid ACK");
        let cost = cf("established") - lf("established");
        let verdict = if cost > 0.0 && (save <= 0.0 || cost >= save) {
            "lookup first (the shield's order) is faster: cookie-first's saving on the single \
             handshake ACK of a connection is smaller than what it adds to each of the \
             connection's later segments, and a connection has at least one"
                .to_string()
        } else if cost > 0.0 {
            format!(
                "cookie first saves {save:.0} ns per handshake ACK but costs {cost:.0} ns on every \
                 later segment of the connection: it wins only for connections with fewer than \
                 {:.1} segments after the handshake; lookup first (the shield's order) stays",
                save / cost
            )
        } else {
            "cookie first measured no slower on established traffic here; the shield keeps \
             lookup first, which never runs a MAC for a segment of a known connection"
                .to_string()
        };
        let _ = writeln!(
            s,
            "\nCookie first saves {save:.1} ns on a valid handshake ACK and costs {cost:.1} ns on \
             every segment of an established connection (a bad ACK costs {:+.1} ns: both orders \
             run the lookup and the MAC for it): {verdict}.\n",
            cf("bad ACK") - lf("bad ACK"),
        );

        // Metadata against a TC re-check.
        let meta = m.ns("lab_ack_meta", "valid ACK");
        let nometa = m.ns("lab_ack_no_meta", "valid ACK");
        let tc_meta = m.ns("lab_tc_meta", "valid ACK");
        let tc_re = m.ns("lab_tc_recheck", "valid ACK");
        let _ = writeln!(
            s,
            "**XDP metadata, or a second check in TC?** Valid ACK in XDP with and without writing \
             the metadata (live frames, ending in XDP_DROP so that only the program and the frame \
             handling are timed): {} against {} → the metadata costs **{:.1} ns**. TC with the \
             metadata against TC checking the cookie again (plain repeat, both ending in the \
             listener lookup the handoff does): {} against {} → the re-check costs **{:.1} ns**. \
             {}\n",
            ns(meta),
            ns(nometa),
            meta - nometa,
            ns(tc_meta),
            ns(tc_re),
            tc_re - tc_meta,
            if tc_re - tc_meta > meta - nometa {
                "Metadata is cheaper: the shield hands the checked attributes over in XDP \
                 metadata, and re-checks in TC only where none arrives (generic XDP)."
            } else {
                "Here the re-check measured no dearer than the metadata."
            }
        );
        for n in &m.notes {
            let _ = writeln!(s, "Note: {n}\n");
        }
        s
    }
}

/// Each stage of the shield's SYN and valid-ACK paths priced by leaving it out alone: the
/// shield's own program loaded with that stage skipped, timed in the same rounds as the whole.
fn stage_table(m: &crate::micro::Results) -> String {
    let x = syncookie_common::maps::PROG_XDP;
    let mut s = String::from(
        "**The cost table**: the shield's own program (`syncookie_xdp`) loaded once more per \
         stage with that stage left out (a load-time constant, `SC_SKIP`; 0 in production, where \
         the verifier removes its checks), timed in the same rounds as the whole: SYNs in plain \
         repeat behind `lab_syn_fresh` (a fresh SYN each time, the SYN-ACK written but not \
         sent: sending on veth varies by more than a stage costs), ACKs in plain repeat. Cost = \
         whole − without; a difference within a few ns is noise. What no stage can leave out (parsing, \
         the cookie's MAC, writing the SYN-ACK, XDP_TX) is the rest.\n\n\
         | path | stage | whole | without it | cost |\n| --- | --- | ---: | ---: | ---: |\n",
    );
    for (path, stages) in [
        ("SYN -> SYN-ACK, not sent", crate::micro::stages::SYN_STAGES),
        ("valid ACK", crate::micro::stages::ACK_STAGES),
    ] {
        let mut sum = 0.0;
        for st in stages {
            let (whole, without) = (m.ns(x, st.base), m.ns(x, st.without));
            // Stages priced on a variant of the path (budgets on) are not part of its sum.
            if st.base == path {
                sum += whole - without;
            }
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:+.0} ns |",
                st.base,
                st.name,
                ns(whole),
                ns(without),
                whole - without
            );
        }
        let whole = m.ns(x, path);
        let _ = writeln!(
            s,
            "| {path} | the rest (no stage above; budgets off) | {} | | {:.0} ns |",
            ns(whole),
            whole - sum
        );
    }
    s.push('\n');
    s
}
