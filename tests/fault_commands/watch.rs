//! The `watch` event stream: a scenario's events arrive in order, causes
//! before their effects, and every watcher gets the same lines.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::common::proxy::Watch;
use crate::common::{fake, require_erl, NodeOptions, Proxy};

/// Finds `steps` in order in `lines`: each step is a set of substrings one
/// line must contain. Err names the first step not found.
fn find_in_order(lines: &[String], steps: &[Vec<String>]) -> Result<Vec<usize>, String> {
    let mut at = 0;
    let mut found = Vec::new();
    for step in steps {
        match lines[at..]
            .iter()
            .position(|line| step.iter().all(|part| line.contains(part.as_str())))
        {
            Some(offset) => {
                found.push(at + offset);
                at += offset + 1;
            }
            None => return Err(format!("{step:?} not found after line {at}")),
        }
    }
    Ok(found)
}

#[test]
fn watch_streams_a_scenario_in_order_to_every_watcher() {
    if !require_erl() {
        return;
    }
    let proxy = Proxy::start(&["-v"]);
    let mut first = Watch::open(&proxy);
    let second = Watch::open(&proxy);
    let options = NodeOptions {
        connect_all: false,
        ..NodeOptions::default()
    };
    let mut nodes = proxy.start_nodes(&["a", "b"], &options);
    let names: Vec<String> = nodes.iter().map(|n| n.full_name().to_string()).collect();
    let (a, b) = (
        nodes[0].short_name().to_string(),
        nodes[1].short_name().to_string(),
    );
    assert!(nodes[0].ping(&names[1]));
    first.wait_for(&["link-open", &format!("from={a}@"), &format!("to={b}")]);
    proxy.ctl_ok(&format!("cut {a} | {b}"));
    proxy.ctl_ok(&format!("fix {a} | {b}"));
    proxy.ctl_ok(&format!("cut {a} -> {b}"));
    proxy.ctl_ok(&format!("fix {a} -> {b}"));
    let reply = proxy.ctl_ok(&format!("reset {a} | {b}"));
    assert!(
        reply.ends_with("(1 link reset, each end as it next sends)"),
        "{reply:?}"
    );
    first.wait_for(&["link-close", "reason=\"reset by control\""]);
    proxy.ctl_ok(&format!("delay {a} | {b} 300ms"));
    proxy.ctl_ok(&format!("clear {a} | {b}"));
    proxy.ctl_ok(&format!("isolate {a}"));
    proxy.ctl_ok(&format!("rejoin {a}"));
    proxy.ctl_ok("heal");
    let leaver = nodes.pop().expect("node b");
    leaver.stop();
    first.wait_for(&["node-down", &format!("name={b}")]);

    let seen_first = first.quit();
    let seen_second = second.quit();
    let step = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    let (na, nb, ab, a_b) = (
        format!("name={a} "),
        format!("name={b} "),
        format!("{a} | {b}"),
        format!("{a} -> {b}"),
    );
    let (from_a, to_b) = (format!("from={a}@"), format!("to={b}"));
    let in_order = [
        step(&["node-up", &na]),
        step(&["link-open", &from_a, &to_b]),
        step(&["fault-applied cut", &ab]),
        step(&["fault-removed fix", &ab]),
        step(&["fault-applied cut", &a_b]),
        step(&["fault-removed fix", &a_b]),
        step(&["fault-applied reset", &ab, "links=1"]),
        step(&["fault-applied delay", &ab, "300ms"]),
        step(&["fault-removed clear", &ab]),
        step(&["fault-applied isolate", &a]),
        step(&["fault-removed rejoin", &a]),
        step(&["fault-removed heal"]),
        step(&["node-down", &format!("name={b}")]),
    ];
    for line in &seen_first {
        assert!(line.starts_with("EVENT "), "not an event line: {line:?}");
    }
    let positions = find_in_order(&seen_first, &in_order)
        .unwrap_or_else(|why| panic!("watch stream out of order: {why}:\n{seen_first:#?}"));
    // b's registration comes before its link; the link is closed by the
    // reset: its close follows the reset's own event (the cause is
    // published before its effects) and comes before the next fault.
    find_in_order(
        &seen_first,
        &[step(&["node-up", &nb]), step(&["link-open"])],
    )
    .unwrap_or_else(|why| panic!("{why}:\n{seen_first:#?}"));
    let close = seen_first
        .iter()
        .position(|l| l.contains("link-close") && l.contains("reason=\"reset by control\""))
        .expect("a link-close for the reset");
    assert!(
        close > positions[6] && close < positions[7],
        "link-close at line {close}, reset between lines {} and {}:\n{seen_first:#?}",
        positions[5],
        positions[7]
    );
    eprintln!("watch stream:\n{}", seen_first.join("\n"));
    // Both watchers got the same lines (each event is formatted once).
    assert_eq!(
        seen_first, seen_second,
        "the two watchers saw different streams"
    );
}

/// Rounds of the registration races below.
const ROUNDS: usize = 300;

/// Threads that keep every core busy while they live, so that the proxy's
/// threads wait for a core now and then, as on a loaded CI machine (where
/// the races below showed).
struct Busy {
    stop: Arc<AtomicBool>,
    spinners: Vec<thread::JoinHandle<()>>,
}

impl Busy {
    fn start() -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        let spinners = (0..4)
            .map(|_| {
                let stop = Arc::clone(&stop);
                thread::spawn(move || while !stop.load(Ordering::Relaxed) {})
            })
            .collect();
        Busy { stop, spinners }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for spinner in self.spinners.drain(..) {
            let _ = spinner.join();
        }
    }
}

/// A node-up is published before the node's ALIVE2 reply, so a watch
/// opened once a node has its answer never shows that node coming up: the
/// first event it shows is the next node's. (It raced when the event
/// followed the reply: a matrix test once saw an earlier node's node-up.)
#[test]
fn a_watch_opened_after_a_registration_does_not_show_it() {
    let proxy = Proxy::start(&[]);
    let _busy = Busy::start();
    let mut registrations = Vec::new();
    for round in 0..ROUNDS {
        let before = format!("before{round}");
        let after = format!("after{round}");
        registrations.push(fake::register(proxy.epmd_port, &before, 40_000));
        let mut watch = Watch::open(&proxy);
        registrations.push(fake::register(proxy.epmd_port, &after, 40_000));
        let first = watch.next_line(Duration::from_secs(10));
        assert!(
            first.contains(" node-up ") && first.contains(&format!(" name={after} ")),
            "round {round}: the first event after {before} registered and the \
             watch opened is {first:?}"
        );
    }
}

/// A node-down is published once the node is unregistered, so whoever
/// acts on it (a `watch matrix` redraw, a script asking `nodes`) no longer
/// finds the node. (It raced when the event came first: a `watch matrix`
/// redrawn on a node-down still counted the node.)
#[test]
fn a_node_down_is_published_once_the_node_is_gone() {
    let proxy = Proxy::start(&[]);
    let _busy = Busy::start();
    let mut watch = Watch::open(&proxy);
    for round in 0..ROUNDS {
        let name = format!("leaver{round}");
        let registration = fake::register(proxy.epmd_port, &name, 40_000);
        drop(registration);
        watch.wait_for(&["node-down", &format!("name={name}")]);
        let nodes = proxy.ctl("nodes");
        assert!(
            !nodes.contains(&name),
            "round {round}: after its node-down, `nodes` still lists {name}:\n{nodes}"
        );
    }
}
