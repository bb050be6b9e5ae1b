//! Builds the shield's eBPF object so that a plain `cargo build` of the daemon embeds the
//! programs it loads: one binary to install. Only the shield: the lab's programs are built for
//! the tests and the benchmark by their own crates.

fn main() {
    ebpf_build::build("syncookie-ebpf", &["syncookie"]);
}
