//! Builds the lab's eBPF programs (lab-ebpf/) for the tests, the demo and the bench; the
//! shield's own object comes embedded in syncookie-user.

fn main() {
    ebpf_build::build("lab-ebpf", &["lab"]);
}
