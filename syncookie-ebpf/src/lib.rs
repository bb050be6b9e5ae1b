//! The shield's packet code, shared by its programs (`src/main.rs`) and by the lab's test and
//! benchmark programs (`lab-ebpf/`): parsing, checksums, socket lookups, the cookie ACK check
//! and the SYN-ACK writer. No maps here: what the code reads from maps comes in through
//! [`keys::Keys`], [`local::Local`] and `&Config`, so each object brings its own maps.
#![no_std]
// For `parse::opaque`, an empty asm barrier that keeps LLVM from rewriting bounds checks.
#![feature(asm_experimental_arch)]

pub mod ack;
pub mod csum;
pub mod keys;
pub mod local;
pub mod martian;
pub mod parse;
pub mod sock;
pub mod synack;
pub mod tcpopts;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Unreachable by construction (no indexing, no unwrap); the verifier rejects a real loop.
    loop {}
}

/// The license section every object of ours carries: kfuncs and the helpers we use need a
/// GPL-compatible license. Expands to the `license` static in the calling crate (a static in
/// this library would not be linked into the object).
#[macro_export]
macro_rules! license {
    () => {
        #[unsafe(link_section = "license")]
        #[unsafe(no_mangle)]
        static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
    };
}
