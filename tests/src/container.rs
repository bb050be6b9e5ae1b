//! `syncookie` from an OCI image: `podman run` with the host's network namespace (that of the
//! process that starts podman: the lab's server namespace for the tests), with the host's bpffs
//! and lock directory, as the DaemonSet in packaging/ runs it on a node: privileged, or with
//! the DaemonSet's securityContext (the unit's capabilities alone, a read-only root). The smoke
//! suite's `--image` runs every `syncookie` command of the suite this way.

use std::{process::Command, sync::OnceLock};

use nix::sys::resource::{Resource, getrlimit};

static IMAGE: OnceLock<Setup> = OnceLock::new();

/// How the suite runs the image.
pub struct Setup {
    pub image: String,
    pub security: Security,
    /// A `run --config` file (the DaemonSet's ConfigMap), mounted read-only at [`CONFIG`].
    pub config: Option<String>,
}

/// Where the DaemonSet mounts its ConfigMap's TOML.
pub const CONFIG: &str = "/etc/syncookie/syncookie.toml";

/// What the container may do.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `--privileged`: every capability, writable /proc/sys.
    Privileged,
    /// The DaemonSet's securityContext: all capabilities dropped but [`CAPABILITIES`], a
    /// read-only root file system, podman's default seccomp profile.
    Capabilities,
}

/// The systemd unit's CapabilityBoundingSet (packaging/syncookie@.service), which the
/// DaemonSet adds, with each one's bit in /proc/self/status.
pub const CAPABILITIES: &[(&str, u32)] = &[
    ("BPF", 39),
    ("NET_ADMIN", 12),
    // The packet socket that sends SYN-ACKs again.
    ("NET_RAW", 13),
    ("PERFMON", 38),
    ("SYS_ADMIN", 21),
    ("SYS_RESOURCE", 24),
];

/// From now on, `daemon::command_in` runs the image with podman instead of the binary.
pub fn use_image(setup: Setup) {
    IMAGE
        .set(setup)
        .unwrap_or_else(|_| panic!("the image is chosen once, before any command runs"));
}

/// The image chosen with [`use_image`], if any.
pub fn image() -> Option<&'static str> {
    IMAGE.get().map(|s| s.image.as_str())
}

/// What `run` needs beyond its flags: `--config` with the chosen config file, if any.
pub fn run_args() -> &'static [&'static str] {
    match IMAGE.get() {
        Some(Setup {
            config: Some(_), ..
        }) => &["--config", CONFIG],
        _ => &[],
    }
}

/// Where `run` keeps its locks: shared with the host, so that a daemon in a container and one
/// on the host exclude each other on an interface.
pub const LOCK_DIR: &str = "/run/syncookie";

/// `podman run ... IMAGE` (the caller adds syncookie's arguments).
pub fn command(image: &str) -> Command {
    let setup = IMAGE.get();
    let security = setup.map_or(Security::Privileged, |s| s.security);
    std::fs::create_dir_all(LOCK_DIR).expect("create the lock directory");
    let mut c = Command::new("podman");
    if !cgroup2_unified() {
        // crun refuses hybrid cgroup hierarchies ("cgroups in hybrid mode not supported");
        // runc runs there.
        c.args(["--runtime", "runc"]);
    }
    c.args(["run", "--rm", "--pull=never", "--network=host"]);
    match security {
        Security::Privileged => {
            c.arg("--privileged");
        }
        Security::Capabilities => {
            c.args(["--cap-drop=all", "--read-only"]);
            let bounding = cap_set("CapBnd");
            for (name, bit) in CAPABILITIES {
                // Only what this process may hand on (a session sandbox may lack
                // SYS_RESOURCE; the kernel charges BPF memory to the cgroup since 5.11).
                if bounding >> bit & 1 == 1 {
                    c.arg(format!("--cap-add={name}"));
                }
            }
        }
    }
    if let Some(config) = setup.and_then(|s| s.config.as_ref()) {
        c.arg(format!("--volume={config}:{CONFIG}:ro"));
    }
    c.args(["--volume=/sys/fs/bpf:/sys/fs/bpf"])
        .arg(format!("--volume={LOCK_DIR}:{LOCK_DIR}"))
        // The daemon's log level, when the caller sets one (`Daemon::start_with_log`).
        .arg("--env=RUST_LOG");
    if cap_set("CapEff") >> 24 & 1 == 0 {
        // podman asks for nofile 1048576 and nproc 4194304 in a root container, above our
        // hard limits; raising them needs CAP_SYS_RESOURCE (a session sandbox may lack it).
        // The daemon holds a few dozen descriptors and threads.
        for (name, r) in [
            ("nofile", Resource::RLIMIT_NOFILE),
            ("nproc", Resource::RLIMIT_NPROC),
        ] {
            let hard = getrlimit(r).map_or(1024, |(_, h)| h).min(4096);
            c.arg(format!("--ulimit={name}={hard}:{hard}"));
        }
    }
    c.arg(image);
    c
}

/// Whether /sys/fs/cgroup is a cgroup2 file system (the unified hierarchy alone).
fn cgroup2_unified() -> bool {
    use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, statfs};
    statfs("/sys/fs/cgroup").is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC)
}

/// One of this process's capability sets from /proc/self/status (`CapEff`, `CapBnd`), as
/// bits; 0 if it cannot be read.
fn cap_set(name: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
                .trim()
                .to_string();
            u64::from_str_radix(&hex, 16).ok()
        })
        .unwrap_or(0)
}

/// The containers of `image` podman knows (running or not), one "ID STATUS" line each.
pub fn containers(image: &str) -> Vec<String> {
    let out = Command::new("podman")
        .args(["ps", "--all", "--filter"])
        .arg(format!("ancestor={image}"))
        .args(["--format", "{{.ID}} {{.Status}}"])
        .output()
        .expect("podman ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}
