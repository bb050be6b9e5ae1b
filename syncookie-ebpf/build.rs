//! BTF for the shield's object only (not the lab's, which shares this crate's library): the
//! kernel loads an `freplace` extension (the shield in libxdp's dispatcher) only with BTF
//! function info, to check its signature against the function it replaces. A link argument of
//! one binary leaves the shared build of `core` and the library untouched.

fn main() {
    println!("cargo:rustc-link-arg-bin=syncookie=--btf");
}
