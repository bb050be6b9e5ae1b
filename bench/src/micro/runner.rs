//! How a case runs: its program, the test-run options, the verdict check, timing, statistics.

use aya::{
    Ebpf,
    maps::{
        Array, MapData, ProgramArray,
        lpm_trie::{Key, LpmTrie},
    },
    programs::{SchedClassifier, TestRun, TestRunAttrs, TestRunOptions, Xdp},
    sys::{Stats, enable_stats},
};
use syncookie_common::{
    lab::{map, prog},
    maps::{
        Config, LocalAddr, MAP_CONFIG, MAP_RPF, MAP_RPF_ON, PROG_XDP, RPF_PASSES, V4_MAPPED_PREFIX,
        v4_mapped,
    },
};

use super::Params;

pub(super) fn xdp<'a>(e: &'a mut Ebpf, name: &str) -> &'a mut Xdp {
    let p: &mut Xdp = e.program_mut(name).unwrap().try_into().unwrap();
    if p.fd().is_err() {
        p.load().unwrap_or_else(|e| panic!("load {name}: {e}"));
    }
    p
}

pub(super) fn tc<'a>(e: &'a mut Ebpf, name: &str) -> &'a mut SchedClassifier {
    let p: &mut SchedClassifier = e.program_mut(name).unwrap().try_into().unwrap();
    if p.fd().is_err() {
        p.load().unwrap_or_else(|e| panic!("load {name}: {e}"));
    }
    p
}

