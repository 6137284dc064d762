//! Fidelity (issue 15): a fault applied through epmdpxy must look, to the
//! nodes, like the same fault on a real wire.
//!
//! Three hosts are built as network namespaces on a bridge (10.203.0.1–3),
//! one OTP 25 node `fN@10.203.0.N` per host (`-name`, default
//! `connect_all`, `net_ticktime 2`, `net_setuptime 3`). Every scenario runs
//! twice, from fresh EPMDs and fresh nodes each time:
//!
//! - REAL: each host runs OTP's own `epmd`, so nothing of epmdpxy is in
//!   the reference (an idle epmdpxy would still sit in every link, and its
//!   sockets, not the nodes', would meet the packet faults); the fault is a
//!   packet fault in the hosts: `iptables ... DROP` on the way in (a lossy
//!   wire), `REJECT --reject-with tcp-reset` for the one connection reset,
//!   `tc` htb + tbf for a slow link (`fidelity/net.rs`).
//! - PROXY: each host runs epmdpxy as its EPMD, and the same fault is one
//!   `epmdpxy ctl --at` command to the three proxies.
//!
//! Each node records its own `{nodedown, Node, [{nodedown_reason, R}]}`
//! (and pings it makes) with timestamps; the test compares reasons, times
//! (per scenario: within the tick's jitter, or max(0.5 s, 25 %)) and final
//! `nodes()`, prints a markdown table of both runs (`--nocapture`), and
//! fails naming every difference. The scenarios are in
//! `fidelity/scenarios.rs`, the comparison in `fidelity/compare.rs`; the
//! measured table and the differences that remain are in docs/fidelity.md.
//!
//! Needs root, iproute2 (`ip`, `tc`, `ss`), `iptables` and OTP (`erl`,
//! `epmd`): skipped with a message elsewhere, but fails when env `CI` is
//! set. `FIDELITY_ONLY=one-way,reset` runs only those scenarios (by key).

#[path = "fidelity/cluster.rs"]
mod cluster;
mod common;
#[path = "fidelity/compare.rs"]
mod compare;
#[path = "fidelity/net.rs"]
mod net;
#[path = "fidelity/scenarios.rs"]
mod scenarios;

use std::os::unix::fs::MetadataExt;
use std::time::Instant;

use cluster::{Cluster, Mode};
use net::Network;
use scenarios::SCENARIOS;

/// What this test needs that a machine may lack: Err says what.
fn can_run() -> Result<(), String> {
    for (program, package) in [
        ("ip", "iproute2"),
        ("tc", "iproute2"),
        ("ss", "iproute2"),
        ("iptables", "iptables"),
        ("erl", "erlang-base"),
        ("epmd", "erlang-base"),
    ] {
        if !common::program_on_path(program) {
            return Err(format!(
                "`{program}` is not on PATH (apt-get install -y {package})"
            ));
        }
    }
    let euid = std::fs::metadata("/proc/self").map(|meta| meta.uid());
    if euid.ok() != Some(0) {
        return Err("network namespaces, iptables and tc need root".to_owned());
    }
    Ok(())
}

fn skip_or_fail(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("the fidelity test cannot run but CI is set: {why}");
    }
    eprintln!("SKIPPED: the fidelity test: {why}");
}

/// Pairs of runs (REAL, then epmdpxy) a scenario gets before a difference
/// counts (see the loop below).
const ATTEMPTS: usize = 3;

#[test]
fn faults_through_epmdpxy_look_like_faults_on_the_wire() {
    if let Err(why) = can_run() {
        return skip_or_fail(&why);
    }
    let net = match Network::build() {
        Ok(net) => net,
        Err(why) => return skip_or_fail(&format!("cannot build the namespaces: {why}")),
    };
    let only: Option<Vec<String>> = std::env::var("FIDELITY_ONLY")
        .ok()
        .map(|keys| keys.split(',').map(|k| k.trim().to_owned()).collect());
    let started = Instant::now();
    let mut rows = Vec::new();
    for scenario in SCENARIOS {
        if only
            .as_ref()
            .is_some_and(|keys| !keys.iter().any(|k| k == scenario.key))
        {
            continue;
        }
        // REAL then PROXY, one scenario after the other, so both runs of a
        // scenario see about the same load on the machine. OTP's `global`
        // does not always answer the same fault alike, on the wire either
        // (seen: a reset that left {f1}|{f2,f3} in four runs split the wire
        // cluster 1+1+1 in a fifth), so a scenario gets up to ATTEMPTS
        // pairs of runs and counts as matching when one pair matches.
        let mut attempt_rows = Vec::new();
        for attempt in 1..=ATTEMPTS {
            let [real, proxy] = [Mode::Real, Mode::Proxy].map(|mode| {
                let run_started = Instant::now();
                let mut cluster = Cluster::start(&net, mode);
                let phases = (scenario.run)(&mut cluster);
                eprintln!(
                    "{} {} (attempt {attempt}): {:.1} s; {phases:?}",
                    mode.label(),
                    scenario.key,
                    run_started.elapsed().as_secs_f64()
                );
                phases
            });
            attempt_rows = compare::rows(scenario, &real, &proxy);
            if attempt_rows.iter().all(|row| row.problems.is_empty()) {
                break;
            }
            eprintln!("{} differs in attempt {attempt}", scenario.key);
        }
        rows.extend(attempt_rows);
    }
    net.clear_faults().expect("clearing the faults");
    println!(
        "\n{}\n(net_ticktime 2 s, net_setuptime 3 s; times in seconds after the fault; whole run {:.0} s)\n",
        compare::table(&rows),
        started.elapsed().as_secs_f64()
    );
    let problems: Vec<String> = rows
        .iter()
        .filter(|row| !row.problems.is_empty())
        .map(|row| {
            format!(
                "{} / {} / {}: {}",
                row.scenario,
                row.phase,
                row.node,
                row.problems.join("; ")
            )
        })
        .collect();
    assert!(
        problems.is_empty(),
        "epmdpxy differs from the wire:\n{}",
        problems.join("\n")
    );
}
