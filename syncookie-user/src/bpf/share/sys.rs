//! What libxdp's protocol needs from the system and aya 0.14 does not offer: the shared lock,
//! the pin layout, the dispatcher object libxdp ships, and the netlink XDP attach with
//! `XDP_FLAGS_REPLACE` (aya attaches XDP through a BPF link, which libxdp cannot replace).

use std::{
    fs::File,
    os::fd::{AsRawFd, BorrowedFd},
    path::{Path, PathBuf},
};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{LinkAttribute, LinkMessage, LinkXdp},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use nix::fcntl::{Flock, FlockArg};

/// Where libxdp looks for its objects on Debian and other distributions (`BPF_OBJECT_PATH`);
/// `LIBXDP_OBJECT_PATH` overrides it, as it does for libxdp.
const OBJECT_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/bpf",
    "/usr/lib/aarch64-linux-gnu/bpf",
    "/usr/lib64/bpf",
    "/usr/lib/bpf",
    "/usr/local/lib/bpf",
];
pub const DISPATCHER_OBJECT: &str = "xdp-dispatcher.o";

/// `include/uapi/linux/if_link.h`.
const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1 << 0;
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
const XDP_FLAGS_REPLACE: u32 = 1 << 4;

/// libxdp's directory under bpffs (`LIBXDP_BPFFS`, default /sys/fs/bpf, plus `xdp`).
pub fn xdp_dir() -> PathBuf {
    std::env::var_os("LIBXDP_BPFFS")
        .map_or_else(|| PathBuf::from("/sys/fs/bpf"), PathBuf::from)
        .join("xdp")
}

/// The pin directory of dispatcher `prog_id` on `ifindex`.
pub fn dispatcher_dir(ifindex: u32, prog_id: u32) -> PathBuf {
    xdp_dir().join(format!("dispatch-{ifindex}-{prog_id}"))
}

/// libxdp's lock: `flock` on its bpffs directory, held while pins change.
pub fn lock(dir: &Path) -> std::io::Result<Flock<File>> {
    std::fs::create_dir_all(dir)?;
    let f = File::open(dir)?;
    Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| e.into())
}

/// The dispatcher object libxdp installed, where it would find it.
pub fn dispatcher_object() -> Result<PathBuf, String> {
    let env = std::env::var_os("LIBXDP_OBJECT_PATH").map(PathBuf::from);
    let dirs: Vec<PathBuf> = env
        .into_iter()
        .chain(OBJECT_DIRS.iter().map(PathBuf::from))
        .collect();
    dirs.iter()
        .map(|d| d.join(DISPATCHER_OBJECT))
        .find(|p| p.exists())
        .ok_or_else(|| {
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
}

/// Sets `ifindex`'s XDP program to `prog` (None: none) over netlink. With `expected`, only if
/// that program is still there (`XDP_FLAGS_REPLACE`); without, only if the hook is empty.
pub fn set_xdp(
    ifindex: u32,
    prog: Option<BorrowedFd<'_>>,
    expected: Option<BorrowedFd<'_>>,
    mode: u32,
) -> std::io::Result<()> {
    let mut xdp = vec![LinkXdp::Fd(prog.map_or(-1, |f| f.as_raw_fd()))];
    match expected {
        Some(old) => {
            xdp.push(LinkXdp::Flags(mode | XDP_FLAGS_REPLACE));
            xdp.push(LinkXdp::ExpectedFd(old.as_raw_fd() as u32));
        }
        None => xdp.push(LinkXdp::Flags(mode | XDP_FLAGS_UPDATE_IF_NOEXIST)),
    }
    let mut link = LinkMessage::default();
    link.header.index = ifindex;
    link.attributes.push(LinkAttribute::Xdp(xdp));
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK;
    let mut msg = NetlinkMessage::new(
        header,
        NetlinkPayload::from(RouteNetlinkMessage::SetLink(link)),
    );
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    sock.send(&buf, 0)?;
    let (reply, _) = sock.recv_from_full()?;
    let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    match reply.payload {
        NetlinkPayload::Error(e) => match e.code {
            Some(code) => Err(std::io::Error::from_raw_os_error(-code.get())),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}
