//! The `run` configuration file (`--config FILE`, TOML): every `run` flag but `--iface` and
//! `--pin-root` by its long name, e.g. `synack-prefix-rate = 500`. Flags on the command line override the file. An unknown
//! key or a bad value is an error naming it, raised before anything is loaded or attached.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use crate::{
    bpf::{loader::XdpModeArg, share::Actions},
    host::kernel::Cookies,
    policy::ModeArg,
};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: {key} = {value}: {why}")]
    Value {
        path: PathBuf,
        key: &'static str,
        value: String,
        why: &'static str,
    },
}

/// What `run` does with the shield when it exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnExit {
    /// Remove the programs, maps and pins.
    Detach,
    /// Leave the shield working with its keys, for the next `run` to take over.
    Keep,
}

/// The file's settings; each one absent unless the file sets it.
#[derive(Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RunFile {
    pub ports: Option<Vec<u16>>,
    pub xdp_mode: Option<XdpModeArg>,
    pub xdp_share: Option<bool>,
    pub xdp_priority: Option<u32>,
    pub xdp_chain: Option<Actions>,
    pub mode: Option<ModeArg>,
    pub engage_rate: Option<u32>,
    pub synack_rate: Option<u32>,
    pub synack_prefix_rate: Option<u32>,
    pub reset_rate: Option<u32>,
    pub rotate_secs: Option<u64>,
    pub report_secs: Option<u64>,
    pub metrics: Option<SocketAddr>,
    pub master_key_file: Option<PathBuf>,
    pub on_exit: Option<OnExit>,
    pub cookies: Option<Cookies>,
    pub refresh_secs: Option<u64>,
    pub timestamps_without_offsets: Option<bool>,
}

impl RunFile {
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let f: RunFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            // toml's message names the key and shows the line; one line is enough here.
            message: e.message().trim().to_string()
                + &e.span()
                    .map(|s| format!(" (at line {})", text[..s.start].lines().count().max(1)))
                    .unwrap_or_default(),
        })?;
        let bad = |key, value: String, why| ConfigError::Value {
            path: path.into(),
            key,
            value,
            why,
        };
        if let Some(p) = &f.ports {
            if p.is_empty() {
                return Err(bad("ports", "[]".into(), "name at least one port"));
            }
            if p.contains(&0) {
                return Err(bad("ports", format!("{p:?}"), "ports are 1-65535"));
            }
        }
        if let Some(r) = f.refresh_secs
            && !(1..=100).contains(&r)
        {
            return Err(bad("refresh-secs", r.to_string(), "1-100 seconds"));
        }
        if f.rotate_secs == Some(0) {
            return Err(bad("rotate-secs", "0".into(), "at least 1 second"));
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<RunFile, String> {
        RunFile::parse(Path::new("x.toml"), t).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_file_parses() {
        let f = parse(
            "ports = [80, 443]\nxdp-mode = \"skb\"\nmode = \"auto\"\n\
             engage-rate = 500\nsynack-rate = 0\nsynack-prefix-rate = 100\nreset-rate = 10\n\
             rotate-secs = 30\nreport-secs = 60\nmetrics = \"127.0.0.1:9813\"\n",
        )
        .unwrap();
        assert_eq!(f.ports, Some(vec![80, 443]));
        assert_eq!(f.mode, Some(ModeArg::Auto));
        assert_eq!(f.xdp_mode, Some(XdpModeArg::Skb));
        assert_eq!(f.metrics, Some("127.0.0.1:9813".parse().unwrap()));
        let f =
            parse("cookies = \"kernel\"\nrefresh-secs = 10\ntimestamps-without-offsets = true\n")
                .unwrap();
        assert_eq!(f.cookies, Some(Cookies::Kernel));
        assert_eq!(f.refresh_secs, Some(10));
        assert_eq!(f.timestamps_without_offsets, Some(true));
        let f = parse("xdp-share = true\nxdp-priority = 5\nxdp-chain = [\"pass\", \"drop\"]\n")
            .unwrap();
        assert_eq!(
            (f.xdp_share, f.xdp_priority, f.xdp_chain),
            (Some(true), Some(5), Some(Actions(0b110)))
        );
        assert!(parse("xdp-chain = [\"jump\"]").is_err());
        assert!(parse("cookies = \"theirs\"").is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = parse("port = [80]").unwrap_err();
        assert!(e.contains("unknown field `port`"), "{e}");
        let e = parse("mode = \"fast\"").unwrap_err();
        assert!(e.contains("fast") && e.contains("line 1"), "{e}");
        let e = parse("ports = [0]").unwrap_err();
        assert!(e.contains("ports") && e.contains("1-65535"), "{e}");
        let e = parse("engage-rate = -1").unwrap_err();
        assert!(e.contains("engage-rate") || e.contains("-1"), "{e}");
    }
}
