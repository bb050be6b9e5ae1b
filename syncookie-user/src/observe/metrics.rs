//! Prometheus metrics of a shield (`syncookie run --metrics ADDR`): every counter with its reason
//! as a label, the mode, whether it is engaged, the key epoch and whether the shield is attached, read from the pins at each
//! scrape (so they are the same numbers `syncookie stats` shows). Keys never appear here.

use std::sync::Arc;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::{
    bpf::{pinned::PinnedMaps, pins::PinDir},
    observe::counters,
    policy::ModeArg,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Mode {
    mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Iface {
    iface: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Cookies {
    cookies: &'static str,
}

/// The metrics text (OpenMetrics, which Prometheus reads) of the shield pinned at `pins`.
pub fn render(pins: &PinDir, iface: &str) -> String {
    let mut reg = Registry::with_prefix("syncookie");
    let attached = Family::<Iface, Gauge>::default();
    reg.register(
        "attached",
        "1 while the shield's pins exist on the interface",
        attached.clone(),
    );
    let label = Iface {
        iface: iface.into(),
    };
    attached.get_or_create(&label).set(pins.exists() as i64);
    if let Ok(snap) = counters::read(pins, iface) {
        let packets = Family::<Reason, Counter>::default();
        reg.register(
            "packets",
            "Packets to protected ports by the reason for their verdict (see `syncookie stats`)",
            packets.clone(),
        );
        for (c, v) in snap.iter() {
            packets
                .get_or_create(&Reason { reason: c.name() })
                .inc_by(v);
        }
    }
    if let Ok(cfg) = PinnedMaps::new(pins).config().and_then(|m| m.get()) {
        let g = Family::<Cookies, Gauge>::default();
        reg.register(
            "cookies",
            "1 for the cookies in use: own (keyed, kfunc handoff) or kernel (the kernel's own)",
            g.clone(),
        );
        let kernel = cfg.flags & syncookie_common::maps::flags::KERNEL_COOKIES != 0;
        for (name, on) in [("own", !kernel), ("kernel", kernel)] {
            g.get_or_create(&Cookies { cookies: name }).set(on as i64);
        }
    }
    if let Ok(st) = crate::observe::state::read(pins) {
        let g = Gauge::<i64>::default();
        reg.register("key_epoch", "The current cookie key epoch", g.clone());
        g.set(st.epoch as i64);
        let mode = Family::<Mode, Gauge>::default();
        reg.register(
            "mode",
            "1 for the shield's current mode (always, auto, monitor)",
            mode.clone(),
        );
        for m in ["always", "auto", "monitor"] {
            let now = st
                .mode
                .map(|x| format!("{:?}", ModeArg::of(x)).to_lowercase());
            mode.get_or_create(&Mode { mode: m })
                .set((now.as_deref() == Some(m)) as i64);
        }
        let g = Gauge::<i64>::default();
        reg.register(
            "engaged",
            "1 while SYNs get cookies (always; auto above its threshold), 0 while they go to the kernel",
            g.clone(),
        );
        g.set(st.engaged as i64);
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}

/// Serves `GET /metrics` on `addr` until the runtime stops.
pub async fn serve(
    listener: tokio::net::TcpListener,
    pins: PinDir,
    iface: String,
) -> std::io::Result<()> {
    let state = Arc::new((pins, iface));
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let state = state.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    render(&state.0, &state.1),
                )
            }
        }),
    );
    axum::serve(listener, app).await
}
