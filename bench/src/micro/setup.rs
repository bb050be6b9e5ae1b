//! The micro-benchmarks' setup: a listener and a connection, the two objects, the frames.

use std::{
    io::Write,
    net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream},
};

use aya::{
    Ebpf,
    maps::{Array, MapData},
    programs::{TestRun, TestRunOptions},
};
use etherparse::{PacketBuilder, SlicedPacket, TcpOptionElement, TransportSlice};
use syncookie::{
    bpf::{
        loader,
        pinned::PinnedMaps,
        pins::{DEFAULT_ROOT, PinDir},
    },
    host::{local, sysctl},
    keys::KeyMaps,
};
use syncookie_common::{
    lab::{self, TEMPLATE_SIZE},
    maps::{Config, KEYS_LEN, Key, PROG_XDP},
};
use syncookie_tests::flood::{SPOOF_NET, mac, syn_template, syn_template6};

use super::{
    BenchLab, XDP_TX,
    runner::{Shields, xdp, xdp_ctx},
};

/// Removes the pin directory of the loaded (not attached) shield.
struct PinsGuard(PinDir);

impl Drop for PinsGuard {
    fn drop(&mut self) {
        let _ = self.0.remove();
    }
}

/// A listener (SYNs and handshake ACKs find it) and an established connection.
pub(super) struct Sockets {
    /// The client's end of the connection, and its address.
    pub established: TcpStream,
    pub est_src: SocketAddrV4,
    // Closed in this order, after `established`: the server's end, then the listeners.
    _accepted: TcpStream,
    _listener: TcpListener,
    _listener6: TcpListener,
}

impl Sockets {
    pub(super) fn open(lab: &BenchLab, port: u16) -> Self {
        let listener = TcpListener::bind((lab.server_ip, port)).expect("listen");
        let _listener6 = TcpListener::bind((lab.server_ip6, port)).expect("listen (IPv6)");
        let mut established = {
            let _c = lab.client.enter();
            TcpStream::connect((lab.server_ip, port)).expect("connect")
        };
        let (_accepted, _) = listener.accept().expect("accept");
        let est_src = match established.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        let _ = established.write_all(b"x");
        Sockets {
            established,
            est_src,
            _accepted,
            _listener: listener,
            _listener6,
        }
    }
}

/// The lab's object and the shield's (dropped in this order), then the shield's pins.
pub(super) struct Objects {
    pub labo: Ebpf,
    pub shield: Shields,
    _pins: PinsGuard,
}

impl Objects {
    pub(super) fn load(lab: &BenchLab, port: u16) -> Self {
        // The shield's object, loaded and configured as `syncookie run` does, not attached.
        // This thread is in the server's namespace (the MTU below is read there too).
        let pins = PinsGuard(
            // Named for the server's interface (never attached here): the daemon's sync reads
            // that interface's MAC for the locality check's fast path.
            PinDir::new(DEFAULT_ROOT.as_ref(), &lab.server_if).expect("pin dir"),
        );
        let mut shield = loader::load(&pins.0).expect("load the shield");
        let kernel = sysctl::TcpSettings::read().expect("sysctls");
        let mtu = syncookie::host::synack_config::mtu(&lab.server_if).expect("mtu");
        // Every repetition comes from one client: no budget, or the paths timed would be the
        // budget's drops (the bad ACK is dropped, not reset; the SYN always answered).
        let mut config = kernel.config(mtu, false);
        config.synack_per_prefix = 0;
        config.rst_per_sec = 0;
        loader::write_config(&mut shield, config).expect("config");
        loader::write_ports(&mut shield, &[port]).expect("ports");
        // The server's addresses and MACs, as the daemon syncs them (this thread is in its
        // namespace): the shield answers only what is for this host.
        local::sync(&pins.0).expect("local addresses and MACs");
        KeyMaps::open(&pins.0)
            .and_then(|mut k| k.ensure())
            .expect("keys");

        // The lab's variants check cookies with the same keys.
        let mut labo = Ebpf::load(syncookie_tests::LAB_OBJECT).expect("lab object");
        {
            let pinned = PinnedMaps::new(&pins.0);
            let keys = pinned.keys().unwrap();
            let epoch = pinned.epoch().unwrap();
            let mut lk: Array<&mut MapData, Key> =
                Array::try_from(labo.map_mut(lab::map::KEYS).unwrap()).unwrap();
            for i in 0..KEYS_LEN {
                lk.set(i, keys.get(&i, 0).unwrap(), 0).unwrap();
            }
            let cfg = pinned.config().unwrap();
            let mut lc: Array<&mut MapData, Config> =
                Array::try_from(labo.map_mut(lab::map::CONFIG).unwrap()).unwrap();
            lc.set(0, cfg.get().unwrap(), 0).unwrap();
            let mut le: Array<&mut MapData, u64> =
                Array::try_from(labo.map_mut(lab::map::EPOCH).unwrap()).unwrap();
            le.set(0, epoch.get(&0, 0).unwrap(), 0).unwrap();
        }
        // Copies without one stage each, on the same pinned maps (configured above).
        let skipping = super::stages::skips()
            .into_iter()
            .map(|s| {
                let e = loader::load_skipping(&pins.0, s)
                    .unwrap_or_else(|e| panic!("load the shield without stages {s:#x}: {e}"));
                (s, e)
            })
            .collect();
        Objects {
            labo,
            shield: Shields {
                full: shield,
                skipping,
            },
            _pins: pins,
        }
    }
}

