//! The interface the shield attaches to: does it exist, and which XDP program holds its hook.
//! The hook's owner comes from rtnetlink (`IFLA_XDP`, as `ip link` shows it), its name from
//! the kernel's program list, and the BPF link holding it (if any) from the link list.

use std::{
    fmt,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{LinkAttribute, LinkMessage, LinkXdp, XdpAttached},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// libxdp's multi-program dispatcher: the program it attaches in front of the programs it runs.
pub const LIBXDP_DISPATCHER: &str = "xdp_dispatcher";

#[derive(Debug, thiserror::Error)]
pub enum NetdevError {
    #[error("no interface named {0} in this network namespace (see `ip link`)")]
    NoInterface(String),
    #[error("cannot ask the kernel which XDP program {iface} has")]
    Query {
        iface: String,
        #[source]
        source: std::io::Error,
    },
}

/// The index of `iface` in this network namespace.
pub fn ifindex(iface: &str) -> Result<u32, NetdevError> {
    match nix::net::if_::if_nametoindex(iface) {
        Ok(i) if i > 0 => Ok(i),
        _ => Err(NetdevError::NoInterface(iface.into())),
    }
}

/// The driver of `iface`'s device, as sysfs names it (`virtio_net`, `mlx5_core`); `None` for an
/// interface without a device (veth, a bridge) or when sysfs does not show this namespace's.
pub fn driver(iface: &str) -> Option<String> {
    let link = std::fs::read_link(format!("/sys/class/net/{iface}/device/driver")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// An `ifreq` naming `iface` (truncated to IFNAMSIZ - 1 bytes, NUL-terminated), the rest zero:
/// for the interface ioctls.
pub(crate) fn ifreq(iface: &str) -> libc::ifreq {
    // SAFETY: `ifreq` is plain data (a name and a union of integers and pointers): all zeroes
    // is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req
        .ifr_name
        .iter_mut()
        .zip(iface.bytes().take(libc::IFNAMSIZ - 1))
    {
        *d = s as libc::c_char;
    }
    req
}

/// How an XDP program runs on an interface (`IFLA_XDP_ATTACHED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpAttachMode {
    /// In the driver (`ip link set dev X xdpdrv ...`).
    Native,
    /// Generic, on the skb (`xdpgeneric`).
    Skb,
    /// Offloaded to the NIC (`xdpoffload`).
    Offload,
    /// Several modes at once.
    Multi,
}

impl XdpAttachMode {
    /// The `ip link` keyword that removes a program attached this way.
    fn ip_keyword(self) -> &'static str {
        match self {
            Self::Native | Self::Multi => "xdp",
            Self::Skb => "xdpgeneric",
            Self::Offload => "xdpoffload",
        }
    }
}

impl fmt::Display for XdpAttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Native => "native",
            Self::Skb => "generic (skb)",
            Self::Offload => "offloaded",
            Self::Multi => "several modes",
        })
    }
}

/// The XDP program attached to an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpOwner {
    pub iface: String,
    pub prog_id: u32,
    /// The program's name (None when the kernel would not tell).
    pub name: Option<String>,
    pub mode: XdpAttachMode,
    /// The BPF link holding the program, when it was attached through one.
    pub link_id: Option<u32>,
}

impl XdpOwner {
    pub fn is_libxdp_dispatcher(&self) -> bool {
        self.name.as_deref() == Some(LIBXDP_DISPATCHER)
    }
}

impl fmt::Display for XdpOwner {
    /// What holds the hook and how to remove it; the caller says why that matters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let iface = &self.iface;
        write!(f, "{iface} already has an XDP program: id {}", self.prog_id)?;
        if let Some(n) = &self.name {
            write!(f, " `{n}`")?;
        }
        write!(f, ", {} mode", self.mode)?;
        if let Some(l) = self.link_id {
            write!(f, ", held by BPF link {l}")?;
        }
        // The shield shares the hook only through libxdp's dispatcher (share.rs).
        if let Some(l) = self.link_id {
            write!(
                f,
                ". The shield shares the XDP hook only through libxdp's dispatcher: load that \
                 program with `xdp-loader load {iface} PROG.o` instead, or remove its link with \
                 `bpftool link detach id {l}` (and its pin, if it is pinned)"
            )
        } else {
            write!(
                f,
                ". The shield shares the XDP hook only through libxdp's dispatcher: load that \
                 program with `xdp-loader load {iface} PROG.o` instead, or remove it with `ip \
                 link set dev {iface} {} off`",
                self.mode.ip_keyword()
            )
        }
    }
}

/// The XDP program on `iface` (index `ifindex`), if any.
pub fn xdp_owner(iface: &str, ifindex: u32) -> Result<Option<XdpOwner>, NetdevError> {
    let Some((prog_id, mode)) = xdp_query(ifindex).map_err(|source| NetdevError::Query {
        iface: iface.into(),
        source,
    })?
    else {
        return Ok(None);
    };
    // Both lists need CAP_SYS_ADMIN; without it the id alone is shown.
    let name = aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == prog_id)
        .and_then(|p| p.name_as_str().map(String::from));
    let link_id = xdp_link(ifindex, prog_id);
    Ok(Some(XdpOwner {
        iface: iface.into(),
        prog_id,
        name,
        mode,
        link_id,
    }))
}

