//! `syncookie status`: where the shield is, how it is configured, and its counters.

use syncookie::{
    observe::{counters, state},
    policy::ModeArg,
};
use syncookie_common::maps::{Mode, flags};

use super::Target;

/// Show the shield on an interface: mode, keys, protected ports, configuration, counters.
///
/// Example: syncookie status --iface eth0
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let Some(pins) = a.target.attached("status")? else {
        println!("syncookie on {}", a.target.iface);
        println!("  not attached (no {})", a.target.pins()?.dir.display());
        return Ok(());
    };
    let st = state::read(&pins)?;
    let c = st.config;
    let on = |f: u32| if c.flags & f != 0 { "on" } else { "off" };
    let limit = |n: u32| {
        if n == 0 {
            "no limit".to_string()
        } else {
            format!("{n}/s")
        }
    };
    let mode = st.mode.map_or("unknown".into(), |m| {
        format!("{:?}", ModeArg::of(m)).to_lowercase()
    });
    println!("syncookie on {}", a.target.iface);
    println!("  pins               {}", pins.dir.display());
    println!("  protected ports    {:?}", st.ports);
    if c.flags & flags::KERNEL_COOKIES != 0 {
        println!(
            "  cookies            kernel (the kernel's own cookies and keys, {}; no TC program)",
            syncookie::host::timestamps::carried(&c)
        );
    } else {
        println!("  cookies            own (bpf_sk_assign_tcp_reqsk handoff)");
    }
    println!(
        "  mode               {mode} ({}){}",
        if st.engaged {
            "answering SYNs"
        } else {
            "SYNs go to the kernel"
        },
        if st.mode == Some(Mode::Auto) {
            format!(", engages at {} SYNs/s per CPU", c.engage_per_sec)
        } else {
            String::new()
        }
    );
    println!(
        "  keys               epoch {}, {}",
        st.epoch,
        if st.fleet {
            "fleet (master key file, wall clock)"
        } else {
            "random, rotated by the daemon"
        }
    );
    println!(
        "  SYN-ACK            window {} ({} with timestamps), MSS {}, wscale {}, TTL {}; IPv6 {}",
        c.window,
        c.window_ts,
        c.mss_v4,
        c.wscale,
        c.ttl,
        if c.flags & flags::IPV6 != 0 {
            format!(
                "window {} ({} with timestamps), MSS {}, hop limit {}",
                c.window_v6, c.window_ts_v6, c.mss_v6, c.hop_limit
            )
        } else {
            "not protected (disabled)".into()
        }
    );
    println!(
        "  options            timestamps {}, SACK {}, window scaling {}, ECN {}, TC re-check {}",
        on(flags::TIMESTAMPS),
        on(flags::SACK),
        on(flags::WSCALE),
        on(flags::ECN),
        on(flags::TC_RECHECK)
    );
    println!(
        "  budgets            SYN-ACKs {} per CPU, {} per client /24; resets {} per CPU",
        limit(c.synack_per_sec),
        limit(c.synack_per_prefix),
        limit(c.rst_per_sec)
    );
    println!("counters:");
    print!("{}", counters::read(&pins, &a.target.iface)?.table());
    Ok(())
}
