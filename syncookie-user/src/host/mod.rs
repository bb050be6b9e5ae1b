//! The host the shield protects: what its kernel can do and is set to, its interfaces and VLANs,
//! the addresses it owns, and the privileges a command needs.

pub mod kernel;
pub mod local;
pub mod netdev;
pub mod privilege;
pub mod synack_config;
pub mod sysctl;
pub mod timestamps;
pub mod vlan;
