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

pub struct Daemon {
    child: Option<Child>,
    pub output: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Daemon {
    /// Starts `syncookie run --iface IF <args>` in `ns` and waits until it has attached.
    pub fn start(ns: &Netns, iface: &str, args: &[&str]) -> Self {
        Self::try_start(ns, iface, args)
            .unwrap_or_else(|out| panic!("syncookie run did not attach:\n{out}"))
    }

    /// [`Daemon::start`], or what `syncookie run` printed when it did not attach.
    pub fn try_start(ns: &Netns, iface: &str, args: &[&str]) -> Result<Self, String> {
        let file = ns.file();
        let mut cmd = Command::new(bin());
        cmd.args(["run", "--iface", iface])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: setns is async-signal-safe; only the child's network namespace changes.
        unsafe {
            cmd.pre_exec(move || {
                setns(&file, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
            });
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
        })
    }

    /// SIGKILL, as a crash would, then waits.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGKILL);
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits; returns the exit status's success.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
        c.wait().map(|s| s.success()).unwrap_or(false)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
