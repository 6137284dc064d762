//! Partition shapes, chaos runs and exempt nodes against real OTP nodes.
//!
//! - `bridge_under_global`: `bridge` on 5 nodes with the default
//!   `connect_all`, to show what OTP 25's `global`
//!   (`prevent_overlapping_partitions`) does with a node that sees both
//!   halves: it asks nodes to drop links until no partitions overlap, and
//!   the proxy reports those closes as the node's own.
//! - `chaos_run_replays_from_its_seed`: a chaos run with every shape and
//!   fault while the nodes keep pinging each other; every step shows on
//!   `watch` exactly as the seed and node list predict, the run ends
//!   healed and the mesh forms again. `EPMDPXY_CHAOS_SECS` sets its length
//!   (default 12 s; the 60 s run: `EPMDPXY_CHAOS_SECS=60`).
//! - `exempt_node_keeps_every_link`: an exempt node (`--exempt`, like a test
//!   runner) stays connected to all through `split` and `isolate`.
//!
//! The tests take turns (one cluster at a time) so that tick timeouts are
//! not missed on a busy 2-core machine.

mod common;

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::proxy::Watch;
use common::{require_erl, wait_until, wait_until_ok, ErlNode, NodeOptions, Proxy};
use epmdpxy::control::command::{self, Command};
use epmdpxy::partition::chaos_plan::Planner;

/// How long a cut or a heal may take to show in every node's `nodes()`.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

/// One cluster at a time.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `n1_4711@host` → `n1_4711`.
fn short(full: &str) -> String {
    full.split('@').next().unwrap_or(full).to_string()
}

/// Every node's view as short names: `views[i]` = whom node i sees.
fn views(nodes: &mut [ErlNode]) -> Vec<BTreeSet<String>> {
    nodes
        .iter_mut()
        .map(|node| node.nodes().iter().map(|full| short(full)).collect())
        .collect()
}

