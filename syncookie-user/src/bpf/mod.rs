//! The shield's programs in the kernel: loading them (kfuncs and BTF made loadable on aya
//! 0.14), attaching them alone or in libxdp's dispatcher, their pins and typed pinned maps, and
//! their own log messages.

pub mod btf_fix;
pub mod ebpf_log;
pub mod kc_tail;
pub mod kfunc;
pub mod loader;
pub mod pinned;
pub mod pins;
pub mod share;
