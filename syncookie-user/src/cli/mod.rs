//! The command line: one module per subcommand.

mod detach;
mod mode;
mod rotate;
mod run;
mod stats;
mod status;

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use syncookie::pins::{DEFAULT_ROOT, PinDir, PinError};

/// SYN-flood shield: answers SYNs to protected TCP ports from XDP with SYN cookies and hands
/// valid ACKs to the kernel as normal connections.
#[derive(Parser)]
#[command(version)]
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
