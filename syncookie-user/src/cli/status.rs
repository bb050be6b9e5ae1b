//! `syncookie status`: where the shield is, how it is configured, and its counters.

use anyhow::Context;
use aya::maps::{Array, Map, MapData};
use syncookie::{counters, keys::Keys, privilege};
use syncookie_common::maps::{Config, MAP_CONFIG, MAP_PORTS, flags};

use super::Target;

/// Show the shield on an interface: configuration, key epoch, protected ports, counters.
///
/// Example: syncookie status --iface eth0
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    privilege::require_pin_access("status")?;
    let Some(pins) = a.target.attached()? else {
        println!("syncookie on {}", a.target.iface);
        println!("  not attached (no {})", a.target.pins()?.dir.display());
        return Ok(());
    };
    println!("syncookie on {}", a.target.iface);
    let open = |name: &str| {
        let path = pins.map(name);
        MapData::from_pin(&path)
            .with_context(|| format!("opening the pinned map {}", path.display()))
    };
    let cfg: Config = {
        let m = Array::<MapData, Config>::try_from(Map::Array(open(MAP_CONFIG)?))?;
        m.get(&0, 0)?
    };
    let ports: Vec<u16> = {
        let m = Array::<MapData, u32>::try_from(Map::Array(open(MAP_PORTS)?))?;
        let mut v = Vec::new();
        for (w, bits) in m.iter().enumerate() {
            let bits = bits?;
            v.extend(
                (0..32)
                    .filter(|b| bits & (1 << b) != 0)
                    .map(|b| (w * 32 + b) as u16),
            );
        }
        v
    };
    let epoch = Keys::open(&pins)?.current_epoch()?;
    let on = |f: u32| if cfg.flags & f != 0 { "on" } else { "off" };
    println!("  pins               {}", pins.dir.display());
    println!("  protected ports    {ports:?}");
    if cfg.flags & flags::KERNEL_COOKIES != 0 {
        println!(
            "  cookies            kernel (the kernel's own cookies and keys, MSS only; no TC \
             program)"
        );
    } else {
        println!("  cookies            own (key epoch {epoch}; bpf_sk_assign_tcp_reqsk handoff)");
    }
    println!("  key epoch          {epoch}");
    println!(
        "  SYN-ACK            window {}, MSS {}, wscale {}, TTL {}",
        cfg.window, cfg.mss_v4, cfg.wscale, cfg.ttl
    );
    println!(
        "  options            timestamps {}, SACK {}, window scaling {}, ECN {}, TC re-check {}",
        on(flags::TIMESTAMPS),
        on(flags::SACK),
        on(flags::WSCALE),
        on(flags::ECN),
        on(flags::TC_RECHECK)
    );
    println!("counters:");
    print!("{}", counters::read(&pins, &a.target.iface)?.table());
    Ok(())
}
