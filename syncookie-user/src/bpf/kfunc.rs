//! Links kfunc calls on aya 0.14, which has no ksym support: bpf-linker leaves `call -1` with a
//! relocation to the undefined kfunc symbol; we turn each into a `BPF_PSEUDO_KFUNC_CALL` whose
//! imm is the function's id in the kernel's BTF. The verifier resolves it at load. Delete this
//! module once aya's own kfunc support can be used (aya 0.15+, rustc 1.98).

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};

/// `src_reg` value marking a call as a kfunc call (include/uapi/linux/bpf.h).
const BPF_PSEUDO_KFUNC_CALL: u8 = 2;
/// `BPF_JMP | BPF_CALL`.
const OPCODE_CALL: u8 = 0x85;

/// The kernel's BTF, which the kfunc's id is looked up in.
const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum KfuncError {
    #[error("cannot parse the eBPF object")]
    Elf(#[from] object::Error),
    #[error(
        "this kernel (Linux {kernel}) does not have the kfunc {name}, which the shield needs to \
         hand connections to the kernel: run Linux 6.9 or later (built with \
         CONFIG_DEBUG_INFO_BTF=y)"
    )]
    Missing { name: String, kernel: String },
    #[error("relocation to {name} at offset {offset} of section {section} is not a call")]
    NotACall {
        name: String,
        section: String,
        offset: u64,
    },
    #[error(
        "this kernel has no BTF ({VMLINUX_BTF} is missing): the shield needs a kernel built with \
         CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoBtf,
    #[error("cannot read the kernel's BTF ({VMLINUX_BTF})")]
    Btf(#[source] aya_obj::btf::BtfError),
}

/// The running kernel's release, as `uname -r` prints it.
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// Returns a copy of `elf` whose calls to the `names` kfuncs carry their kernel BTF ids, as
/// given by `btf_id`. Returns how many calls were patched alongside.
pub fn patch(
    elf: &[u8],
    names: &[&str],
    btf_id: impl Fn(&str) -> Option<u32>,
) -> Result<(Vec<u8>, usize), KfuncError> {
    let file = object::File::parse(elf)?;
    let mut out = elf.to_vec();
    let mut patched = 0;
    for section in file.sections() {
        let Some((base, _)) = section.file_range() else {
            continue;
        };
        for (offset, reloc) in section.relocations() {
            let RelocationTarget::Symbol(idx) = reloc.target() else {
                continue;
            };
            let sym = file.symbol_by_index(idx)?;
            let name = sym.name()?;
            if !sym.is_undefined() || !names.contains(&name) {
                continue;
            }
            let at = (base + offset) as usize;
            let insn = out
                .get_mut(at..at + 8)
                .ok_or_else(|| KfuncError::NotACall {
                    name: name.into(),
                    section: section.name().unwrap_or("?").into(),
                    offset,
                })?;
            if insn[0] != OPCODE_CALL {
                return Err(KfuncError::NotACall {
                    name: name.into(),
                    section: section.name().unwrap_or("?").into(),
                    offset,
                });
            }
            let id = btf_id(name).ok_or_else(|| KfuncError::Missing {
                name: name.into(),
                kernel: kernel_release(),
            })?;
            insn[1] = BPF_PSEUDO_KFUNC_CALL << 4; // dst_reg 0, src_reg 2
            insn[2..4].copy_from_slice(&0i16.to_le_bytes());
            insn[4..8].copy_from_slice(&id.to_le_bytes());
            patched += 1;
        }
    }
    Ok((out, patched))
}

/// Looks kfunc ids up in the running kernel's BTF.
pub fn kernel_btf_ids() -> Result<impl Fn(&str) -> Option<u32>, KfuncError> {
    use aya_obj::btf::{Btf, BtfKind};
    if !std::path::Path::new(VMLINUX_BTF).exists() {
        return Err(KfuncError::NoBtf);
    }
    let btf = Btf::from_sys_fs().map_err(KfuncError::Btf)?;
    Ok(move |name: &str| btf.id_by_type_name_kind(name, BtfKind::Func).ok())
}

#[cfg(test)]
mod tests {
    use syncookie_common::maps::KFUNC_ASSIGN_REQSK;

    use super::*;

    fn call_sites(elf: &[u8]) -> Vec<usize> {
        let file = object::File::parse(elf).unwrap();
        let mut at = Vec::new();
        for s in file.sections() {
            let (base, _) = s.file_range().unwrap_or((0, 0));
            for (off, r) in s.relocations() {
                if let RelocationTarget::Symbol(i) = r.target()
                    && file.symbol_by_index(i).unwrap().name().unwrap() == KFUNC_ASSIGN_REQSK
                {
                    at.push((base + off) as usize);
                }
            }
        }
        at
    }

    #[test]
    fn patches_every_call_and_nothing_else() {
        let elf = crate::EBPF_OBJECT;
        let sites = call_sites(elf);
        assert!(
            !sites.is_empty(),
            "the object must call {KFUNC_ASSIGN_REQSK}"
        );
        let (out, n) = patch(elf, &[KFUNC_ASSIGN_REQSK], |_| Some(0x1234_5678)).unwrap();
        assert_eq!(n, sites.len());
        for &at in &sites {
            assert_eq!(elf[at], OPCODE_CALL);
            assert_eq!(
                &out[at..at + 8],
                &[0x85, 0x20, 0, 0, 0x78, 0x56, 0x34, 0x12]
            );
        }
        let mut rest_in = elf.to_vec();
        let mut rest_out = out.clone();
        for &at in &sites {
            rest_in[at..at + 8].fill(0);
            rest_out[at..at + 8].fill(0);
        }
        assert_eq!(rest_in, rest_out, "only the call instructions change");
    }

    #[test]
    fn a_missing_kfunc_names_the_kernel_needed() {
        let err = patch(crate::EBPF_OBJECT, &[KFUNC_ASSIGN_REQSK], |_| None).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(KFUNC_ASSIGN_REQSK)
                && msg.contains("6.9")
                && msg.contains(&format!("Linux {}", kernel_release())),
            "{msg}"
        );
    }

    #[test]
    fn unlisted_symbols_are_left_alone() {
        let (out, n) = patch(crate::EBPF_OBJECT, &["no_such_kfunc"], |_| Some(1)).unwrap();
        assert_eq!(n, 0);
        assert_eq!(out, crate::EBPF_OBJECT);
    }

    #[test]
    fn running_kernel_has_the_kfunc() {
        // BTF is world-readable; this runs unprivileged.
        let ids = kernel_btf_ids().expect("kernel BTF");
        assert!(ids(KFUNC_ASSIGN_REQSK).is_some(), "Linux 6.9+ needed");
    }
}
