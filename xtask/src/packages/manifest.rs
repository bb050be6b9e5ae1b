//! The DaemonSet manifest (packaging/syncookie-daemonset.yaml): its ConfigMap's TOML, so that
//! the image test runs `syncookie run` with the very settings a fleet gets.

use anyhow::{Context, bail};

/// The manifest's ConfigMap key holding `run --config`'s TOML (a YAML literal block).
const KEY: &str = "syncookie.toml: |";
/// Where the DaemonSet mounts that key, as its container's args name it.
const MOUNTED: &str = "- /etc/syncookie/syncookie.toml";

/// The TOML of the manifest's ConfigMap, its indentation removed; fails unless the DaemonSet
/// passes it to `run --config` where it mounts it.
pub fn config_toml(yaml: &str) -> anyhow::Result<String> {
    let mut lines = yaml.lines().skip_while(|l| l.trim() != KEY);
    let key = lines
        .next()
        .with_context(|| format!("no `{KEY}` in the manifest"))?;
    let indent = |l: &str| l.len() - l.trim_start().len();
    let key_indent = indent(key);
    let block: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || indent(l) > key_indent)
        .collect();
    let body_indent = block
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| indent(l))
        .min()
        .context("the ConfigMap's TOML is empty")?;
    let toml: String = block
        .iter()
        .map(|l| l.get(body_indent..).unwrap_or("").to_string() + "\n")
        .collect();
    if !yaml.lines().any(|l| l.trim() == MOUNTED) {
        bail!("the DaemonSet does not pass `{MOUNTED}` to `run --config`");
    }
    Ok(toml.trim_end().to_string() + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configmap_toml_is_read_from_the_manifest() {
        let yaml = "data:\n  iface: eth0\n  syncookie.toml: |\n    ports = [80]\n\n    \
                    mode = \"always\"\n---\nkind: DaemonSet\n          args:\n            \
                    - --config\n            - /etc/syncookie/syncookie.toml\n";
        assert_eq!(
            config_toml(yaml).unwrap(),
            "ports = [80]\n\nmode = \"always\"\n"
        );
        assert!(config_toml("data:\n  iface: eth0\n").is_err());
        let unused = yaml.replace("- /etc/syncookie/syncookie.toml", "- /etc/other.toml");
        assert!(config_toml(&unused).is_err());
    }

    #[test]
    fn the_shipped_manifest_has_one() {
        let yaml = include_str!("../../../packaging/syncookie-daemonset.yaml");
        let toml = config_toml(yaml).unwrap();
        assert!(toml.starts_with("ports = ["), "{toml}");
    }
}
