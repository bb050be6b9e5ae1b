//! Loads the programs through the verifier (no attach) and prints its statistics: how much of
//! the 1M-instruction budget each program uses, with the eBPF log level off and at `warn` (the
//! level is a load-time constant: with it off the verifier removes the log sites, and the
//! translated and JIT-compiled sizes show what is left), then kernel-cookie mode's programs as
//! 5.x loads them (on the listener, `SC_KC_LISTENER` 1). `cargo run --example verify` (root).

use aya::{
    EbpfLoader, VerifierLogLevel,
    programs::{SchedClassifier, Xdp},
};
use syncookie_common::maps::{PROG_TC, PROG_XDP, kernel_cookies};

fn main() -> anyhow::Result<()> {
    // Without the kfunc (before 6.9) the TC program cannot load, but the others can be tried.
    let obj = match syncookie::bpf::loader::linked_object() {
        Ok(obj) => obj,
        Err(e) => {
            println!("no kfunc ({e}): {PROG_TC} will not load");
            syncookie::bpf::loader::object_for(syncookie::host::kernel::Cookies::Kernel)?
        }
    };
    // The maps are pinned by name: keep them out of the shield's own directories.
    let pins = syncookie::bpf::pins::PinDir::new(
        "/sys/fs/bpf/syncookie-verify".as_ref(),
        &std::process::id().to_string(),
    )?;
    pins.create()?;
    let mut res = Ok(());
    for level in [0u8, 2] {
        println!(
            "eBPF log level {level} ({}):",
            if level == 0 { "off" } else { "warn" }
        );
        res = res.and_then(|()| verify(&obj, &pins, level, false));
    }
    println!("kernel-cookie mode on the listener (as on 5.x), eBPF log level off:");
    res = res.and_then(|()| verify(&obj, &pins, 0, true));
    pins.remove()?;
    res
}

fn verify(
    obj: &[u8],
    pins: &syncookie::bpf::pins::PinDir,
    level: u8,
    listener: bool,
) -> anyhow::Result<()> {
    let mut ebpf = EbpfLoader::new()
        .override_global(aya_log::LEVEL, &level, true)
        .override_global(kernel_cookies::GLOBAL_LISTENER, &u32::from(listener), true)
        // VERIFY_LOG=verbose: the instruction trace, for a rejection's context.
        .verifier_log_level(if std::env::var("VERIFY_LOG").as_deref() == Ok("verbose") {
            VerifierLogLevel::VERBOSE | VerifierLogLevel::STATS
        } else {
            VerifierLogLevel::STATS
        })
        .default_map_pin_directory(&pins.dir)
        .load(obj)?;
    let kc = [kernel_cookies::PROG_XDP, kernel_cookies::PROG_SYNACK];
    let all = [PROG_XDP, kc[0], kc[1]];
    for &name in if listener { &kc[..] } else { &all[..] } {
        let xdp: &mut Xdp = ebpf.program_mut(name).unwrap().try_into()?;
        let r = xdp.load();
        report(name, r, xdp.info().ok());
    }
    if listener {
        return Ok(());
    }
    let tc: &mut SchedClassifier = ebpf.program_mut(PROG_TC).unwrap().try_into()?;
    let r = tc.load();
    report(PROG_TC, r, tc.info().ok());
    Ok(())
}

fn report(
    name: &str,
    r: Result<(), aya::programs::ProgramError>,
    info: Option<aya::programs::ProgramInfo>,
) {
    let r = r.map_err(|e| format!("{e:#}"));
    println!("{name}: {}{}", summary(r), insns(info));
}

/// The instructions the verifier processed, and the sizes of what it left, for a program.
fn insns(info: Option<aya::programs::ProgramInfo>) -> String {
    info.map_or(String::new(), |i| {
        format!(
            " ({} instructions processed; {} bytes translated, {} JIT-compiled)",
            i.verified_instruction_count().unwrap_or(0),
            i.size_translated().unwrap_or(0),
            i.size_jitted()
        )
    })
}

fn summary(r: Result<(), String>) -> String {
    match r {
        Ok(()) => "loaded".into(),
        Err(e) => {
            let n = std::env::var("VERIFY_LINES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(6);
            e.lines().rev().take(n).collect::<Vec<_>>().join(" | ")
        }
    }
}
