//! The host tools `test-packages` runs, each installed with apt only when its command is
//! missing, and only when apt's simulation (`apt-get install -s`) shows the install removes no
//! package: a test must not take a developer's tools away.

use std::process::Command;

use anyhow::{Context, bail};

use crate::exec::{exec, output};

/// Installs the package of each `(command, package)` whose command is missing.
pub fn ensure(tools: &[(&str, &str)]) -> anyhow::Result<()> {
    let missing: Vec<&str> = tools
        .iter()
        .filter(|(cmd, _)| !have(cmd))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let simulated = match simulate(&missing) {
        Ok(s) => s,
        Err(_) => {
            // Stale lists may name versions the mirror no longer has.
            exec(Command::new("apt-get").args(["update", "-q"]))?;
            simulate(&missing)?
        }
    };
    let removed = removals(&simulated);
    if !removed.is_empty() {
        bail!(
            "installing {} would remove {}: install them by hand if that is fine",
            missing.join(" "),
            removed.join(" ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    exec(install(&missing, false).env("DEBIAN_FRONTEND", "noninteractive"))
}

pub fn have(cmd: &str) -> bool {
    output(Command::new("sh").args(["-c", &format!("command -v {cmd}")])).is_some()
}

fn install(packages: &[&str], simulate: bool) -> Command {
    let mut c = Command::new("apt-get");
    c.args(["install", "-y", "-q", "--no-install-recommends"]);
    if simulate {
        c.arg("-s");
    }
    c.args(packages);
    c
}

fn simulate(packages: &[&str]) -> anyhow::Result<String> {
    output(&mut install(packages, true))
        .with_context(|| format!("apt-get install -s {} failed", packages.join(" ")))
}

/// The packages a simulated install would remove ("Remv NAME [VERSION]" lines).
fn removals(simulated: &str) -> Vec<String> {
    simulated
        .lines()
        .filter_map(|l| l.strip_prefix("Remv "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::removals;

    #[test]
    fn removals_are_read_from_the_simulation() {
        let sim = "Reading package lists...\n\
                   Remv gcc-multilib [4:12.2.0-3]\n\
                   Inst podman (4.3.1+ds1-8+deb12u1+b3 Debian:12.15/oldstable [amd64])\n\
                   Conf podman (4.3.1+ds1-8+deb12u1+b3 Debian:12.15/oldstable [amd64])\n";
        assert_eq!(removals(sim), ["gcc-multilib"]);
        assert!(removals("Inst runc (1.1.5)\n").is_empty());
    }
}
