//! Loads both programs through the verifier (no attach) and prints its statistics: how much of
//! the 1M-instruction budget each program uses. `cargo run --example verify` (root).

use aya::{
    EbpfLoader, VerifierLogLevel,
    programs::{SchedClassifier, Xdp},
};
use syncookie_common::maps::{PROG_TC, PROG_XDP, kernel_cookies};

fn main() -> anyhow::Result<()> {
    let obj = syncookie::loader::linked_object()?;
    // The maps are pinned by name: keep them out of the shield's own directories.
    let pins = syncookie::pins::PinDir::new(
        "/sys/fs/bpf/syncookie-verify".as_ref(),
        &std::process::id().to_string(),
    )?;
    pins.create()?;
    let res = verify(&obj, &pins);
    pins.remove()?;
    res
}

fn verify(obj: &[u8], pins: &syncookie::pins::PinDir) -> anyhow::Result<()> {
    let mut ebpf = EbpfLoader::new()
        // VERIFY_LOG=verbose: the instruction trace, for a rejection's context.
        .verifier_log_level(if std::env::var("VERIFY_LOG").as_deref() == Ok("verbose") {
            VerifierLogLevel::VERBOSE | VerifierLogLevel::STATS
        } else {
            VerifierLogLevel::STATS
        })
        .default_map_pin_directory(&pins.dir)
        .load(obj)?;
    let xdp: &mut Xdp = ebpf.program_mut(PROG_XDP).unwrap().try_into()?;
    let r = xdp.load();
    let n = insns(xdp.info().ok().and_then(|i| i.verified_instruction_count()));
    println!(
        "{PROG_XDP}: {}{n}",
        summary(r.map_err(|e| format!("{e:#}")))
    );
    let kc: &mut Xdp = ebpf
        .program_mut(kernel_cookies::PROG_XDP)
        .unwrap()
        .try_into()?;
    let r = kc.load();
    let n = insns(kc.info().ok().and_then(|i| i.verified_instruction_count()));
    println!(
        "{}: {}{n}",
        kernel_cookies::PROG_XDP,
        summary(r.map_err(|e| format!("{e:#}")))
    );
    let tc: &mut SchedClassifier = ebpf.program_mut(PROG_TC).unwrap().try_into()?;
    let r = tc.load();
    let n = insns(tc.info().ok().and_then(|i| i.verified_instruction_count()));
    println!("{PROG_TC}: {}{n}", summary(r.map_err(|e| format!("{e:#}"))));
    Ok(())
}

/// The instructions the verifier processed, for a loaded program.
fn insns(n: Option<u32>) -> String {
    n.map_or(String::new(), |n| format!(" ({n} instructions processed)"))
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
