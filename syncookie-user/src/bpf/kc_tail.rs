//! Kernel-cookie mode's second program: `syncookie_kc_synack` writes the SYN-ACK with every
//! option (tcp_timestamps=2), reached by a tail call through the pinned `SC_KC_TAIL[0]`. The
//! verifier checks it apart from `syncookie_kc_xdp`: together they passed its budget on 6.1.

use aya::{
    Ebpf,
    maps::{MapData, ProgramArray},
    programs::Xdp,
};
use syncookie_common::maps::{MAP_KC_TAIL, kernel_cookies::PROG_SYNACK};

use crate::bpf::loader::{LoadError, load_retrying, map_err, prog_err};

/// Loads `syncookie_kc_synack` and puts it in `SC_KC_TAIL[0]` (replacing a previous run's).
pub fn install(ebpf: &mut Ebpf) -> Result<(), LoadError> {
    let prog: &mut Xdp = ebpf
        .program_mut(PROG_SYNACK)
        .expect("object has the kernel-cookie SYN-ACK program")
        .try_into()
        .map_err(prog_err("XDP program"))?;
    load_retrying(|| prog.load()).map_err(prog_err("loading the kernel-cookie SYN-ACK program"))?;
    let fd = prog
        .fd()
        .map_err(prog_err("the kernel-cookie SYN-ACK program"))?
        .try_clone()
        .map_err(|e| LoadError::Program {
            what: "the kernel-cookie SYN-ACK program's fd".into(),
            source: aya::programs::ProgramError::IOError(e),
        })?;
    let map = ebpf.map_mut(MAP_KC_TAIL).expect("object has SC_KC_TAIL");
    let mut tail: ProgramArray<&mut MapData> =
        ProgramArray::try_from(map).map_err(map_err(MAP_KC_TAIL))?;
    tail.set(0, &fd, 0).map_err(map_err(MAP_KC_TAIL))
}