/// `RTM_GETLINK` for one interface: the id and mode of its XDP program.
pub(crate) fn xdp_query(ifindex: u32) -> std::io::Result<Option<(u32, XdpAttachMode)>> {
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    let mut link = LinkMessage::default();
    link.header.index = ifindex;
    let mut hdr = NetlinkHeader::default();
    hdr.flags = NLM_F_REQUEST;
    hdr.sequence_number = 1;
    let mut msg = NetlinkMessage::new(
        hdr,
        NetlinkPayload::from(RouteNetlinkMessage::GetLink(link)),
    );
    msg.finalize();
    let mut out = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut out);
    sock.send(&out, 0)?;
    let mut buf = vec![0u8; 64 * 1024];
    let n = sock.recv(&mut &mut buf[..], 0)?.min(buf.len());
    let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[..n])
        .map_err(|e| std::io::Error::other(format!("rtnetlink reply: {e}")))?;
    match reply.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => Ok(xdp_of(&l)),
        NetlinkPayload::Error(e) if e.code.is_some() => Err(e.to_io()),
        _ => Ok(None),
    }
}

/// The XDP program id and mode in a link's attributes (`IFLA_XDP`).
fn xdp_of(link: &LinkMessage) -> Option<(u32, XdpAttachMode)> {
    let xdp = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Xdp(x) => Some(x),
        _ => None,
    })?;
    let (mut mode, mut id) = (None, None);
    for x in xdp {
        match x {
            LinkXdp::Attached(a) => {
                mode = match a {
                    XdpAttached::Driver => Some(XdpAttachMode::Native),
                    XdpAttached::SocketBuffer => Some(XdpAttachMode::Skb),
                    XdpAttached::Hardware => Some(XdpAttachMode::Offload),
                    XdpAttached::Multiple => Some(XdpAttachMode::Multi),
                    _ => None,
                }
            }
            LinkXdp::ProgId(p) => id = Some(*p),
            _ => {}
        }
    }
    Some((id?, mode?))
}

// The bpf(2) commands aya 0.14 does not expose for links (include/uapi/linux/bpf.h).
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;
const BPF_LINK_GET_NEXT_ID: libc::c_long = 31;
const BPF_LINK_TYPE_XDP: u32 = 6;

/// The `union bpf_attr` prefix these commands use: GET_NEXT_ID (start_id, next_id),
/// GET_FD_BY_ID (link_id), OBJ_GET_INFO_BY_FD (bpf_fd, info_len, info).
#[repr(C, align(8))]
#[derive(Default)]
struct Attr {
    a: u32,
    b: u32,
    ptr: u64,
    rest: [u64; 6],
}

/// `bpf(cmd, attr, size)`: the raw return value.
fn bpf(cmd: libc::c_long, attr: &mut Attr) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a zero-filled `union bpf_attr` prefix of the size passed; for
    // OBJ_GET_INFO_BY_FD its pointer names a live buffer of the length given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut Attr,
            std::mem::size_of::<Attr>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The id of the XDP link on `ifindex` running `prog_id`, if there is one (needs
/// CAP_SYS_ADMIN; None without it).
fn xdp_link(ifindex: u32, prog_id: u32) -> Option<u32> {
    let mut id = 0u32;
    loop {
        let mut attr = Attr {
            a: id,
            ..Default::default()
        };
        bpf(BPF_LINK_GET_NEXT_ID, &mut attr).ok()?;
        id = attr.b;
        let Ok(fd) = bpf(
            BPF_LINK_GET_FD_BY_ID,
            &mut Attr {
                a: id,
                ..Default::default()
            },
        ) else {
            continue; // gone meanwhile
        };
        // SAFETY: the kernel just returned this fd to us; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // struct bpf_link_info: type, id, prog_id, then (8-aligned) the union: xdp.ifindex.
        let mut info = [0u32; 32];
        let mut attr = Attr {
            a: fd.as_raw_fd() as u32,
            b: std::mem::size_of_val(&info) as u32,
            ptr: info.as_mut_ptr() as u64,
            ..Default::default()
        };
        if bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).is_err() {
            continue;
        }
        if info[0] == BPF_LINK_TYPE_XDP && info[2] == prog_id && info[4] == ifindex {
            return Some(info[1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_xdp_attribute() {
        let mut l = LinkMessage::default();
        l.attributes = vec![
            LinkAttribute::IfName("eth0".into()),
            LinkAttribute::Xdp(vec![
                LinkXdp::Attached(XdpAttached::SocketBuffer),
                LinkXdp::ProgId(77),
            ]),
        ];
        assert_eq!(xdp_of(&l), Some((77, XdpAttachMode::Skb)));
        l.attributes = vec![LinkAttribute::Xdp(vec![LinkXdp::Attached(
            XdpAttached::None,
        )])];
        assert_eq!(xdp_of(&l), None);
    }

    /// The real query on `lo` (no XDP program in a test's namespace).
    #[test]
    fn lo_has_no_xdp_program() {
        assert_eq!(xdp_query(1).unwrap(), None);
    }

    #[test]
    fn owner_message_says_which_and_how_to_remove() {
        let o = XdpOwner {
            iface: "eth0".into(),
            prog_id: 42,
            name: Some("xdp_fw".into()),
            mode: XdpAttachMode::Native,
            link_id: None,
        };
        let m = o.to_string();
        assert!(m.contains("id 42 `xdp_fw`"), "{m}");
        assert!(m.contains("`ip link set dev eth0 xdp off`"), "{m}");
        assert!(m.contains("only through libxdp's dispatcher"), "{m}");
        assert!(!m.contains("skb"), "{m}");
        let l = XdpOwner {
            link_id: Some(9),
            ..o.clone()
        }
        .to_string();
        assert!(l.contains("bpftool link detach id 9"), "{l}");
    }

    /// `lo` exists in every namespace and has no XDP program of ours.
    #[test]
    fn loopback_is_found() {
        assert_eq!(ifindex("lo").unwrap(), 1);
        assert!(matches!(
            ifindex("no-such-if0"),
            Err(NetdevError::NoInterface(_))
        ));
    }
}
