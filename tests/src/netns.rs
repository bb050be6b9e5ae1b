//! Network namespaces that delete themselves, and a guard that moves this thread into one.

use std::{
    fs::File,
    marker::PhantomData,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

use nix::sched::{CloneFlags, setns};

/// A unique short prefix for names (interface names are at most 15 bytes).
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}{}x{}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a command, panicking with the whole command line and its stderr on failure.
pub fn sh(args: &[&str]) -> String {
    try_sh(args).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a command: its stdout, or the whole command line and its stderr.
pub fn try_sh(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A veth pair with its `a_if` end in `a` and its `b_if` end in `b`.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    sh(&[
        "ip", "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
        &b.name,
    ]);
}

pub struct Netns {
    pub name: String,
}

/// Pins thread `tid` (0: the calling thread) to `cpu`.
pub fn pin_thread(tid: i32, cpu: usize) -> nix::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(tid), &set)
}

/// The kernel threads that run the threaded NAPI poll of `iface` (`napi/<iface>-<id>`; the name
/// is cut at 15 bytes like every thread name).
pub fn napi_threads(iface: &str) -> Vec<i32> {
    let want: String = format!("napi/{iface}-").chars().take(15).collect();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end().starts_with(&want) {
            out.push(pid);
        }
    }
    out
}

/// A namespace named for `tag` with a veth pair in it (native XDP), both ends up; returns the
/// namespace and the first end's name.
pub fn with_veth(tag: &str) -> (Netns, String) {
    let name = unique(tag);
    let ns = Netns::new(&name);
    let peer = format!("{name}p");
    ns.exec(&[
        "ip", "link", "add", &name, "type", "veth", "peer", "name", &peer,
    ]);
    for i in [&name, &peer] {
        ns.exec(&["ip", "link", "set", i, "up"]);
    }
    ns.sysctl("net.ipv4.tcp_syncookies", "1");
    (ns, name)
}

/// An XDP program attached through netlink in generic mode from its pin (as `ip link set dev
/// X xdp obj ...` and libxdp attach): the pin goes on drop, the attachment with the namespace.
pub struct PinnedXdp(String);

impl Drop for PinnedXdp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Netns {
    /// Pins `prog` (loaded) under /sys/fs/bpf as `<iface>_<tag>` and attaches it to `iface`.
    pub fn attach_generic(
        &self,
        iface: &str,
        prog: &mut aya::programs::Xdp,
        tag: &str,
    ) -> PinnedXdp {
        syncookie::bpf::pins::ensure_bpffs(std::path::Path::new("/sys/fs/bpf")).unwrap();
        let pin = format!("/sys/fs/bpf/{iface}_{tag}");
        prog.pin(&pin).expect("pin the XDP program");
        let pinned = PinnedXdp(pin);
        self.exec(&[
            "ip",
            "link",
            "set",
            "dev",
            iface,
            "xdpgeneric",
            "pinned",
            &pinned.0,
        ]);
        pinned
    }

    pub fn new(name: &str) -> Self {
        sh(&["ip", "netns", "add", name]);
        let ns = Self { name: name.into() };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    pub fn file(&self) -> File {
        File::open(self.path()).unwrap_or_else(|e| panic!("{}: {e}", self.path()))
    }

    /// Runs a command inside (network namespace only, so bpffs pins stay visible).
    pub fn exec(&self, args: &[&str]) -> String {
        self.try_exec(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Netns::exec`], returning its failure.
    pub fn try_exec(&self, args: &[&str]) -> Result<String, String> {
        let net = format!("--net={}", self.path());
        let mut v = vec!["nsenter", net.as_str()];
        v.extend_from_slice(args);
        try_sh(&v)
    }

    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec(&["sysctl", "-qw", &format!("{key}={value}")]);
    }

    /// Moves this thread into the namespace until the guard drops.
    pub fn enter(&self) -> Entered {
        let back = File::open("/proc/thread-self/ns/net").expect("own netns");
        setns(self.file(), CloneFlags::CLONE_NEWNET).expect("setns");
        Entered {
            back,
            _not_send: PhantomData,
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// This thread is in another namespace until dropped; `!Send` since namespaces are per thread.
pub struct Entered {
    back: File,
    _not_send: PhantomData<*const ()>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        setns(&self.back, CloneFlags::CLONE_NEWNET).expect("setns back");
    }
}
