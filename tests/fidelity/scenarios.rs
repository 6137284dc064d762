//! The scenarios: one timeline each, run once with real packet faults and
//! once through epmdpxy, and what the nodes reported along it.
//!
//! A fault is written once (`Fault`) and applied the way of the run's
//! mode: as iptables/tc rules in the hosts (REAL), or as the equivalent
//! `epmdpxy ctl --at` command sent to the three proxies (PROXY), naming
//! hosts by `*@10.203.0.N` since a packet fault acts on hosts. Time zero
//! of a phase is the moment the call that applies its fault starts (it is
//! in force everywhere some 5–20 ms later, when the call returns; a reset
//! may act before that); every time reported is relative to it.

use std::thread;
use std::time::{Duration, Instant};

use crate::cluster::{alias, now_ms, Cluster, Mode, Seen, TICKTIME_S};
use crate::common::wait_until_ok;
use crate::net::{address, cut_scripts, drop_rule, reset_scripts, shape_script, HOSTS};

/// The slow link of the throttle scenario: tc's spelling and epmdpxy's
/// (both 256,000 bits/s).
const THROTTLE_TC: &str = "256kbit";
const THROTTLE_PROXY: &str = "256kbps";
/// How much a tbf may hold of the slow link's traffic (tc's `latency`):
/// what epmdpxy's throttle holds too ("about a quarter second of traffic
/// queued per direction"), so the two queues a close waits behind match.
pub const THROTTLE_QUEUE: &str = "250ms";
/// What each side of the slow link sends at once.
pub const BULK_BYTES: usize = 1_000_000;
/// How long a ping may take to report, even into a black hole.
const PING_TIMEOUT: Duration = Duration::from_secs(15);

/// A fault, as the scenario means it; hosts are 1-based.
#[derive(Clone, Debug)]
enum Fault {
    /// Lose every packet between the hosts of the two sides, both ways.
    Cut(Vec<usize>, Vec<usize>),
    /// As `Cut` between the two nodes' hosts, but given to epmdpxy with
    /// host-qualified node names (`f1@10.203.0.1 | f3@10.203.0.3`).
    NodeCut(usize, usize),
    /// Lose every packet from the first host to the second.
    OneWay(usize, usize),
    /// Reset the live connection between the two hosts' nodes.
    Reset(usize, usize),
    /// Shape both directions between the two hosts to 256 kbit/s.
    Throttle(usize, usize),
    /// Remove every fault.
    Heal,
}

