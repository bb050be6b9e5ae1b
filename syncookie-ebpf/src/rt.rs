//! What every eBPF object of this crate needs: a panic handler and the license.

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Unreachable by construction (no indexing, no unwrap); the verifier rejects a real loop.
    loop {}
}

/// kfuncs and the helpers we use need a GPL-compatible license.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