/// `struct xdp_md` with `ingress_ifindex` set (live frames need a real interface; socket
/// lookups then use its namespace).
pub(super) fn xdp_ctx(len: usize, ifindex: u32) -> [u8; 24] {
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(len as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
    ctx
}

fn opts<'a>(frame: &'a [u8], ctx: Option<&'a [u8]>, repeat: u32, live: bool) -> TestRunOptions<'a> {
    TestRunOptions {
        data_in: Some(frame),
        ctx_in: ctx,
        repeat,
        attrs: if live {
            TestRunAttrs::new().xdp_live_frames(64)
        } else {
            TestRunAttrs::new()
        },
        ..TestRunOptions::new()
    }
}

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// What one timed case runs.
pub(super) struct Case {
    pub(super) path: &'static str,
    pub(super) program: &'static str,
    pub(super) tc: bool,
    pub(super) live: bool,
    /// Live frames through this `lab_syn_fresh` program (the case's program rewrites the frame).
    pub(super) fresh: Option<&'static str>,
    pub(super) frame: &'static [u8],
    /// The verdict a single plain run must give (checked before timing).
    pub(super) expect: u32,
    /// Run with the SYN-ACK budgets on (in all and per client prefix), set so high that every
    /// SYN is still answered: the budgets' bookkeeping is what is timed.
    pub(super) budgets: bool,
    /// Run with the reverse-path filter mirror on (`SC_RPF_ON`), the source's route passing:
    /// the extra LPM lookup is what is timed.
    pub(super) rpf: bool,
    /// The shield's stages left out (`syncookie_common::maps::stage`): a copy of the shield
    /// loaded with them skipped (see [`Shields`]).
    pub(super) skip: u32,
}

/// The shield as `syncookie run` loads it, and copies of it with stages left out (the same
/// pinned maps), one per set of stages.
pub(super) struct Shields {
    pub(super) full: Ebpf,
    pub(super) skipping: Vec<(u32, Ebpf)>,
}

impl Shields {
    fn get(&mut self, skip: u32) -> &mut Ebpf {
        if skip == 0 {
            return &mut self.full;
        }
        let i = self
            .skipping
            .iter()
            .position(|(s, _)| *s == skip)
            .unwrap_or_else(|| panic!("no shield loaded without stages {skip:#x}"));
        &mut self.skipping[i].1
    }
}

impl Case {
    /// An XDP program run on `frame` in plain mode, expected to give `expect`.
    pub(super) fn xdp(
        path: &'static str,
        program: &'static str,
        frame: &'static [u8],
        expect: u32,
    ) -> Self {
        Case {
            path,
            program,
            tc: false,
            live: false,
            fresh: None,
            frame,
            expect,
            budgets: false,
            rpf: false,
            skip: 0,
        }
    }

    /// Run on the shield with `stages` left out.
    pub(super) fn skipping(self, stages: u32) -> Self {
        Case {
            skip: stages,
            ..self
        }
    }

    /// With the SYN-ACK budgets on (see [`Case::budgets`]).
    pub(super) fn with_budgets(self) -> Self {
        Case {
            budgets: true,
            ..self
        }
    }

    /// With the reverse-path filter mirror on (see [`Case::rpf`]).
    pub(super) fn with_rp_filter(self) -> Self {
        Case { rpf: true, ..self }
    }

    /// A TC program (its verdict is not checked: the handoff's is TC_ACT_UNSPEC or OK).
    pub(super) fn tc(path: &'static str, program: &'static str, frame: &'static [u8]) -> Self {
        Case {
            tc: true,
            ..Case::xdp(path, program, frame, 0)
        }
    }

    /// Timed in live-frames mode (its verdict acts: XDP_TX transmits).
    pub(super) fn live(self) -> Self {
        Case { live: true, ..self }
    }

    /// Timed in live-frames mode behind `lab_syn_fresh` (for programs that rewrite the frame).
    pub(super) fn fresh(self) -> Self {
        Case {
            live: true,
            fresh: Some(prog::SYN_FRESH),
            ..self
        }
    }

    /// Behind `lab_syn_fresh` in plain mode: the program's own work on a fresh SYN each
    /// repetition, without the transmission (whose cost on veth varies by more than a stage's).
    pub(super) fn fresh_plain(self) -> Self {
        Case {
            live: false,
            fresh: Some(prog::SYN_FRESH),
            ..self
        }
    }

    /// [`Case::fresh`] for the IPv6 SYN (`lab_syn_fresh6`).
    pub(super) fn fresh6(self) -> Self {
        Case {
            live: true,
            fresh: Some(prog::SYN_FRESH6),
            ..self
        }
    }
}

fn object<'a>(c: &Case, shield: &'a mut Shields, lab: &'a mut Ebpf) -> &'a mut Ebpf {
    if c.program == PROG_XDP {
        shield.get(c.skip)
    } else {
        lab
    }
}

/// Points `LAB_JMP[0]` at the case's program, for `lab_syn_fresh`.
fn aim(c: &Case, shield: &mut Shields, lab: &mut Ebpf) {
    let fd = xdp(object(c, shield, lab), c.program)
        .fd()
        .expect("program fd")
        .try_clone()
        .expect("dup fd");
    let mut jmp: ProgramArray<&mut MapData> =
        ProgramArray::try_from(lab.map_mut(map::JMP).unwrap()).unwrap();
    jmp.set(0, &fd, 0).expect(map::JMP);
}

/// One test run of a case; returns (ns per repetition as the kernel timed it, verdict).
/// `direct`: run the case's program itself, in plain mode (verdicts, statistics).
fn run_case(
    c: &Case,
    shield: &mut Shields,
    lab: &mut Ebpf,
    ifindex: u32,
    repeat: u32,
    direct: bool,
) -> (f64, u32) {
    let live = c.live && !direct;
    if c.budgets {
        set_budgets(&mut shield.full, u32::MAX);
    }
    if c.rpf {
        set_rpf(&mut shield.full, true);
    }
    let r = if c.tc {
        tc(object(c, shield, lab), c.program).test_run(opts(c.frame, None, repeat, false))
    } else {
        let ctx = xdp_ctx(c.frame.len(), ifindex);
        let p = if let Some(fresh) = c.fresh.filter(|_| !direct) {
            xdp(lab, fresh)
        } else {
            xdp(object(c, shield, lab), c.program)
        };
        p.test_run(opts(c.frame, Some(&ctx), repeat, live))
    };
    if c.budgets {
        set_budgets(&mut shield.full, 0);
    }
    if c.rpf {
        set_rpf(&mut shield.full, false);
    }
    let r = r.unwrap_or_else(|e| panic!("test run of {} ({}): {e}", c.program, c.path));
    (r.duration.as_nanos() as f64, r.return_value)
}

/// Turns the reverse-path filter mirror on (strict, every IPv4 source passing: a default
/// route out of this interface) or off.
fn set_rpf(shield: &mut Ebpf, on: bool) {
    let mut t: LpmTrie<&mut MapData, LocalAddr, u32> =
        LpmTrie::try_from(shield.map_mut(MAP_RPF).unwrap()).unwrap();
    t.insert(&Key::new(V4_MAPPED_PREFIX, v4_mapped(0)), RPF_PASSES, 0)
        .expect(MAP_RPF);
    let mut m: Array<&mut MapData, u32> =
        Array::try_from(shield.map_mut(MAP_RPF_ON).unwrap()).unwrap();
    m.set(0, u32::from(on), 0).expect(MAP_RPF_ON);
}

/// Sets both SYN-ACK budgets of the shield's config to `per_sec` (0: off).
fn set_budgets(shield: &mut Ebpf, per_sec: u32) {
    let mut m: Array<&mut MapData, Config> =
        Array::try_from(shield.map_mut(MAP_CONFIG).unwrap()).unwrap();
    let mut cfg = m.get(&0, 0).expect("config");
    cfg.synack_per_sec = per_sec;
    cfg.synack_per_prefix = per_sec;
    m.set(0, cfg, 0).expect("config");
}

/// Verdicts first: a path that does not do what it is named for is not timed.
pub(super) fn check(cases: &[Case], shield: &mut Shields, labo: &mut Ebpf, ifindex: u32) {
    for c in cases {
        let (_, got) = run_case(c, shield, labo, ifindex, 1, true);
        assert_eq!(
            got, c.expect,
            "{} (stages left out: {:#x}) on a {} frame: verdict {got}, expected {}",
            c.program, c.skip, c.path, c.expect
        );
    }
}

/// ns per packet as the kernel timed it, per case, one sample per round (the cases in turn).
pub(super) fn time(
    cases: &[Case],
    shield: &mut Shields,
    labo: &mut Ebpf,
    ifindex: u32,
    p: &Params,
) -> Vec<Vec<f64>> {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..p.rounds {
        for (i, c) in cases.iter().enumerate() {
            if c.fresh.is_some() {
                aim(c, shield, labo);
            }
            let repeat = if c.live {
                p.live_repeat
            } else {
                p.plain_repeat
            };
            samples[i].push(run_case(c, shield, labo, ifindex, repeat, false).0);
        }
    }
    samples
}

/// The programs' own time: single runs on fresh copies of the frame, statistics on (they
/// cost time themselves, hence a separate pass). Where statistics are unavailable, a note says
/// why and no case has a figure.
pub(super) fn prog_times(
    cases: &[Case],
    shield: &mut Shields,
    labo: &mut Ebpf,
    ifindex: u32,
    stats_runs: u32,
    notes: &mut Vec<String>,
) -> Vec<Option<f64>> {
    let mut prog_ns: Vec<Option<f64>> = vec![None; cases.len()];
    match enable_stats(Stats::RunTime) {
        Ok(_fd) => {
            for (i, c) in cases.iter().enumerate() {
                let info = |s: &mut Shields, l: &mut Ebpf| {
                    let e = object(c, s, l);
                    if c.tc {
                        tc(e, c.program).info()
                    } else {
                        xdp(e, c.program).info()
                    }
                    .expect("program info")
                };
                let before = info(shield, labo);
                for _ in 0..stats_runs {
                    run_case(c, shield, labo, ifindex, 1, true);
                }
                let after = info(shield, labo);
                let n = after.run_count() - before.run_count();
                if n > 0 {
                    let t = (after.run_time() - before.run_time()).as_nanos() as f64;
                    prog_ns[i] = Some(t / n as f64);
                }
            }
        }
        Err(e) => notes.push(format!("BPF run-time statistics unavailable: {e}")),
    }
    prog_ns
}