fn pattern(hosts: &[usize]) -> String {
    hosts
        .iter()
        .map(|&h| format!("*@{}", address(h)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Applies `fault` the way of `cluster`'s mode; returns once it is in
/// force everywhere, with the moment it started (ms since the epoch): a
/// fault may act before the call returns (a reset closes at once).
fn apply(cluster: &mut Cluster, fault: &Fault) -> i64 {
    let started = now_ms();
    match cluster.mode {
        Mode::Real => {
            let net = cluster.net;
            let scripts = match fault {
                Fault::Cut(left, right) => cut_scripts(left, right),
                Fault::NodeCut(a, b) => cut_scripts(&[*a], &[*b]),
                Fault::OneWay(from, to) => vec![drop_rule(*from, *to)],
                Fault::Reset(a, b) => {
                    let links = net
                        .dist_connections(*a, *b)
                        .unwrap_or_else(|why| panic!("finding the link to reset: {why}"));
                    let [(port_a, port_b)] = links[..] else {
                        panic!("expected one connection between hosts {a} and {b}: {links:?}");
                    };
                    reset_scripts(*a, port_a, *b, port_b)
                }
                Fault::Throttle(a, b) => vec![
                    shape_script(*a, *b, THROTTLE_TC, THROTTLE_QUEUE),
                    shape_script(*b, *a, THROTTLE_TC, THROTTLE_QUEUE),
                ],
                Fault::Heal => {
                    net.clear_faults()
                        .unwrap_or_else(|why| panic!("healing: {why}"));
                    return started;
                }
            };
            net.sh_each(&scripts)
                .unwrap_or_else(|why| panic!("applying {fault:?}: {why}"));
        }
        Mode::Proxy => {
            let command = match fault {
                Fault::Cut(left, right) => format!("cut {} | {}", pattern(left), pattern(right)),
                Fault::NodeCut(a, b) => {
                    format!("cut {} | {}", cluster.name(*a - 1), cluster.name(*b - 1))
                }
                Fault::OneWay(from, to) => {
                    format!("cut {} -> {}", pattern(&[*from]), pattern(&[*to]))
                }
                Fault::Reset(a, b) => format!("reset {} | {}", pattern(&[*a]), pattern(&[*b])),
                Fault::Throttle(a, b) => format!(
                    "throttle {} | {} {THROTTLE_PROXY}",
                    pattern(&[*a]),
                    pattern(&[*b])
                ),
                Fault::Heal => "heal".to_owned(),
            };
            let answer = cluster.ctl(&command);
            eprintln!("{command}:\n{answer}");
        }
    }
    eprintln!("{fault:?} applied in {} ms", now_ms() - started);
    started
}

/// Sleeps until `offset_ms` after `t0` (waiting out a scenario's timeline).
fn sleep_until(t0: i64, offset_ms: i64) {
    let left = t0 + offset_ms - now_ms();
    if left > 0 {
        thread::sleep(Duration::from_millis(left as u64));
    }
}

/// A nodedown a node reported.
#[derive(Clone, Debug)]
pub struct Down {
    pub peer: String,
    pub reason: String,
    /// ms after the phase's time zero.
    pub at_ms: i64,
}

/// A ping a node made.
#[derive(Clone, Debug)]
pub struct Ping {
    pub from: String,
    pub to: String,
    /// `pong` or `pang`.
    pub result: String,
    pub took_ms: i64,
}

/// What the nodes reported during one phase of a scenario.
#[derive(Clone, Debug)]
pub struct Phase {
    pub name: &'static str,
    /// Per node (f1, f2, f3): its nodedowns, in order.
    pub downs: Vec<Vec<Down>>,
    /// Per node: `nodes()` at the end of the phase.
    pub views: Vec<Vec<String>>,
    pub pings: Vec<Ping>,
    /// When every node saw both others again, ms after time zero (the
    /// last nodeup), if they did.
    pub mesh_ms: Option<i64>,
}

/// How the times of a scenario are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tolerance {
    /// The times are set by tick timeouts: OTP declares a silent peer down
    /// 0.75–1.25 × net_ticktime after it falls silent, so two honest runs
    /// differ by up to half a tick time.
    Tick,
    /// The times follow from the fault itself (a reset, a setup timer, a
    /// ping): within max(0.5 s, 25 %) of the REAL time.
    Relative,
}

impl Tolerance {
    /// The largest accepted |epmdpxy - REAL| for a REAL time `real_ms`.
    pub fn allowed_ms(self, real_ms: i64) -> i64 {
        match self {
            Tolerance::Tick => i64::from(TICKTIME_S) * 1000 / 2,
            Tolerance::Relative => (real_ms.abs() / 4).max(500),
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Tolerance::Tick => "tick jitter: ±T/2 = 1 s",
            Tolerance::Relative => "max(0.5 s, 25 %)",
        }
    }
}

/// A scenario: its name in the table, how its times compare, and its
/// timeline, which returns the phases it observed.
pub struct Scenario {
    pub key: &'static str,
    pub title: &'static str,
    pub tolerance: Tolerance,
    /// Two nodes (0-based) the fault treats alike (both ends of a reset or
    /// a slow link, the two nodes across a cut from f1): which of them
    /// acts first is chance, in either run, so the comparison may swap
    /// their names in the epmdpxy run.
    pub alike: Option<(usize, usize)>,
    pub run: fn(&mut Cluster) -> Vec<Phase>,
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        key: "born-during-cut",
        alike: None,
        title: "link born during a host-qualified cut f1 | f3",
        tolerance: Tolerance::Relative,
        run: born_during_cut,
    },
    Scenario {
        key: "short-cut",
        alike: Some((1, 2)),
        title: "short cut f1 | f2,f3 for 0.5 s",
        tolerance: Tolerance::Tick,
        run: short_cut,
    },
    Scenario {
        key: "symmetric-cut",
        alike: Some((1, 2)),
        title: "symmetric cut f1 | f2,f3, healed after 5 s",
        tolerance: Tolerance::Tick,
        run: symmetric_cut_and_heal,
    },
    Scenario {
        key: "one-way",
        alike: None,
        title: "one-way cut f1 -> f2",
        tolerance: Tolerance::Tick,
        run: one_way_cut,
    },
    Scenario {
        key: "reset",
        alike: Some((0, 1)),
        title: "reset f1 | f2",
        tolerance: Tolerance::Relative,
        run: reset,
    },
    Scenario {
        key: "throttle",
        alike: Some((0, 1)),
        title: "throttle f1 | f2 256 kbit/s, 1 MB each way",
        tolerance: Tolerance::Tick,
        run: throttle,
    },
];

/// What the nodes reported between `from_ms` and now, relative to `t0`.
fn observe(cluster: &mut Cluster, name: &'static str, t0: i64, from_ms: i64) -> Phase {
    let views = cluster.views();
    let seen: Vec<Vec<Seen>> = (0..HOSTS).map(|i| cluster.recorded(i)).collect();
    let downs = seen
        .iter()
        .map(|events| {
            events
                .iter()
                .filter(|s| s.kind == "down" && s.at_ms >= from_ms)
                .map(|s| Down {
                    peer: alias(&s.node).to_owned(),
                    reason: s.what.clone(),
                    at_ms: s.at_ms - t0,
                })
                .collect()
        })
        .collect();
    let pings = seen
        .iter()
        .enumerate()
        .flat_map(|(i, events)| {
            events
                .iter()
                .filter(|s| s.kind == "ping" && s.at_ms >= from_ms)
                .map(move |s| {
                    let inner = s.what.trim_start_matches('{').trim_end_matches('}');
                    let (result, took) = inner.split_once(',').unwrap_or((inner, "-1"));
                    Ping {
                        from: format!("f{}", i + 1),
                        to: alias(&s.node).to_owned(),
                        result: result.to_owned(),
                        took_ms: took.parse().unwrap_or(-1),
                    }
                })
        })
        .collect();
    let whole = views.iter().all(|v| v.len() == HOSTS - 1);
    let mesh_ms = whole
        .then(|| {
            seen.iter()
                .flatten()
                .filter(|s| s.kind == "up" && s.at_ms >= from_ms)
                .map(|s| s.at_ms - t0)
                .max()
        })
        .flatten();
    Phase {
        name,
        downs,
        views,
        pings,
        mesh_ms,
    }
}

/// Waits until node `i`'s recorder has the results of `count` pings
/// started at or after `since_ms`.
fn await_pings(cluster: &mut Cluster, i: usize, count: usize, since_ms: i64) {
    let start = Instant::now();
    wait_until_ok(PING_TIMEOUT, "the pings to report", || {
        let done = cluster
            .recorded(i)
            .iter()
            .filter(|s| s.kind == "ping" && s.at_ms >= since_ms)
            .count();
        if done >= count {
            Ok(())
        } else {
            Err(format!("{done} of {count} after {:?}", start.elapsed()))
        }
    });
}

// ---------------------------------------------------------------------------
// The timelines
// ---------------------------------------------------------------------------

/// f1 and f3 have never spoken. A cut between them (host-qualified names
/// for epmdpxy) is in force; f1 pings f3, and half a second later, while
/// f1's attempt is pending, f3 pings f1. Against a black hole both time out
/// after net_setuptime.
fn born_during_cut(cluster: &mut Cluster) -> Vec<Phase> {
    let t0 = apply(cluster, &Fault::NodeCut(1, 3));
    cluster.spawn_ping(0, 2);
    sleep_until(t0, 500);
    cluster.spawn_ping(2, 0);
    await_pings(cluster, 0, 1, t0);
    await_pings(cluster, 2, 1, t0);
    vec![observe(cluster, "pings during the cut", t0, t0)]
}

/// A cut shorter than the tick timeout: nothing is lost (TCP retransmits,
/// the proxy holds), nobody reports nodedown.
fn short_cut(cluster: &mut Cluster) -> Vec<Phase> {
    cluster.mesh();
    let t0 = apply(cluster, &Fault::Cut(vec![1], vec![2, 3]));
    sleep_until(t0, 500);
    apply(cluster, &Fault::Heal);
    // Past the latest tick timeout (1.25 T) plus TCP's retransmission.
    sleep_until(t0, 4000);
    vec![observe(cluster, "cut 0.5 s", t0, t0)]
}

/// Host 1 cut from hosts 2 and 3 long enough for every tick timeout; then
/// healed, and one ping from f1 to f2 (connect_all re-meshes the rest).
fn symmetric_cut_and_heal(cluster: &mut Cluster) -> Vec<Phase> {
    cluster.mesh();
    let t0 = apply(cluster, &Fault::Cut(vec![1], vec![2, 3]));
    sleep_until(t0, 5000);
    let cut = observe(cluster, "cut", t0, t0);
    let healed = apply(cluster, &Fault::Heal);
    cluster.spawn_ping(0, 1);
    sleep_until(healed, 3000);
    let after = observe(cluster, "heal + one ping", healed, healed);
    vec![cut, after]
}

/// Packets from f1 to f2 are lost; f2 to f1 still flow (but f1's ACKs do
/// not reach f2, so f2's data stalls after a retransmission timeout).
fn one_way_cut(cluster: &mut Cluster) -> Vec<Phase> {
    cluster.mesh();
    let t0 = apply(cluster, &Fault::OneWay(1, 2));
    sleep_until(t0, 6000);
    vec![observe(cluster, "cut", t0, t0)]
}

/// The link f1–f2 is reset (each end learns when it next sends); then one
/// ping from f1 to f2.
fn reset(cluster: &mut Cluster) -> Vec<Phase> {
    cluster.mesh();
    let t0 = apply(cluster, &Fault::Reset(1, 2));
    sleep_until(t0, 4000);
    let reset = observe(cluster, "reset", t0, t0);
    let pinged = now_ms();
    cluster.spawn_ping(0, 1);
    sleep_until(pinged, 3000);
    let after = observe(cluster, "one ping", pinged, pinged);
    vec![reset, after]
}

/// f1–f2 shaped to 256 kbit/s each way, and 1 MB sent each way at once: a
/// 64 KB fragment takes 2 s, no whole packet arrives within the tick
/// timeout, the link drops.
fn throttle(cluster: &mut Cluster) -> Vec<Phase> {
    cluster.mesh();
    let t0 = apply(cluster, &Fault::Throttle(1, 2));
    cluster.send_bulk(0, 1, BULK_BYTES);
    cluster.send_bulk(1, 0, BULK_BYTES);
    sleep_until(t0, 7000);
    vec![observe(cluster, "shaped", t0, t0)]
}
