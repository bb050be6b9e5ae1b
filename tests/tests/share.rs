//! Sharing the XDP hook: what needs no `freplace` program, which this machine's own kernel
//! refuses (the sharing itself, with Debian's xdp-tools in both orders, is the smoke suite's
//! `share` check on Debian's kernels: `cargo xtask test-kernels`). A libxdp dispatcher on the
//! hook that the shield cannot join is refused with what to do, and nothing is changed.

use aya::{EbpfLoader, programs::Xdp};
use syncookie_tests::{daemon::syncookie_in, netns::with_veth, require_root};

/// libxdp1's dispatcher, as Debian installs it (`cargo xtask setup` installs xdp-tools).
const DISPATCHER: &str = "/usr/lib/x86_64-linux-gnu/bpf/xdp-dispatcher.o";

#[test]
fn a_dispatcher_of_another_version_is_refused_with_what_to_do() {
    require_root!();
    let obj = std::fs::read(DISPATCHER)
        .unwrap_or_else(|e| panic!("{DISPATCHER}: {e}: `cargo xtask setup` installs xdp-tools"));
    // (first bytes of its configuration: magic, version; what the refusal names).
    for (head, version) in [([236u8, 3], "3"), ([0, 0], "0")] {
        let (ns, name) = with_veth("sh");
        let mut conf = [0u8; 124];
        conf[..2].copy_from_slice(&head);
        let mut ebpf = EbpfLoader::new()
            .override_global("conf", &conf, true)
            .load(&obj)
            .expect("load libxdp's dispatcher");
        let p: &mut Xdp = ebpf
            .program_mut("xdp_dispatcher")
            .unwrap()
            .try_into()
            .unwrap();
        p.load().expect("verify libxdp's dispatcher");
        let id = p.info().unwrap().id();
        // Attached through netlink, as libxdp attaches its dispatchers.
        let _attached = ns.attach_generic(&name, p, "disp");
        let out = syncookie_in(&ns, &["run", "--iface", &name, "--ports", "80"]);
        let err = String::from_utf8_lossy(&out.stderr);
        eprint!("{err}");
        let want = format!(
            "syncookie: {name} runs libxdp's dispatcher version {version} (program id {id}); \
             syncookie joins version 2 (xdp-tools 1.3): unload its programs (`xdp-loader unload \
             {name} --all`) and load them again with the libxdp installed here\n"
        );
        assert!(err.ends_with(&want), "want the line\n{want}in\n{err}");
        assert_eq!(out.status.code(), Some(1));
        let shown = ns.exec(&["ip", "link", "show", &name]);
        assert!(shown.contains(&format!("prog/xdp id {id} ")), "{shown}");
        assert!(
            !syncookie_tests::daemon::pins(&ns, &name).exists(),
            "pins left"
        );
    }
}