fn leak(v: Vec<u8>) -> &'static [u8] {
    Box::leak(v.into_boxed_slice())
}

fn tcp_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    ts: Option<(u32, u32)>,
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src.ip().octets(), dst.ip().octets(), 64)
        .tcp(src.port(), dst.port(), seq, 502)
        .ack(ack);
    let b = match ts {
        Some((val, ecr)) => b
            .options(&[
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::Timestamp(val, ecr),
            ])
            .expect("options"),
        None => b,
    };
    let mut v = Vec::new();
    b.write(&mut v, &[]).expect("frame");
    v
}

/// The frames: a Linux-like SYN from a spoofed source; the client's ACK (valid cookie: the one
/// in the SYN-ACK the shield makes of that SYN), the same with a wrong cookie, a segment of the
/// established connection.
#[derive(Clone, Copy)]
pub(super) struct Frames {
    pub syn: &'static [u8],
    /// The same SYN over IPv6 (from 2001:2::1).
    pub syn6: &'static [u8],
    pub valid: &'static [u8],
    pub bad: &'static [u8],
    pub est: &'static [u8],
}

impl Frames {
    pub(super) fn new(
        lab: &BenchLab,
        o: &mut Objects,
        ifindex: u32,
        port: u16,
        est_src: SocketAddrV4,
    ) -> Self {
        let client_mac = mac(&lab.client, &lab.client_if);
        let syn = leak(syn_template(
            client_mac,
            lab.server_mac,
            lab.server_ip,
            port,
        ));
        let syn6 = leak(syn_template6(
            client_mac,
            lab.server_mac,
            lab.server_ip6,
            port,
        ));
        {
            // lab_syn_fresh writes template 0 over each live frame, lab_syn_fresh6 template 1.
            let mut m: Array<&mut MapData, [u8; TEMPLATE_SIZE]> =
                Array::try_from(o.labo.map_mut(lab::map::TEMPLATE).unwrap()).unwrap();
            for (i, f) in [syn, syn6].into_iter().enumerate() {
                let mut t = [0u8; TEMPLATE_SIZE];
                t[..f.len()].copy_from_slice(f);
                m.set(i as u32, t, 0).expect("SYN template");
            }
        }
        let ctx = xdp_ctx(syn.len(), ifindex);
        let mut out = vec![0u8; 256];
        let r = xdp(&mut o.shield.full, PROG_XDP)
            .test_run(TestRunOptions {
                data_in: Some(syn),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx),
                ..TestRunOptions::new()
            })
            .expect("SYN test run");
        assert_eq!(r.return_value, XDP_TX, "the shield must answer the SYN");
        out.truncate(r.data_size_out as usize);
        let sa = SlicedPacket::from_ethernet(&out).expect("SYN-ACK parses");
        let Some(TransportSlice::Tcp(t)) = sa.transport else {
            panic!("SYN-ACK is not TCP")
        };
        let (cookie, tsval) = (
            t.sequence_number(),
            t.options_iterator()
                .find_map(|o| match o {
                    Ok(TcpOptionElement::Timestamp(v, _)) => Some(v),
                    _ => None,
                })
                .expect("SYN-ACK timestamps"),
        );
        let spoofed = SocketAddrV4::new(Ipv4Addr::new(SPOOF_NET[0], SPOOF_NET[1], 0, 1), 40000);
        let server = SocketAddrV4::new(lab.server_ip, port);
        // syn_template: ISN 1, TSval 1.
        let valid = leak(tcp_frame(
            client_mac,
            lab.server_mac,
            spoofed,
            server,
            2,
            cookie.wrapping_add(1),
            Some((2, tsval)),
        ));
        let bad = leak(tcp_frame(
            client_mac,
            lab.server_mac,
            spoofed,
            server,
            2,
            cookie.wrapping_add(1) ^ 0x5a5a_0000,
            Some((2, tsval)),
        ));
        let est = leak(tcp_frame(
            client_mac,
            lab.server_mac,
            est_src,
            server,
            1000,
            2000,
            Some((5, 6)),
        ));
        Frames {
            syn,
            syn6,
            valid,
            bad,
            est,
        }
    }
}
