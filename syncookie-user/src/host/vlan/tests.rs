use super::*;

fn vlans(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("eth0.{}", i * 10)).collect()
}

const BOTH: Stripping = Stripping {
    ctag: true,
    stag: true,
};
const CTAG: Stripping = Stripping {
    ctag: true,
    stag: false,
};
const STAG: Stripping = Stripping {
    ctag: false,
    stag: true,
};

#[test]
fn no_stripping_is_fine_with_or_without_vlans() {
    assert!(matches!(
        judge("eth0", Stripping::default(), vec![]),
        Ok(None)
    ));
    assert!(matches!(
        judge("eth0", Stripping::default(), vlans(2)),
        Ok(None)
    ));
}

#[test]
fn stripping_without_vlans_is_a_note_with_the_fix() {
    for (s, fix) in [
        (CTAG, "`ethtool -K eth0 rxvlan off`"),
        (STAG, "`ethtool -K eth0 rx-vlan-stag-hw-parse off`"),
        (
            BOTH,
            "`ethtool -K eth0 rxvlan off rx-vlan-stag-hw-parse off`",
        ),
    ] {
        let note = judge("eth0", s, vec![]).unwrap().expect("a note");
        assert!(
            note.starts_with("eth0 strips VLAN tags before XDP"),
            "{note}"
        );
        assert!(note.ends_with(fix), "{note}");
    }
}

#[test]
fn stripping_with_vlans_is_refused_naming_them_and_the_fix() {
    let refusal = |s| match judge("eth0", s, vlans(1)) {
        Err(VlanError::Stripped(e)) => e.to_string(),
        other => panic!("not refused: {other:?}"),
    };
    assert_eq!(
        refusal(CTAG),
        "eth0 strips VLAN tags before XDP sees them (rx-vlan-offload on) and carries VLANs \
         (eth0.10): their SYNs would be answered untagged, on the wrong VLAN. Turn stripping \
         off: `ethtool -K eth0 rxvlan off`"
    );
    assert_eq!(
        refusal(STAG),
        "eth0 strips VLAN tags before XDP sees them (rx-vlan-stag-hw-parse on) and carries \
         VLANs (eth0.10): their SYNs would be answered untagged, on the wrong VLAN. Turn \
         stripping off: `ethtool -K eth0 rx-vlan-stag-hw-parse off`"
    );
    assert_eq!(
        refusal(BOTH),
        "eth0 strips VLAN tags before XDP sees them (rx-vlan-offload and \
         rx-vlan-stag-hw-parse on) and carries VLANs (eth0.10): their SYNs would be answered \
         untagged, on the wrong VLAN. Turn stripping off: `ethtool -K eth0 rxvlan off \
         rx-vlan-stag-hw-parse off`"
    );
}

/// A trunk with hundreds of VLANs still makes one readable line.
#[test]
fn many_vlans_are_counted_past_the_first_few() {
    let Err(VlanError::Stripped(e)) = judge("eth0", CTAG, vlans(NAMED)) else {
        panic!("not refused");
    };
    assert!(
        e.to_string()
            .contains("(eth0.10, eth0.20, eth0.30, eth0.40, eth0.50):")
    );
    let Err(VlanError::Stripped(e)) = judge("eth0", CTAG, vlans(NAMED + 195)) else {
        panic!("not refused");
    };
    assert!(
        e.to_string()
            .contains("(eth0.10, eth0.20, eth0.30, eth0.40, eth0.50 and 195 more):"),
        "{e}"
    );
}

/// The ioctls work without privileges; `lo` never strips (its features are fixed), and an
/// unknown interface is an error, not "no stripping".
#[test]
fn loopback_strips_nothing() {
    assert_eq!(stripping("lo").unwrap(), Stripping::default());
    let e = stripping("no-such-if0").unwrap_err();
    assert!(
        matches!(
            &e,
            VlanError::Features {
                what: "ETHTOOL_GSSET_INFO",
                ..
            }
        ),
        "{e:?}"
    );
}

fn link(name: &str, lower: u32, kind: InfoKind, netns: Option<i32>) -> LinkMessage {
    let mut l = LinkMessage::default();
    l.attributes = vec![
        LinkAttribute::IfName(name.into()),
        LinkAttribute::Link(lower),
        LinkAttribute::LinkInfo(vec![LinkInfo::Kind(kind)]),
    ];
    l.attributes.extend(netns.map(LinkAttribute::LinkNetNsId));
    l
}

/// Only VLAN devices on our interface in our namespace count: not a veth peer (whose
/// IFLA_LINK is ours too), not another interface's VLAN, not one whose lower device is in
/// another namespace.
#[test]
fn vlans_are_the_vlan_devices_on_the_interface() {
    let links = [
        link("eth0.10", 2, InfoKind::Vlan, None),
        link("peer", 2, InfoKind::Veth, None),
        link("eth1.10", 3, InfoKind::Vlan, None),
        link("far.10", 2, InfoKind::Vlan, Some(1)),
        link("eth0.20", 2, InfoKind::Vlan, None),
        LinkMessage::default(),
    ];
    assert_eq!(vlans_of(2, &links), ["eth0.10", "eth0.20"]);
    assert!(vlans_of(4, &links).is_empty());
}
