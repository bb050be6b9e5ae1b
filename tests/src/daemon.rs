//! `syncookie run` as a child process in a namespace, stopped with SIGTERM when dropped.

use std::{
    io::{BufRead, BufReader},
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use nix::{
    sched::{CloneFlags, setns},
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use syncookie::bpf::pins::{DEFAULT_ROOT, NetnsId, PinDir};

use crate::netns::Netns;

/// The `syncookie` binary built alongside the tests.
pub fn bin() -> PathBuf {
    let mut p = std::env::current_exe().expect("test exe");
    p.pop();
    if p.ends_with("deps") {
        p.pop();
    }
    p.join("syncookie")
}

/// `syncookie ARGS` to run in `ns`: its network namespace only, as an admin's `nsenter --net`
/// would (so that the host's bpffs pins stay visible); from the image when one was chosen
/// (`container::use_image`), as a container on the host network of `ns`.
pub fn command_in(ns: &Netns, args: &[&str]) -> Command {
    let file = ns.file();
    let mut cmd = match crate::container::image() {
        Some(image) => crate::container::command(image),
        None => Command::new(bin()),
    };
    cmd.args(args);
    // SAFETY: setns is async-signal-safe; only the child's network namespace changes.
    unsafe {
        cmd.pre_exec(move || setns(&file, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from));
    }
    cmd
}

/// Runs `syncookie ARGS` in `ns` to the end.
pub fn syncookie_in(ns: &Netns, args: &[&str]) -> std::process::Output {
    command_in(ns, args)
        .output()
        .unwrap_or_else(|e| panic!("syncookie {}: {e}", args.join(" ")))
}

/// Removes a pin directory when dropped: for tests whose shield outlives its daemon (a kill,
/// `--on-exit keep`). Pins left behind outlive the namespace, whose inode number the kernel
/// reuses: a later test would find them in "its" namespace directory.
pub struct Unpin(pub PinDir);

impl Drop for Unpin {
    fn drop(&mut self) {
        let _ = self.0.remove();
    }
}

/// Where `syncookie run --iface IFACE` in `ns` pins its maps and links.
pub fn pins(ns: &Netns, iface: &str) -> PinDir {
    let id = NetnsId::of(ns.path().as_ref()).expect("namespace id");
    PinDir::in_netns(DEFAULT_ROOT.as_ref(), id, iface)
}

pub struct Daemon {
    child: Option<Child>,
    pub output: std::sync::Arc<std::sync::Mutex<String>>,
    /// Error lines the test provoked on purpose (a substring each): not trouble.
    expected: Vec<String>,
}

impl Daemon {
    /// Starts `syncookie run --iface IF <args>` in `ns` and waits until it has attached.
    pub fn start(ns: &Netns, iface: &str, args: &[&str]) -> Self {
        Self::try_start(ns, iface, args)
            .unwrap_or_else(|out| panic!("syncookie run did not attach:\n{out}"))
    }

    /// [`Daemon::start`] with `RUST_LOG` set to `rust_log` (the daemon's and its eBPF programs'
    /// log levels).
    pub fn start_with_log(ns: &Netns, iface: &str, args: &[&str], rust_log: &str) -> Self {
        Self::try_start_with(ns, iface, args, Some(rust_log))
            .unwrap_or_else(|out| panic!("syncookie run did not attach:\n{out}"))
    }

    /// [`Daemon::start`], or what `syncookie run` printed when it did not attach.
    pub fn try_start(ns: &Netns, iface: &str, args: &[&str]) -> Result<Self, String> {
        Self::try_start_with(ns, iface, args, None)
    }

    fn try_start_with(
        ns: &Netns,
        iface: &str,
        args: &[&str],
        rust_log: Option<&str>,
    ) -> Result<Self, String> {
        let mut cmd = command_in(ns, &["run", "--iface", iface]);
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(l) = rust_log {
            cmd.env("RUST_LOG", l);
        }
        let mut child = cmd.spawn().expect("spawn syncookie");
        let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let o2 = out.clone();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                o2.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l == "attached" => break,
                Some(Ok(l)) => out.lock().unwrap().push_str(&(l + "\n")),
                _ => {
                    let _ = child.wait();
                    // It ends with the process: the error is the last thing it reads.
                    let _ = stderr_reader.join();
                    return Err(out.lock().unwrap().clone());
                }
            }
        }
        let o3 = out.clone();
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                o3.lock().unwrap().push_str(&(l + "\n"));
            }
        });
        Ok(Self {
            child: Some(child),
            output: out,
            expected: Vec::new(),
        })
    }

    /// Says that error lines containing `what` are what the test provoked: the check for
    /// trouble when the daemon is dropped passes over them.
    pub fn expect_error(&mut self, what: &str) {
        self.expected.push(what.to_string());
    }

    /// SIGKILL, as a crash would, then waits.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGKILL);
            let _ = c.wait();
        }
    }

    /// The daemon's process id while it runs.
    pub fn pid(&self) -> Option<Pid> {
        self.child.as_ref().map(|c| Pid::from_raw(c.id() as i32))
    }

    /// Sends `sig` to the daemon while it runs.
    pub fn signal(&self, sig: Signal) {
        if let Some(pid) = self.pid() {
            kill(pid, sig).expect("signal the daemon");
        }
    }

    /// SIGTERM, then waits; returns the exit status's success.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
        // A daemon a test stopped (SIGSTOP) handles the SIGTERM only once continued.
        let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGCONT);
        c.wait().map(|s| s.success()).unwrap_or(false)
    }
}

/// A line the daemon writes only when something went wrong: an `error!` (env_logger's
/// `[time ERROR target]`) or a Rust panic, but for errors the test provoked (`expected`).
fn trouble<'a>(output: &'a str, expected: &[String]) -> Option<&'a str> {
    output.lines().find(|l| {
        (l.contains(" ERROR ") && !expected.iter().any(|e| l.contains(e.as_str())))
            || l.contains("panicked at")
    })
}

/// A daemon that died during the test, did not exit cleanly on SIGTERM, or logged an error or
/// a panic fails the test that ran it (unless that test is failing already).
impl Drop for Daemon {
    fn drop(&mut self) {
        let died = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        let clean = self.stop();
        if std::thread::panicking() {
            return;
        }
        let out = self.output.lock().unwrap().clone();
        if let Some(status) = died {
            panic!("syncookie run died during the test ({status}):\n{out}");
        }
        assert!(
            clean,
            "syncookie run did not exit cleanly on SIGTERM:\n{out}"
        );
        if let Some(line) = trouble(&out, &self.expected) {
            panic!("syncookie run logged trouble: {line}\n{out}");
        }
    }
}

/// How `syncookie run` begins its refusal on a kernel that cannot run a mode
/// (`syncookie::host::kernel::KernelError`).
pub const UNSUPPORTED: &str = "not supported: ";
