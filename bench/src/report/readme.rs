//! The documents, results.md and the README section, assembled with the method and the notes.

use std::fmt::Write;

use super::{Run, goals::GOALS_NOTE, paths::MICRO_METHOD};

impl Run {
    const METHOD: &'static str = "\
**How it is measured.** Two network namespaces joined by a veth pair: the attacker and the \
legitimate clients on one vCPU, the server on the other. Both veths run threaded NAPI; the \
server's NAPI thread and the echo server are pinned to the server's CPU, the attacker's flood \
generator, its NAPI thread and the clients to the other. The flood is `lab_flood_syn` run \
with BPF_PROG_TEST_RUN in live-frames mode on the attacker's veth (`Flood::fresh` in \
tests/src/flood.rs): spoofed SYNs (198.18.0.0/16 sources, random ports and ISNs, Linux's SYN \
options), each written whole from a template, XDP_TX onto the wire, as fast as one vCPU makes \
them (or at `--rate`), the same in every scenario. Frames the server's veth ring \
cannot take are lost there: *offered* counts what the generator sent, *reaching the server* \
what the server's first program saw (`lab_count_syn` in XDP for the kernel's defences, the \
shield's `syn_seen`), *SYN-ACKs sent* what left the server (`lab_count_synack` on TC egress \
for the kernel's, the shield's `synack_sent`). What the server sends to the spoofed range is \
counted and dropped by `lab_sink` (XDP) on the attacker's veth, at the same cost in every \
scenario.\n\n\
**CPU per SYN** is the busy time of the server's CPU over the measured window (wall-clock \
time less its idle and iowait time from its line in /proc/stat, which NO_HZ kernels account \
exactly; the busy columns are only sampled at each tick) divided by the SYNs that reached the \
server. It includes everything the server side does: the veth driver and NAPI poll, XDP, the \
kernel's receive path, TCP or netfilter, building and transmitting the replies, timers (SYN-ACK \
retransmissions) and the echo server's work for the legitimate clients; it is fair to both the \
kernel path and ours because both run on that CPU and nothing else does. When the server's CPU \
is saturated it is the inverse of the server's capacity; when it is not (the flood generator is \
the limit), it is still the time spent per SYN. The attacker's CPU is not counted.\n\n\
**Legitimate clients** open connections at a fixed rate (an open loop) during the window, \
each sending a payload and reading its echo; a connection counts as OK when it connected and \
echoed within the timeout, latency is the time connect() took (a lost SYN costs a 1 s \
retransmission).\n";

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# syncookie benchmark results\n");
        let _ = writeln!(
            s,
            "Machine: {}.  \nCommand: `{}`  \nRun: {}  \nParameters: {}\n",
            self.machine, self.command, self.date, self.params
        );
        s += "## Scenarios (same flood, same clients, one after another)\n\n";
        s += &self.table();
        s += "\n![rates and CPU per SYN](chart.svg)\n\n";
        s += &self.ratios();
        s += "\n";
        s += Self::METHOD;
        s += "\nCounters over each window:\n\n";
        s += &self.details();
        s += "\n## Micro-benchmarks (BPF_PROG_TEST_RUN)\n\n";
        s += MICRO_METHOD;
        s += "\n";
        s += &self.micro_md();
        s += "\n## Goals\n\n";
        s += &self.goals_md();
        s += GOALS_NOTE;
        s += "\n## Notes\n\n";
        s += NOTES;
        s
    }

    pub fn readme_section(&self) -> String {
        let mut s = String::from("## Benchmarks\n\n");
        s += "`cargo xtask bench` measures the shield against the kernel's own defences, side by \
              side in one run, with the same spoofed SYN flood and the same legitimate clients \
              in every scenario, then times the shield's packet paths with BPF_PROG_TEST_RUN \
              beside a minimal XDP reflector. Benchmarks print ratios measured side by side; \
              they are not tests and do not run in CI. Both ends of the lab share this \
              machine's two vCPUs, so the absolute rates say little about a real NIC: read \
              CPU per SYN and the ratios.\n\n";
        let _ = writeln!(
            s,
            "Seen on {}, with `{}` ({}):\n",
            self.machine, self.command, self.date
        );
        s += &self.table();
        s += "\n![SYN rates and server CPU per SYN per scenario](bench/results/chart.svg)\n\n";
        s += &self.ratios();
        s += "\n";
        s += Self::METHOD;
        s += "\n### Packet paths (BPF_PROG_TEST_RUN)\n\n";
        s += MICRO_METHOD;
        s += "\n";
        s += &self.micro_md();
        s += "\n### Goals\n\n";
        s += &self.goals_md();
        s += GOALS_NOTE;
        s += "\n### Notes\n\n";
        s += NOTES;
        s += "\nFull numbers and counters: [bench/results/results.md](bench/results/results.md). \
              Options (`cargo xtask bench -- --help`): `--duration`, `--rate` (0: as fast as the \
              generator can), `--legit-rate`, `--scenarios`, `--no-micro`, the repeat counts.\n";
        s
    }
}

const NOTES: &str = "\
- One run of each scenario; run it again to see the spread (the VM shares its host).\n\
- Live-frames test runs do not give every repetition a fresh copy of the frame: their pages are \
recycled with the bytes the program and the receiver left (only the frame's bounds are reset), \
so a SYN answered with XDP_TX comes back as our SYN-ACK. A flood that rewrote only the source \
fields would then send the shield SYN-ACK-shaped frames: the bench floods with `lab_flood_syn` \
(the whole SYN written each time) and times rewriting programs behind `lab_syn_fresh`.\n\
- Each BPF_PROG_TEST_RUN call with repetitions swaps the kernel's XDP dispatcher and waits for \
RCU grace periods (milliseconds): the flood sends 2^20 frames per call, and the figures above \
are the kernel's own timing of the repetitions.\n\
- Frames sent with XDP_TX onto a veth arrive when the receiving veth has NAPI: an XDP program, \
or GRO switched on (`ethtool -K DEV gro on`), which is what lets the generic-XDP scenario \
receive the flood.\n\
- SYNPROXY needs the `nft` command (Debian package nftables); without it the scenario is \
listed as not run, with the reason.\n";
