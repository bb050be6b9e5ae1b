//! The command line: one module per subcommand.

mod detach;
mod mode;
mod rotate;
mod run;
mod stats;
mod status;

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use syncookie::{
    bpf::pins::{DEFAULT_ROOT, PinDir, PinError},
    host::netdev,
};

/// SYN-flood shield: answers SYNs to protected TCP ports from XDP with SYN cookies and hands
/// valid ACKs to the kernel as normal connections.
#[derive(Parser)]
#[command(name = "syncookie", version)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Run(run::Args),
    Stats(stats::Args),
    Status(status::Args),
    Rotate(rotate::Args),
    Detach(detach::Args),
    Mode(mode::Args),
}

/// Where an interface's shield keeps its pinned maps.
#[derive(clap::Args, Clone)]
pub struct Target {
    /// Interface the shield is attached to, in this command's network namespace.
    #[arg(long, short)]
    iface: String,
    /// bpffs directory holding one directory per network namespace, and in it one directory of
    /// pinned maps per interface.
    #[arg(long, default_value = DEFAULT_ROOT)]
    pin_root: PathBuf,
}

impl Target {
    /// The shield of this interface in our own network namespace: run the command inside the
    /// namespace (`nsenter --net=/run/netns/NAME`) to reach another one's.
    fn pins(&self) -> Result<PinDir, PinError> {
        PinDir::new(&self.pin_root, &self.iface)
    }

    /// The pin directory of a shield to read or change: an unknown interface is an error unless
    /// pins of it are left (it was deleted under a shield); pins of another version are one.
    /// `None` when the interface exists but has no shield.
    /// The pins of the shield on the interface, if one is there; `cmd` names the command in
    /// the error when the caller may not read them.
    fn attached(&self, cmd: &'static str) -> anyhow::Result<Option<PinDir>> {
        syncookie::host::privilege::require_pin_access(cmd)?;
        let pins = self.pins()?;
        if !pins.exists() {
            netdev::ifindex(&self.iface)?;
            return Ok(None);
        }
        pins.check_layout()?;
        Ok(Some(pins))
    }
}

/// An error and its causes on one line, each said once: a cause whose text the line already
/// holds (a message that also quotes its source, as some of aya's do) is left out.
pub fn render(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let m = cause.to_string();
        if m.is_empty() || line.contains(&m) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&m);
    }
    line
}

/// `--ports`: a TCP port, 1-65535.
fn port(s: &str) -> Result<u16, String> {
    match s.trim().parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        _ => Err("not a TCP port (1-65535)".into()),
    }
}

pub fn main() -> anyhow::Result<()> {
    let m = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&m).unwrap_or_else(|e| e.exit());
    match cli.cmd {
        // `run` needs its matches: flags given on the command line override the config file.
        Cmd::Run(a) => run::run(a, m.subcommand_matches("run").expect("the run subcommand")),
        Cmd::Stats(a) => stats::run(a),
        Cmd::Status(a) => status::run(a),
        Cmd::Rotate(a) => rotate::run(a),
        Cmd::Detach(a) => detach::run(a),
        Cmd::Mode(a) => mode::run(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_says_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("loading: {0}")]
        struct Quoting(#[source] std::io::Error);
        let io = || std::io::Error::from_raw_os_error(13);
        let e = anyhow::Error::new(Quoting(io())).context("attaching to lo");
        assert_eq!(
            render(&e),
            "attaching to lo: loading: Permission denied (os error 13)"
        );
        let e = anyhow::Error::new(io()).context("/run/syncookie/lo.lock");
        assert_eq!(
            render(&e),
            "/run/syncookie/lo.lock: Permission denied (os error 13)"
        );
    }

    #[test]
    fn ports_are_1_to_65535() {
        assert_eq!(port("1"), Ok(1));
        assert_eq!(port("65535"), Ok(65535));
        for bad in ["0", "65536", "-1", "http"] {
            let e = port(bad).unwrap_err();
            assert!(e.contains("1-65535"), "{e}");
        }
    }
}
