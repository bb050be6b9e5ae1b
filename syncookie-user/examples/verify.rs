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
        .verifier_log_level(VerifierLogLevel::STATS)
        .default_map_pin_directory(&pins.dir)
        .load(obj)?;
    let xdp: &mut Xdp = ebpf.program_mut(PROG_XDP).unwrap().try_into()?;
    let r = xdp.load();
    println!("{PROG_XDP}: {}", summary(r.map_err(|e| format!("{e:#}"))));
    let kc: &mut Xdp = ebpf
        .program_mut(kernel_cookies::PROG_XDP)
        .unwrap()
        .try_into()?;
    let r = kc.load();
    println!(
        "{}: {}",
        kernel_cookies::PROG_XDP,
        summary(r.map_err(|e| format!("{e:#}")))
    );
    let tc: &mut SchedClassifier = ebpf.program_mut(PROG_TC).unwrap().try_into()?;
    let r = tc.load();
    println!("{PROG_TC}: {}", summary(r.map_err(|e| format!("{e:#}"))));
    Ok(())
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
