//! The shield's object made loadable for this kernel (kfunc calls linked, BTF sanitized), loaded
//! with its maps pinned, and its configuration maps written before anything is attached.

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData},
};
use syncookie_common::maps::{
    Config, GLOBAL_SKIP, KFUNC_ASSIGN_REQSK, MAP_CONFIG, MAP_KC_CONF, MAP_PORTS, PORTS_LEN,
    kernel_cookies, port_word,
};

use super::{LoadError, map_err};
use crate::{
    EBPF_OBJECT,
    bpf::{btf_fix, kfunc, pins::PinDir},
    host::kernel::Cookies,
};

/// Runs a program load, again when the verifier gave up with EAGAIN: it does when a signal
/// reaches the loading thread while it works (seen about once in 40 loads on a busy machine).
/// libbpf retries such loads; aya 0.14 does not.
pub fn load_retrying(
    mut load: impl FnMut() -> Result<(), aya::programs::ProgramError>,
) -> Result<(), aya::programs::ProgramError> {
    const ATTEMPTS: u32 = 5;
    let mut attempt = 1;
    loop {
        match load() {
            Err(aya::programs::ProgramError::LoadError { io_error, .. })
                if io_error.raw_os_error() == Some(nix::errno::Errno::EAGAIN as i32)
                    && attempt < ATTEMPTS =>
            {
                log::debug!("program load interrupted (EAGAIN), attempt {attempt}");
                attempt += 1;
            }
            res => return res,
        }
    }
}

/// The eBPF object with its kfunc calls linked against the running kernel.
pub fn linked_object() -> Result<Vec<u8>, LoadError> {
    let ids = kfunc::kernel_btf_ids()?;
    let (mut obj, _) = kfunc::patch(EBPF_OBJECT, &[KFUNC_ASSIGN_REQSK], ids)?;
    btf_fix::sanitize(&mut obj)?;
    Ok(obj)
}

/// The object for `cookies`: linked for full mode. Kernel-cookie mode's program calls no
/// kfunc, and the TC program, which does, is not loaded then: its call is only marked as a
/// kfunc call (with an id no kernel has) so that aya, which cannot resolve the symbol, accepts
/// the object; the kernel's BTF is not read.
pub fn object_for(cookies: Cookies) -> Result<Vec<u8>, LoadError> {
    match cookies {
        Cookies::Own => linked_object(),
        Cookies::Kernel => {
            let (mut obj, _) =
                kfunc::patch(EBPF_OBJECT, &[KFUNC_ASSIGN_REQSK], |_| Some(u32::MAX))?;
            btf_fix::sanitize(&mut obj)?;
            Ok(obj)
        }
    }
}

/// Writes kernel-cookie mode's refresh period.
pub fn write_refresh(ebpf: &mut Ebpf, secs: u64) -> Result<(), LoadError> {
    let map = ebpf.map_mut(MAP_KC_CONF).expect("object has SC_KC_CONF");
    let mut arr: Array<&mut MapData, u64> = Array::try_from(map).map_err(map_err(MAP_KC_CONF))?;
    arr.set(
        kernel_cookies::KC_REFRESH_NS,
        secs.saturating_mul(1_000_000_000),
        0,
    )
    .map_err(map_err(MAP_KC_CONF))
}

/// Loads the object with its maps pinned (or reused) in `pins`.
pub fn load(pins: &PinDir) -> Result<Ebpf, LoadError> {
    load_linked(pins, &linked_object()?, 0, false)
}

/// [`load`], kernel-cookie mode making its cookies on the listener as on 5.x (the packet tests
/// run that variant on the host's kernel, which has both helpers).
pub fn load_on_listener(pins: &PinDir) -> Result<Ebpf, LoadError> {
    load_linked(pins, &linked_object()?, 0, true)
}

/// [`load`] with the `stages` (`syncookie_common::maps::stage`) left out: the bench's way of
/// pricing each stage. Never for protection.
pub fn load_skipping(pins: &PinDir, stages: u32) -> Result<Ebpf, LoadError> {
    load_linked(pins, &linked_object()?, stages, false)
}

/// Loads `obj`, an object [`linked_object`] made, with its maps pinned (or reused) in `pins`;
/// `listener`: kernel-cookie mode makes its cookies on the listener (5.x, see `host::kernel`).
pub(super) fn load_linked(
    pins: &PinDir,
    obj: &[u8],
    skip: u32,
    listener: bool,
) -> Result<Ebpf, LoadError> {
    pins.create()?;
    pins.check_layout()?;
    Ok(EbpfLoader::new()
        .default_map_pin_directory(&pins.dir)
        // A constant for the verifier: log sites below this level are removed at load.
        .override_global(aya_log::LEVEL, &crate::bpf::ebpf_log::level(), true)
        .override_global(GLOBAL_SKIP, &skip, true)
        .override_global(kernel_cookies::GLOBAL_LISTENER, &u32::from(listener), true)
        .load(obj)?)
}

pub fn write_config(ebpf: &mut Ebpf, cfg: Config) -> Result<(), LoadError> {
    let map = ebpf.map_mut(MAP_CONFIG).expect("object has SC_CONFIG");
    let mut arr: Array<&mut MapData, Config> = Array::try_from(map).map_err(map_err(MAP_CONFIG))?;
    arr.set(0, cfg, 0).map_err(map_err(MAP_CONFIG))
}

pub fn write_ports(ebpf: &mut Ebpf, ports: &[u16]) -> Result<(), LoadError> {
    let map = ebpf.map_mut(MAP_PORTS).expect("object has SC_PORTS");
    let mut arr: Array<&mut MapData, u32> = Array::try_from(map).map_err(map_err(MAP_PORTS))?;
    let mut words = vec![0u32; PORTS_LEN as usize];
    for &p in ports {
        let (w, bit) = port_word(p);
        words[w as usize] |= bit;
    }
    for (i, w) in words.into_iter().enumerate() {
        arr.set(i as u32, w, 0).map_err(map_err(MAP_PORTS))?;
    }
    Ok(())
}