fn show(nodes: &[ErlNode], views: &[BTreeSet<String>]) -> String {
    nodes
        .iter()
        .zip(views)
        .map(|(node, seen)| {
            let seen: Vec<&str> = seen.iter().map(String::as_str).collect();
            format!("{} sees [{}]", node.short_name(), seen.join(","))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Pings until every node sees every other one. `global` may drop fresh
/// links while a mesh forms, so pinging is retried per poll.
fn form_mesh(nodes: &mut [ErlNode], what: &str) {
    let names: Vec<String> = nodes.iter().map(|n| n.full_name().to_string()).collect();
    wait_until_ok(CONVERGE_TIMEOUT, what, || {
        let mut missing = Vec::new();
        for (i, node) in nodes.iter_mut().enumerate() {
            let seen = node.nodes();
            for (j, peer) in names.iter().enumerate() {
                if i != j && !seen.contains(peer) {
                    node.ping(peer);
                    missing.push(format!("{}->{}", short(&names[i]), short(peer)));
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("not yet linked: {}", missing.join(" ")))
        }
    });
}

/// `OK bridge b: cut a1,a2 | c1,c2` → (b, [a1,a2], [c1,c2]).
fn parse_bridge(reply: &str) -> (String, Vec<String>, Vec<String>) {
    let rest = reply
        .strip_prefix("OK bridge ")
        .unwrap_or_else(|| panic!("bridge reply {reply:?}"));
    let (bridge, cut) = rest
        .split_once(": cut ")
        .unwrap_or_else(|| panic!("bridge reply {reply:?}"));
    // The cut, without the note on the live links it holds.
    let cut = cut.split(" (").next().unwrap_or(cut);
    let halves: Vec<Vec<String>> = cut
        .split(" | ")
        .map(|island| island.split(',').map(str::to_string).collect())
        .collect();
    assert_eq!(halves.len(), 2, "bridge reply {reply:?}");
    (bridge.to_string(), halves[0].clone(), halves[1].clone())
}

/// True when every node's closed view (itself and whom it sees) is the
/// same as that of everyone it sees: disjoint fully connected partitions,
/// nothing overlapping.
fn no_overlap(names: &[String], views: &[BTreeSet<String>]) -> bool {
    let closed = |i: usize| {
        let mut set = views[i].clone();
        set.insert(names[i].clone());
        set
    };
    (0..names.len()).all(|i| {
        views[i].iter().all(|peer| {
            names
                .iter()
                .position(|name| name == peer)
                .is_some_and(|j| closed(j) == closed(i))
        })
    })
}

#[test]
fn bridge_under_global() {
    if !require_erl() {
        return;
    }
    let _turn = one_at_a_time();
    let proxy = Proxy::start(&["-v", "--seed", "1"]);
    // Default connect_all: `global` runs with prevent_overlapping_partitions.
    let options = NodeOptions::default();
    let mut nodes = proxy.start_nodes(&["n1", "n2", "n3", "n4", "n5"], &options);
    let names: Vec<String> = nodes.iter().map(|n| n.short_name().to_string()).collect();
    form_mesh(&mut nodes, "a full mesh of 5");
    let mut watch = Watch::open(&proxy);

    let reply = proxy.ctl("bridge");
    let (bridge, left, right) = parse_bridge(&reply);
    eprintln!("{reply}");
    let mut layout: Vec<&String> = left.iter().chain(&right).chain([&bridge]).collect();
    layout.sort();
    assert_eq!(layout, names.iter().collect::<Vec<_>>(), "{reply}");
    assert_eq!((left.len(), right.len()), (2, 2), "{reply}");
    let status = proxy.ctl("status");
    assert!(
        status.starts_with("OK 4 faults seed=1"),
        "bridge on 5 cuts 2x2 pairs: {status}"
    );
    assert!(
        !status.contains(&bridge),
        "the bridge is never cut: {status}"
    );

    // Wait for the ticks to run out and `global` to finish: the halves
    // apart, and no overlapping partitions left.
    let cut_at = Instant::now();
    let apart = |views: &[BTreeSet<String>]| {
        nodes_named(&names, &left).all(|i| right.iter().all(|r| !views[i].contains(r)))
    };
    let mut settled = Vec::new();
    wait_until_ok(CONVERGE_TIMEOUT, "global to settle the bridge", || {
        let seen = views(&mut nodes);
        if !apart(&seen) || !no_overlap(&names, &seen) {
            return Err(show(&nodes, &seen));
        }
        // Stable for a while (global acts within milliseconds of a nodedown).
        thread::sleep(Duration::from_millis(1500));
        let again = views(&mut nodes);
        if again != seen {
            return Err(format!("still moving: {}", show(&nodes, &again)));
        }
        settled = seen;
        Ok(())
    });
    eprintln!(
        "settled {:?} after the bridge: {}",
        cut_at.elapsed(),
        show(&nodes, &settled)
    );
    let bridge_index = names.iter().position(|n| *n == bridge).expect("bridge");
    let bridge_view = &settled[bridge_index];
    assert!(
        !(left.iter().any(|n| bridge_view.contains(n))
            && right.iter().any(|n| bridge_view.contains(n))),
        "global leaves no node seeing both halves: {}",
        show(&nodes, &settled)
    );

    // The links global took down were never cut by us: the proxy must name
    // the node that closed each of them.
    let separated = |a: &str, b: &str| {
        (left.iter().any(|n| n == a) && right.iter().any(|n| n == b))
            || (left.iter().any(|n| n == b) && right.iter().any(|n| n == a))
    };
    let closes: Vec<String> = watch
        .events()
        .into_iter()
        .filter(|event| event.starts_with("link-close "))
        .collect();
    let mut closed_by_a_node = Vec::new();
    for event in &closes {
        let field = |key: &str| {
            event
                .split_whitespace()
                .find_map(|word| word.strip_prefix(key))
                .map(short)
                .unwrap_or_default()
        };
        let (from, to) = (field("from="), field("to="));
        if separated(&from, &to) {
            continue;
        }
        let reason = event
            .split_once("reason=\"")
            .map(|(_, rest)| rest.trim_end_matches('"'))
            .unwrap_or_default();
        let closer = reason.strip_suffix(" closed").map(short);
        assert!(
            closer == Some(from.clone()) || closer == Some(to.clone()),
            "a link we never cut closes with the name of the node that closed it: {event}"
        );
        closed_by_a_node.push(event.clone());
    }
    assert!(
        !closed_by_a_node.is_empty(),
        "global closed links the proxy never cut; events: {closes:#?}"
    );
    eprintln!(
        "links closed by nodes, not by the proxy:\n{}",
        closed_by_a_node.join("\n")
    );
    let global_said: Vec<String> = nodes
        .iter()
        .flat_map(|node| {
            node.output()
                .lines()
                .filter(|line| line.contains("prevent overlapping partitions"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    eprintln!("global's own words:\n{}", global_said.join("\n"));

    assert_eq!(proxy.ctl("heal"), "OK healed");
    form_mesh(&mut nodes, "a full mesh after heal");
}

fn nodes_named<'a>(names: &'a [String], wanted: &'a [String]) -> impl Iterator<Item = usize> + 'a {
    names
        .iter()
        .enumerate()
        .filter(move |(_, name)| wanted.contains(name))
        .map(|(i, _)| i)
}

/// Seconds of chaos: `EPMDPXY_CHAOS_SECS`, default 12.
fn chaos_seconds() -> u64 {
    std::env::var("EPMDPXY_CHAOS_SECS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(12)
}

#[test]
fn chaos_run_replays_from_its_seed() {
    if !require_erl() {
        return;
    }
    let _turn = one_at_a_time();
    let proxy = Proxy::start(&["-v"]);
    let options = NodeOptions {
        net_ticktime: 1,
        ..NodeOptions::default()
    };
    let mut nodes = proxy.start_nodes(&["n1", "n2", "n3", "n4", "n5"], &options);
    let mut names: Vec<String> = nodes.iter().map(|n| n.short_name().to_string()).collect();
    names.sort();
    form_mesh(&mut nodes, "a full mesh of 5");
    // Every node keeps pinging every other one, so links are opened,
    // cut, reset and closed all through the run.
    let fulls: Vec<String> = nodes
        .iter()
        .map(|n| format!("'{}'", n.full_name()))
        .collect();
    for node in nodes.iter_mut() {
        let reply = node.eval(&format!(
            "[spawn(fun() -> (fun Loop() -> net_adm:ping(P), timer:sleep(300), Loop() end)() end) || P <- [{}] -- [node()]], ok",
            fulls.join(",")
        ));
        assert_eq!(reply, "ok");
    }
    let mut watch = Watch::open(&proxy);

    let seconds = chaos_seconds();
    let reply = proxy.ctl(
        "chaos start seed 4242 every 3s for 2s \
         shapes halves,random-halves,one,majority,bridge,ring \
         faults delay,throttle,reset,isolate",
    );
    assert!(
        reply.starts_with("OK chaos start seed 4242 every 3s for 2s"),
        "{reply}"
    );
    let started = Instant::now();
    // The proxy keeps answering during the run.
    while started.elapsed() < Duration::from_secs(seconds) {
        let status = proxy.ctl("status");
        assert!(status.contains("chaos=running"), "{status}");
        let links = proxy.ctl("links");
        assert!(
            links.starts_with("OK ") && links.ends_with("END"),
            "{links}"
        );
        thread::sleep(Duration::from_millis(500));
    }
    let reply = proxy.ctl("chaos stop");
    assert!(reply.starts_with("OK chaos stopped after "), "{reply}");
    let status = proxy.ctl("status");
    assert!(
        status.starts_with("OK 0 faults") && status.lines().count() == 2,
        "chaos stop heals: {status}"
    );
    assert!(!status.contains("chaos=running"), "{status}");
    assert_eq!(proxy.ctl("chaos"), "OK chaos is not running");

    // Every step is on `watch`, exactly as the seed and node list predict.
    let events = watch.events();
    let chaos_events: Vec<&String> = events.iter().filter(|e| e.starts_with("chaos-")).collect();
    let start_text = chaos_events
        .first()
        .and_then(|e| e.strip_prefix("chaos-start "))
        .unwrap_or_else(|| panic!("no chaos-start event: {chaos_events:#?}"));
    let Ok(Command::ChaosStart(config)) = command::parse(&format!("chaos start {start_text}"))
    else {
        panic!("chaos-start does not replay: {start_text}")
    };
    let steps: Vec<&str> = chaos_events
        .iter()
        .filter_map(|e| e.strip_prefix("chaos-step "))
        .collect();
    let mut planner = Planner::new(config.seed.expect("the event names the seed"), &config);
    for (i, logged) in steps.iter().enumerate() {
        let planned = planner.next(&names);
        assert_eq!(*logged, planned.event_text(), "step {}", i + 1);
    }
    let step_count = steps.len();
    assert!(
        step_count as u64 >= seconds / 3,
        "{step_count} steps in {seconds}s"
    );
    let mut expected = vec![format!("chaos-start {start_text}")];
    for (i, step) in steps.iter().enumerate() {
        expected.push(format!("chaos-step {step}"));
        expected.push(format!("chaos-heal step={}", i + 1));
    }
    expected.push(format!("chaos-stop steps={step_count}"));
    let seen: Vec<String> = chaos_events.iter().map(|e| e.to_string()).collect();
    assert_eq!(seen, expected, "chaos events in order");
    assert!(
        reply.contains(&format!("after {step_count} step")),
        "{reply}"
    );
    eprintln!(
        "chaos: {step_count} steps in {seconds}s:\n{}",
        steps.join("\n")
    );

    // Each step's commands were applied as such.
    for step in &steps {
        let apply = step
            .split_once("apply=\"")
            .map(|(_, rest)| rest.trim_end_matches('"'));
        let Some(apply) = apply else { continue };
        for command in apply.split("; ") {
            if command.starts_with("reset") {
                let prefix = format!("fault-applied {command} links=");
                assert!(events.iter().any(|e| e.starts_with(&prefix)), "{command}");
            } else {
                let wanted = format!("fault-applied {command}");
                assert!(events.contains(&wanted), "{wanted} not in {events:#?}");
            }
        }
    }

    // Healthy afterwards: the mesh forms again, and the proxy relays
    // exactly one link per pair once stalled attempts have timed out.
    let healed_at = Instant::now();
    form_mesh(&mut nodes, "a full mesh after chaos");
    eprintln!("mesh again {:?} after chaos stop", healed_at.elapsed());
    wait_until_ok(CONVERGE_TIMEOUT, "one live link per pair", || {
        let links = proxy.ctl("links");
        let count = links.lines().count().saturating_sub(2);
        if count == 10 {
            Ok(())
        } else {
            Err(links)
        }
    });
}

#[test]
fn exempt_node_keeps_every_link() {
    if !require_erl() {
        return;
    }
    let _turn = one_at_a_time();
    // The runner's name must be known before the proxy (and its port) is.
    let runner_name = format!("runner{}", std::process::id());
    let proxy = Proxy::start(&["-v", "--exempt", &runner_name]);
    // connect_all false: links are exactly the ones pinged, and `global`
    // does not act on overlapping partitions (with connect_all, a visible
    // exempt node is a bridge; see bridge_under_global).
    let options = NodeOptions {
        connect_all: false,
        ..NodeOptions::default()
    };
    let mut nodes = proxy.start_nodes(&["n1", "n2", "n3", "n4"], &options);
    let runner = ErlNode::start(&runner_name, &proxy.cookie(), proxy.epmd_port, &options);
    nodes.push(runner);
    let names: Vec<String> = nodes.iter().map(|n| n.short_name().to_string()).collect();
    form_mesh(&mut nodes, "a full mesh of 5");
    let status = proxy.ctl("status");
    assert!(
        status.contains(&format!("exempt={runner_name}")),
        "{status}"
    );

    // Faults that name it are refused.
    for refused in [
        format!("isolate {runner_name}"),
        format!("cut {runner_name} | {}", names[0]),
        format!("delay {} | {runner_name} 100ms", names[0]),
        format!("reset {} | {runner_name}", names[1]),
    ] {
        let reply = proxy.ctl(&refused);
        assert!(
            reply.starts_with(&format!("ERR {runner_name} is exempt")),
            "{refused}: {reply}"
        );
    }

    // Shapes choose among the other four.
    let reply = proxy.ctl("split halves");
    assert_eq!(
        reply,
        format!(
            "OK split halves: cut {},{} | {},{} (4 live links held)",
            names[0], names[1], names[2], names[3]
        )
    );
    let runner = 4;
    let expect = |views: &[BTreeSet<String>], want: &[&[usize]]| -> Result<(), String> {
        // The runner must see everyone at every poll, not just at the end.
        let all: BTreeSet<String> = names[..4].iter().cloned().collect();
        assert_eq!(views[runner], all, "the exempt node lost a link");
        for (i, peers) in want.iter().enumerate() {
            let wanted: BTreeSet<String> = peers.iter().map(|&j| names[j].clone()).collect();
            if views[i] != wanted {
                return Err(format!("{} sees {:?}, want {wanted:?}", names[i], views[i]));
            }
        }
        Ok(())
    };
    wait_until_ok(
        CONVERGE_TIMEOUT,
        "halves that both still see the runner",
        || expect(&views(&mut nodes), &[&[1, 4], &[0, 4], &[3, 4], &[2, 4]]),
    );

    // Isolating another node leaves it the runner.
    let reply = proxy.ctl(&format!("isolate {}", names[2]));
    assert!(reply.starts_with("OK isolate"), "{reply}");
    wait_until_ok(CONVERGE_TIMEOUT, "n3 isolated but for the runner", || {
        expect(&views(&mut nodes), &[&[1, 4], &[0, 4], &[4], &[4]])
    });
    // A few more ticks: nothing the runner sees goes away.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        expect(&views(&mut nodes), &[&[1, 4], &[0, 4], &[4], &[4]]).expect("stable");
        thread::sleep(Duration::from_millis(300));
    }

    // The other shapes leave it out too.
    for shape in [
        "bridge",
        "ring",
        "split one",
        "split majority",
        "split sizes 2,1,1",
    ] {
        assert_eq!(proxy.ctl("heal"), "OK healed");
        let reply = proxy.ctl(shape);
        assert!(reply.starts_with("OK "), "{shape}: {reply}");
        let status = proxy.ctl("status");
        assert!(
            !status.lines().skip(1).any(|l| l.contains(&runner_name)),
            "{shape}: {status}"
        );
    }
    assert!(proxy.ctl("heal").starts_with("OK"));

    // unexempt makes it an ordinary node again.
    assert_eq!(
        proxy.ctl(&format!("unexempt {runner_name}")),
        format!("OK unexempt {runner_name}")
    );
    let reply = proxy.ctl(&format!("isolate {runner_name}"));
    assert!(reply.starts_with("OK isolate"), "{reply}");
    wait_until(
        CONVERGE_TIMEOUT,
        "the runner isolated once unexempt",
        || nodes[runner].nodes().is_empty(),
    );
}
