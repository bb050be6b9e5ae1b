//! Makes the BTF that bpf-linker 0.10 emits acceptable to the kernel, which needs it for one
//! thing here: an `freplace` extension (the shield in libxdp's dispatcher) is loaded only with
//! BTF function info, to check its signature against the function it replaces.
//! - Names: bpf-linker writes some Rust type names as they are (a union `MaybeUninit<u8>` from
//!   aya-log), and `BPF_BTF_LOAD` refuses any type, member or parameter name that is not a C
//!   identifier (kernel/bpf/btf.c, `btf_name_valid_identifier()`). Each bad character becomes
//!   `_` in place: the string table keeps its length, so no offset moves.
//! - Line info: it has records with the same instruction offset, which `BPF_PROG_LOAD` refuses
//!   (`check_btf_line()`: "Invalid line_info"); line info only names source lines in verifier
//!   logs, so `.BTF.ext` says it has none (its length field set to 0).
//!
//! Delete this module when bpf-linker emits BTF the kernel takes as it is.

use object::{Object, ObjectSection};

/// BTF kinds (include/uapi/linux/btf.h) and the bytes each adds after its 12-byte header.
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;

#[derive(Debug, thiserror::Error)]
pub enum BtfFixError {
    #[error("cannot parse the eBPF object")]
    Elf(#[from] object::Error),
    #[error("the eBPF object's BTF is truncated at byte {0}")]
    Truncated(usize),
}

/// Renames, in `elf`'s `.BTF` section, every type, member and parameter name that the kernel
/// would refuse. An object without BTF is left as it is.
pub fn sanitize(elf: &mut [u8]) -> Result<(), BtfFixError> {
    if let Some(r) = section(elf, ".BTF")? {
        sanitize_btf(&mut elf[r])?;
    }
    if let Some(r) = section(elf, ".BTF.ext")? {
        // struct btf_ext_header: magic, version, flags, hdr_len, func_info_off/len,
        // line_info_off/len.
        let len = elf
            .get_mut(r.start + 20..r.start + 24)
            .ok_or(BtfFixError::Truncated(20))?;
        len.copy_from_slice(&0u32.to_le_bytes());
    }
    Ok(())
}

/// Where section `name` lies in `elf`.
fn section(elf: &[u8], name: &str) -> Result<Option<std::ops::Range<usize>>, BtfFixError> {
    let file = object::File::parse(elf)?;
    Ok(file
        .section_by_name(name)
        .and_then(|s| s.file_range())
        .map(|(at, len)| at as usize..(at + len) as usize))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, BtfFixError> {
    b.get(at..at + 4)
        .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")))
        .ok_or(BtfFixError::Truncated(at))
}

/// `btf` is a `.BTF` section: header, type section, string section (little-endian).
fn sanitize_btf(btf: &mut [u8]) -> Result<(), BtfFixError> {
    let hdr_len = u32_at(btf, 4)? as usize;
    let (type_off, type_len) = (u32_at(btf, 8)? as usize, u32_at(btf, 12)? as usize);
    let str_off = u32_at(btf, 16)? as usize;
    let types = hdr_len + type_off..hdr_len + type_off + type_len;
    let strings = hdr_len + str_off;
    // (name offset, whether a dot is allowed: section names such as `.rodata`).
    let mut names = Vec::new();
    let mut at = types.start;
    while at < types.end {
        let name = u32_at(btf, at)?;
        let info = u32_at(btf, at + 4)?;
        let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
        names.push((name, kind == KIND_DATASEC));
        at += 12;
        let (each, named) = match kind {
            KIND_INT | KIND_VAR | KIND_DECL_TAG => (4, false),
            KIND_ARRAY => (12, false),
            KIND_STRUCT | KIND_UNION | KIND_ENUM64 => (12, true),
            KIND_ENUM | KIND_FUNC_PROTO => (8, true),
            KIND_DATASEC => (12, false),
            _ => (0, false),
        };
        let count = match kind {
            KIND_INT | KIND_VAR | KIND_DECL_TAG | KIND_ARRAY => 1,
            _ => vlen,
        };
        for i in 0..count {
            if named {
                names.push((u32_at(btf, at + i * each)?, false));
            }
        }
        at += each * count;
    }
    for (name, dot_ok) in names {
        let start = strings + name as usize;
        let mut i = start;
        while let Some(c) = btf.get_mut(i).filter(|c| **c != 0) {
            let ok = c.is_ascii_alphanumeric() || *c == b'_' || (dot_ok && *c == b'.');
            if !ok || (i == start && c.is_ascii_digit()) {
                *c = b'_';
            }
            i += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob: header, `types` (already encoded), then `strings`.
    fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
        let mut b = vec![0x9f, 0xeb, 1, 0];
        let tlen = (types.len() * 4) as u32;
        for w in [24, 0, tlen, tlen, strings.len() as u32] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        for w in types {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(strings);
        b
    }

    #[test]
    fn union_and_member_names_become_identifiers_sections_keep_dots() {
        // 1: UNION "MaybeUninit<u8>" size 1, one member "1x" of type 2 at bit 0;
        // 2: INT "u8"; 3: DATASEC ".rodata" with no entries.
        let strings = b"\0MaybeUninit<u8>\x001x\0u8\0.rodata\0";
        let types = [
            1,
            (KIND_UNION << 24) | 1,
            1,
            17,
            2,
            0,
            20,
            KIND_INT << 24,
            1,
            8,
            23,
            KIND_DATASEC << 24,
            0,
        ];
        let mut b = blob(&types, strings);
        sanitize_btf(&mut b).unwrap();
        let s = &b[24 + types.len() * 4..];
        assert_eq!(s, b"\0MaybeUninit_u8_\0_x\0u8\0.rodata\0");
    }

    #[test]
    fn the_shields_object_is_left_valid() {
        let mut obj = crate::EBPF_OBJECT.to_vec();
        sanitize(&mut obj).unwrap();
        let again = obj.clone();
        sanitize(&mut obj).unwrap();
        assert_eq!(obj, again, "a second pass changes nothing");
        let btf = &obj[section(&obj, ".BTF").unwrap().expect("the object has BTF")];
        assert!(!btf.windows(16).any(|w| w == b"MaybeUninit<u8>\0"));
        let ext = &obj[section(&obj, ".BTF.ext").unwrap().expect("and BTF.ext")];
        assert_eq!(ext[20..24], [0; 4], "no line info");
    }
}
