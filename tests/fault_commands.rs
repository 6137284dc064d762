//! End-to-end tests of the fault commands beyond a symmetric cut (issue 5),
//! against real Erlang/OTP nodes where Erlang's reaction is the point:
//! one-way cuts, `isolate`/`rejoin`, `reset`, `delay`, `throttle`, the
//! `watch` event stream; and, without Erlang, the `epmdpxy ctl` client's
//! exit codes and the replayability of `status`.
//!
//! What each node sees is recorded *inside* the node: a small process
//! subscribed to `net_kernel:monitor_nodes/2` stamps every nodeup/nodedown
//! with `os:system_time(millisecond)` (the same clock as the test's
//! `SystemTime`, all on one machine), so asking a node what happened does
//! not change what happens. Pings meant to be observed during a fault are
//! spawned inside the node and record their result the same way.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{
    check_views, connect_missing, islands, require_erl, wait_until, wait_until_ok, ErlNode,
    NodeOptions, Proxy,
};

/// How long a fault may take to show in the nodes' views (a few ticks).
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Sends a control command and asserts the reply starts with `OK`.
fn ctl_ok(proxy: &Proxy, line: &str) -> String {
    let reply = proxy.ctl(line);
    assert!(reply.starts_with("OK"), "`{line}` answered {reply:?}");
    reply
}

/// Milliseconds since the Unix epoch: comparable with `os:system_time(millisecond)`.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Installs the in-node recorder (registered as `epmdpxy_rec`): every
/// nodeup/nodedown, with the nodedown reason, and every `{note, ...}` sent
/// to it, stamped with the wall clock in milliseconds.
fn install_recorder(node: &mut ErlNode) {
    let reply = node.eval(
        "register(epmdpxy_rec, spawn(fun() -> ok = net_kernel:monitor_nodes(true, [nodedown_reason]), \
         Loop = fun Loop(Acc) -> receive \
           {get, From} -> From ! {epmdpxy_rec, lists:reverse(Acc)}, Loop(Acc); \
           {nodeup, N, _} -> Loop([{up, N, none, os:system_time(millisecond)} | Acc]); \
           {nodedown, N, Info} -> Loop([{down, N, proplists:get_value(nodedown_reason, Info), os:system_time(millisecond)} | Acc]); \
           {note, Kind, N, What, T} -> Loop([{Kind, N, What, T} | Acc]) \
         end end, Loop([]) end)), ok",
    );
    assert_eq!(
        reply,
        "ok",
        "installing the recorder on {}",
        node.short_name()
    );
}

/// One thing a node's recorder saw.
#[derive(Clone, Debug)]
struct Seen {
    /// `up`, `down`, `ping`, ...
    kind: String,
    /// The peer's full name.
    node: String,
    /// nodedown reason, ping `{Result,Millis}`, or `none`.
    what: String,
    /// Wall clock, ms since the epoch.
    at_ms: i64,
}

/// Everything the recorder of `node` saw, oldest first.
fn recorded(node: &mut ErlNode) -> Vec<Seen> {
    let reply = node.eval(
        "epmdpxy_rec ! {get, self()}, receive {epmdpxy_rec, Es} -> \
         lists:flatten([io_lib:format(\"~s ~s ~0p ~b;\", [K, N, W, T]) || {K, N, W, T} <- Es]) \
         after 5000 -> recorder_timeout end",
    );
    // An empty string prints as `[]`.
    let text = match reply.as_str() {
        "[]" => "",
        _ => reply
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or_else(|| panic!("recorder of {} answered {reply:?}", node.short_name())),
    };
    text.split(';')
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| {
            let fields: Vec<&str> = entry.split(' ').collect();
            assert_eq!(fields.len(), 4, "recorder entry {entry:?}");
            Seen {
                kind: fields[0].to_string(),
                node: fields[1].to_string(),
                what: fields[2].to_string(),
                at_ms: fields[3].parse().expect("recorder timestamp"),
            }
        })
        .collect()
}

/// The first `kind` event about `peer` recorded at or after `since_ms`.
fn first_event(seen: &[Seen], kind: &str, peer: &str, since_ms: i64) -> Option<Seen> {
    seen.iter()
        .find(|s| s.kind == kind && s.node == peer && s.at_ms >= since_ms)
        .cloned()
}

/// Spawns a `net_adm:ping(Peer)` inside `node`; its result lands in the
/// recorder as `ping Peer {pong|pang,Millis} StartedAt`.
fn spawn_ping(node: &mut ErlNode, peer: &str) {
    let reply = node.eval(&format!(
        "spawn(fun() -> T0 = os:system_time(millisecond), R = net_adm:ping('{peer}'), \
         epmdpxy_rec ! {{note, ping, '{peer}', {{R, os:system_time(millisecond) - T0}}, T0}} end), ok"
    ));
    assert_eq!(reply, "ok");
}

/// The result of the first ping to `peer` started at or after `since_ms`:
/// (`pong`/`pang`, how long it took in ms), once it has finished.
fn ping_result(seen: &[Seen], peer: &str, since_ms: i64) -> Option<(String, i64)> {
    let ping = first_event(seen, "ping", peer, since_ms)?;
    let inner = ping.what.trim_start_matches('{').trim_end_matches('}');
    let (result, millis) = inner.split_once(',')?;
    Some((result.to_string(), millis.parse().ok()?))
}

/// (up, down) bytes of the live links whose initiator starts with `from`
/// and whose target starts with `to`.
fn link_bytes(proxy: &Proxy, from: &str, to: &str) -> Vec<(u64, u64)> {
    let reply = ctl_ok(proxy, "links");
    reply
        .lines()
        .skip(1)
        .filter(|line| *line != "END")
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            // id initiator -> target state=.. up=.. down=.. ...
            if words.len() < 7 || !words[1].starts_with(from) || !words[3].starts_with(to) {
                return None;
            }
            let field = |name: &str| {
                words
                    .iter()
                    .find_map(|w| w.strip_prefix(name))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            Some((field("up=")?, field("down=")?))
        })
        .collect()
}

/// (up, down) bytes of the one live link from `from` to `to`.
fn one_link_bytes(proxy: &Proxy, from: &str, to: &str) -> (u64, u64) {
    match link_bytes(proxy, from, to).as_slice() {
        [one] => *one,
        other => panic!("expected one link {from} -> {to}, found {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// 1. One-way cut
// ---------------------------------------------------------------------------

/// What two nodes saw around a one-way cut: (first down seen by the
/// receiver-starved node, first down seen by the other), relative to the cut.
struct OneWayOutcome {
    starved_down_after_ms: i64,
    starved_reason: String,
    other_down_after_ms: i64,
    other_reason: String,
}

/// The pair (`sender`, `starved`): `cut sender -> starved` is in force, so
/// `starved` stops hearing from `sender`. Waits until both report
/// nodedown and returns what they saw.
fn observe_one_way(sender: &mut ErlNode, starved: &mut ErlNode, cut_at_ms: i64) -> OneWayOutcome {
    let (sender_name, starved_name) = (
        sender.full_name().to_string(),
        starved.full_name().to_string(),
    );
    let mut outcome = None;
    wait_until_ok(
        CONVERGE_TIMEOUT,
        "both ends of a one-way cut to report nodedown",
        || {
            let on_starved = recorded(starved);
            let on_sender = recorded(sender);
            let starved_down = first_event(&on_starved, "down", &sender_name, cut_at_ms);
            let sender_down = first_event(&on_sender, "down", &starved_name, cut_at_ms);
            match (starved_down, sender_down) {
                (Some(s), Some(o)) => {
                    outcome = Some(OneWayOutcome {
                        starved_down_after_ms: s.at_ms - cut_at_ms,
                        starved_reason: s.what,
                        other_down_after_ms: o.at_ms - cut_at_ms,
                        other_reason: o.what,
                    });
                    Ok(())
                }
                (s, o) => Err(format!(
                    "{starved_name} down: {s:?}; {sender_name} down: {o:?}"
                )),
            }
        },
    );
    outcome.expect("set when the wait succeeded")
}

/// (node, peer) index pairs of the two pairs of the one-way test, each way.
const PAIRS_BOTH_WAYS: [(usize, usize); 4] = [(0, 1), (1, 0), (2, 3), (3, 2)];

#[test]
fn one_way_cut_gives_the_asymmetric_view_otp_reports() {
    if !require_erl() {
        return;
    }
    let test_start = Instant::now();
    let proxy = Proxy::start(&["-v"]);
    // Explicit links only (`-connect_all false`), tick time 2 s: a silent
    // link is declared down 2–2.5 s after its last received byte.
    let ticktime_ms = 2000;
    let options = NodeOptions {
        net_ticktime: 2,
        connect_all: false,
        hidden: false,
    };
    // Two independent pairs on one proxy, so both proxy directions are
    // covered: in pair 1 the cut holds the initiator's bytes (a1 connects
    // to b1, `cut a1 -> b1`), in pair 2 the target's (a2 connects to b2,
    // `cut b2 -> a2`).
    let mut nodes = proxy.start_nodes(&["a1", "b1", "a2", "b2"], &options);
    for node in nodes.iter_mut() {
        install_recorder(node);
    }
    let names: Vec<String> = nodes.iter().map(|n| n.full_name().to_string()).collect();
    let shorts: Vec<String> = nodes.iter().map(|n| n.short_name().to_string()).collect();
    assert!(nodes[0].ping(&names[1]), "a1 -> b1 before the cut");
    assert!(nodes[2].ping(&names[3]), "a2 -> b2 before the cut");
    wait_until(Duration::from_secs(10), "two proxied links", || {
        !link_bytes(&proxy, &shorts[0], &shorts[1]).is_empty()
            && !link_bytes(&proxy, &shorts[2], &shorts[3]).is_empty()
    });

    ctl_ok(&proxy, &format!("cut {} -> {}", shorts[0], shorts[1]));
    let cut1_ms = now_ms();
    ctl_ok(&proxy, &format!("cut {} -> {}", shorts[3], shorts[2]));
    let cut2_ms = now_ms();
    let links = ctl_ok(&proxy, "links");
    assert!(
        links.contains("state=held-up") && links.contains("state=held-down"),
        "one link held initiator-to-target, the other target-to-initiator:\n{links}"
    );
    let at_cut = [
        one_link_bytes(&proxy, &shorts[0], &shorts[1]),
        one_link_bytes(&proxy, &shorts[2], &shorts[3]),
    ];

    // Pings both ways while the old connections still stand.
    let early_pings_ms = now_ms();
    for (i, peer) in PAIRS_BOTH_WAYS {
        spawn_ping(&mut nodes[i], &names[peer]);
    }

    // Pair 1: b1 no longer hears a1. Pair 2: a2 no longer hears b2.
    let pair1 = {
        let (left, right) = nodes.split_at_mut(1);
        observe_one_way(&mut left[0], &mut right[0], cut1_ms)
    };
    let pair2 = {
        let (left, right) = nodes.split_at_mut(3);
        let (a2, b2) = (&mut left[2], &mut right[0]);
        observe_one_way(b2, a2, cut2_ms)
    };
    for (label, outcome) in [
        ("a1 -> b1 (held-up)", &pair1),
        ("b2 -> a2 (held-down)", &pair2),
    ] {
        eprintln!(
            "cut {label}: starved node saw nodedown after {} ms ({}), the sender after {} ms ({})",
            outcome.starved_down_after_ms,
            outcome.starved_reason,
            outcome.other_down_after_ms,
            outcome.other_reason
        );
    }

    // The proxy's side: not a byte crossed the cut direction, while the
    // other direction kept carrying (ticks, the early ping's request)
    // until the starved node closed. Each link stays listed: its held
    // direction still holds the sender's last bytes and FIN.
    let after = [
        one_link_bytes(&proxy, &shorts[0], &shorts[1]),
        one_link_bytes(&proxy, &shorts[2], &shorts[3]),
    ];
    eprintln!("link bytes (up, down) at the cut: {at_cut:?}; after both nodedowns: {after:?}");
    assert_eq!(
        after[0].0, at_cut[0].0,
        "a1 -> b1 bytes crossed `cut a1 -> b1`"
    );
    assert!(
        after[0].1 > at_cut[0].1,
        "b1 -> a1 carried nothing during the cut"
    );
    assert_eq!(
        after[1].1, at_cut[1].1,
        "b2 -> a2 bytes crossed `cut b2 -> a2`"
    );
    assert!(
        after[1].0 > at_cut[1].0,
        "a2 -> b2 carried nothing during the cut"
    );

    // The early pings: each waits on a connection that can no longer answer.
    let mut early = Vec::new();
    wait_until_ok(
        CONVERGE_TIMEOUT,
        "the pings sent during the cut to finish",
        || {
            early.clear();
            for (i, peer) in PAIRS_BOTH_WAYS {
                let seen = recorded(&mut nodes[i]);
                match ping_result(&seen, &names[peer], early_pings_ms) {
                    Some(result) => early.push((i, peer, result)),
                    None => return Err(format!("{} -> {} still running", shorts[i], shorts[peer])),
                }
            }
            Ok(())
        },
    );
    eprintln!("pings during the one-way cut, over the old connection: {early:?}");

    // Now both ends are disconnected: new connections fail both ways while
    // the cut lasts (the handshake needs both directions).
    for (i, node) in nodes.iter_mut().enumerate() {
        let seen = node.nodes();
        assert!(
            seen.is_empty(),
            "{} still sees {seen:?} after both nodedowns",
            shorts[i]
        );
    }
    let late_pings_ms = now_ms();
    for (i, peer) in PAIRS_BOTH_WAYS {
        spawn_ping(&mut nodes[i], &names[peer]);
    }
    let mut late = Vec::new();
    wait_until_ok(
        CONVERGE_TIMEOUT,
        "new-connection pings during the cut",
        || {
            late.clear();
            for (i, peer) in PAIRS_BOTH_WAYS {
                let seen = recorded(&mut nodes[i]);
                match ping_result(&seen, &names[peer], late_pings_ms) {
                    Some(result) => late.push((i, peer, result)),
                    None => return Err(format!("{} -> {} still running", shorts[i], shorts[peer])),
                }
            }
            Ok(())
        },
    );
    eprintln!("pings during the one-way cut, on new connections: {late:?}");

    // What OTP 25 does, asserted:
    for (outcome, label) in [(&pair1, "pair 1"), (&pair2, "pair 2")] {
        // The node that stops hearing its peer declares it down by tick
        // timeout, after about net_ticktime (2–2.5 s; allow for a loaded machine).
        assert_eq!(outcome.starved_reason, "net_tick_timeout", "{label}");
        // (The last byte it got may predate the cut by up to a tick
        // interval, net_ticktime / 4.)
        assert!(
            outcome.starved_down_after_ms >= ticktime_ms * 3 / 4 - 200
                && outcome.starved_down_after_ms <= 3 * ticktime_ms,
            "{label}: starved node saw nodedown {} ms after the cut",
            outcome.starved_down_after_ms
        );
        // It closes the connection, and the close still reaches the
        // sender (its direction is open), which kept receiving ticks and
        // only now sees the link go: `connection_closed`, within a few ms
        // of the starved node (stamps from two VMs; either may be first
        // by a millisecond or so).
        assert_eq!(outcome.other_reason, "connection_closed", "{label}");
        let gap = outcome.other_down_after_ms - outcome.starved_down_after_ms;
        assert!(
            gap.abs() < 500,
            "{label}: the sender saw nodedown {gap} ms after the starved node"
        );
    }
    for (i, peer, (result, _)) in early.iter().chain(late.iter()) {
        assert_eq!(
            result, "pang",
            "{} -> {} during the one-way cut",
            shorts[*i], shorts[*peer]
        );
    }

    // Fixing only the cut direction restores links both ways. The old
    // links, whose receivers are gone, close once their held bytes flow.
    ctl_ok(&proxy, &format!("fix {} -> {}", shorts[0], shorts[1]));
    ctl_ok(&proxy, &format!("fix {} -> {}", shorts[3], shorts[2]));
    let status = ctl_ok(&proxy, "status");
    assert!(status.starts_with("OK 0 faults"), "{status}");
    wait_until_ok(
        Duration::from_secs(10),
        "the dead links to close after the fix",
        || match ctl_ok(&proxy, "links").as_str() {
            "OK 0 links\nEND" => Ok(()),
            other => Err(other.to_string()),
        },
    );
    assert!(nodes[0].ping(&names[1]), "a1 -> b1 after the fix");
    assert!(nodes[3].ping(&names[2]), "b2 -> a2 after the fix");
    assert!(nodes[1].ping(&names[0]), "b1 -> a1 after the fix");
    eprintln!("one-way cut test took {:?}", test_start.elapsed());
}

// ---------------------------------------------------------------------------
// 2. isolate / rejoin
// ---------------------------------------------------------------------------

#[test]
fn isolate_leaves_a_lonely_node_also_for_nodes_started_later() {
    if !require_erl() {
        return;
    }
    let test_start = Instant::now();
    let proxy = Proxy::start(&["-v"]);
    // Default connect_all and OTP 25's `global`: what a real cluster does.
    let options = NodeOptions::default();
    let mut nodes = proxy.start_nodes(&["n1", "n2", "n3", "n4"], &options);
    let mesh4 = islands(4, &[&[0, 1, 2, 3]]);
    wait_until_ok(CONVERGE_TIMEOUT, "a full mesh of 4 nodes", || {
        connect_missing(&mut nodes, &mesh4);
        check_views(&mut nodes, &mesh4)
    });
    let n4 = nodes[3].short_name().to_string();
    let n5 = proxy.unique_name("n5");

    let isolated_at = Instant::now();
    ctl_ok(&proxy, &format!("isolate {n4}"));
    let split = islands(4, &[&[0, 1, 2], &[3]]);
    wait_until_ok(CONVERGE_TIMEOUT, "n1..n3 meshed and n4 alone", || {
        check_views(&mut nodes, &split)
    });
    eprintln!("isolate visible after {:?}", isolated_at.elapsed());

    // Two nodes started after the isolate: n5, isolated before it exists,
    // registers, tries to join and stays alone; n6, not isolated, joins
    // n1..n3 but cannot reach n4 (an isolate covers later nodes too).
    let reply = ctl_ok(&proxy, &format!("isolate {n5}"));
    assert!(
        reply.contains("not registered yet"),
        "isolate of an unregistered node: {reply:?}"
    );
    nodes.extend(proxy.start_nodes(&["n5", "n6"], &options));
    assert!(
        proxy.registered_names().contains(&n5),
        "an isolated node still registers with EPMD"
    );
    install_recorder(&mut nodes[4]);
    install_recorder(&mut nodes[5]);
    let n1_full = nodes[0].full_name().to_string();
    let n4_full = nodes[3].full_name().to_string();
    let pings_at = now_ms();
    spawn_ping(&mut nodes[4], &n1_full);
    spawn_ping(&mut nodes[4], &n4_full);
    spawn_ping(&mut nodes[5], &n4_full);
    // n5's attempts reach the proxy as links, which carry nothing.
    wait_until(Duration::from_secs(10), "n5's link attempt to n1", || {
        ctl_ok(&proxy, "links")
            .lines()
            .any(|l| l.contains(&format!(" {n5}@")) && l.contains("state=cut"))
    });
    let split6 = islands(6, &[&[0, 1, 2, 5], &[3], &[4]]);
    wait_until_ok(
        CONVERGE_TIMEOUT,
        "n6 joined n1..n3, n4 and n5 alone",
        || {
            connect_missing(&mut nodes, &split6);
            check_views(&mut nodes, &split6)
        },
    );
    let mut results = Vec::new();
    wait_until_ok(CONVERGE_TIMEOUT, "the pings of n5 and n6 to finish", || {
        let on_n5 = recorded(&mut nodes[4]);
        let on_n6 = recorded(&mut nodes[5]);
        results = [
            ("n5 -> n1", ping_result(&on_n5, &n1_full, pings_at)),
            ("n5 -> n4", ping_result(&on_n5, &n4_full, pings_at)),
            ("n6 -> n4", ping_result(&on_n6, &n4_full, pings_at)),
        ]
        .into_iter()
        .filter_map(|(what, result)| Some((what, result?)))
        .collect();
        if results.len() == 3 {
            Ok(())
        } else {
            Err(format!("finished so far: {results:?}"))
        }
    });
    eprintln!("pings across the isolation: {results:?}");
    for (what, (result, _)) in &results {
        assert_eq!(result, "pang", "{what} while n4 and n5 are isolated");
    }
    check_views(&mut nodes, &split6).unwrap_or_else(|why| panic!("after the pings: {why}"));

    // rejoin + ping heals everything.
    ctl_ok(&proxy, &format!("rejoin {n4},{n5}"));
    let status = ctl_ok(&proxy, "status");
    assert!(status.starts_with("OK 0 faults"), "{status}");
    let mesh6 = islands(6, &[&[0, 1, 2, 3, 4, 5]]);
    wait_until_ok(CONVERGE_TIMEOUT, "a full mesh of 6 after rejoin", || {
        connect_missing(&mut nodes, &mesh6);
        check_views(&mut nodes, &mesh6)
    });
    eprintln!("isolate test took {:?}", test_start.elapsed());
}

// ---------------------------------------------------------------------------
// 3. reset
// ---------------------------------------------------------------------------

#[test]
fn reset_gives_nodedown_at_once_and_allows_new_links() {
    if !require_erl() {
        return;
    }
    let proxy = Proxy::start(&["-v"]);
    // A long tick: a nodedown within a few seconds cannot come from it.
    let options = NodeOptions {
        net_ticktime: 20,
        ..NodeOptions::default()
    };
    let mut nodes = proxy.start_nodes(&["a", "b"], &options);
    for node in nodes.iter_mut() {
        install_recorder(node);
    }
    let names: Vec<String> = nodes.iter().map(|n| n.full_name().to_string()).collect();
    let shorts: Vec<String> = nodes.iter().map(|n| n.short_name().to_string()).collect();
    assert!(nodes[0].ping(&names[1]));

    let before_ms = now_ms();
    let reply = ctl_ok(&proxy, &format!("reset {} | {}", shorts[0], shorts[1]));
    assert!(reply.ends_with("(1 links closed)"), "{reply:?}");

    let mut downs = Vec::new();
    wait_until_ok(Duration::from_secs(10), "nodedown on both nodes", || {
        downs.clear();
        for (i, peer) in [(0, 1), (1, 0)] {
            let seen = recorded(&mut nodes[i]);
            match first_event(&seen, "down", &names[peer], before_ms) {
                Some(down) => downs.push((shorts[i].clone(), down.at_ms - before_ms, down.what)),
                None => return Err(format!("{} has not seen {} go", shorts[i], shorts[peer])),
            }
        }
        Ok(())
    });
    eprintln!("nodedown after reset (node, ms after the command, reason): {downs:?}");
    for (node, after_ms, reason) in &downs {
        assert!(
            *after_ms <= 3000,
            "{node} saw nodedown {after_ms} ms after reset (net_ticktime is 20 s)"
        );
        assert_eq!(reason, "connection_closed", "{node}");
    }
    let status = ctl_ok(&proxy, "status");
    assert!(
        status.starts_with("OK 0 faults"),
        "reset leaves no fault: {status}"
    );
    // New links right away, either way round.
    assert!(nodes[1].ping(&names[0]), "b -> a right after the reset");
    assert!(nodes[0].ping(&names[1]), "a -> b right after the reset");
}

// ---------------------------------------------------------------------------
// 4. delay
// ---------------------------------------------------------------------------

/// Times one `erpc:call` from `node` to `peer`, measured inside the node, in ms.
fn erpc_round_trip_ms(node: &mut ErlNode, peer: &str) -> f64 {
    let reply = node.eval(&format!(
        "T0 = erlang:monotonic_time(microsecond), _ = erpc:call('{peer}', erlang, node, [], 10000), \
         erlang:monotonic_time(microsecond) - T0"
    ));
    let micros: f64 = reply
        .parse()
        .unwrap_or_else(|_| panic!("erpc round trip gave {reply:?}"));
    micros / 1000.0
}

#[test]
fn delay_slows_round_trips_and_keeps_order() {
    if !require_erl() {
        return;
    }
    let proxy = Proxy::start(&["-v"]);
    let options = NodeOptions {
        connect_all: false,
        ..NodeOptions::default()
    };
    let mut nodes = proxy.start_nodes(&["a", "b"], &options);
    let names: Vec<String> = nodes.iter().map(|n| n.full_name().to_string()).collect();
    let shorts: Vec<String> = nodes.iter().map(|n| n.short_name().to_string()).collect();
    assert!(nodes[0].ping(&names[1]));
    let undelayed = erpc_round_trip_ms(&mut nodes[0], &names[1]);

    // Measured right after the command: the delay applies to the next
    // bytes already, not only after the link happens to be idle a while.
    ctl_ok(
        &proxy,
        &format!("delay {} | {} 300ms", shorts[0], shorts[1]),
    );
    let delayed: Vec<f64> = (0..3)
        .map(|_| erpc_round_trip_ms(&mut nodes[0], &names[1]))
        .collect();
    eprintln!("erpc round trip: {undelayed:.1} ms before, {delayed:.1?} ms with delay 300ms");
    for ms in &delayed {
        assert!(
            *ms >= 600.0,
            "round trip of {ms:.1} ms with 300 ms each way"
        );
        assert!(
            *ms < 1500.0,
            "round trip of {ms:.1} ms with 300 ms each way"
        );
    }

    // Order under jitter: chunks read 2 ms apart get random delays in
    // 100..500 ms, yet none may overtake an earlier one.
    ctl_ok(
        &proxy,
        &format!("delay {} | {} 300ms jitter 200ms", shorts[0], shorts[1]),
    );
    let reply = nodes[1].eval(
        "register(epmdpxy_seq, spawn(fun() -> L = fun L(Acc) -> receive \
           {seq, I, Sent} -> L([{I, os:system_time(millisecond) - Sent} | Acc]); \
           {get, From} -> From ! {epmdpxy_seq, lists:reverse(Acc)}, L(Acc) end end, L([]) end)), ok",
    );
    assert_eq!(reply, "ok");
    let reply = nodes[0].eval(&format!(
        "[begin {{epmdpxy_seq, '{}'}} ! {{seq, I, os:system_time(millisecond)}}, timer:sleep(2) end \
         || I <- lists:seq(1, 100)], ok",
        names[1]
    ));
    assert_eq!(reply, "ok");
    let mut received: Vec<(u32, i64)> = Vec::new();
    wait_until_ok(Duration::from_secs(10), "100 messages on b", || {
        let reply = nodes[1].eval(
            "epmdpxy_seq ! {get, self()}, receive {epmdpxy_seq, L} -> \
             lists:flatten([io_lib:format(\"~b:~b \", [I, D]) || {I, D} <- L]) after 5000 -> timeout end",
        );
        received = reply
            .trim_matches('"')
            .split_whitespace()
            .filter_map(|pair| {
                let (i, d) = pair.split_once(':')?;
                Some((i.parse().ok()?, d.parse().ok()?))
            })
            .collect();
        if received.len() >= 100 {
            Ok(())
        } else {
            Err(format!("{} received", received.len()))
        }
    });
    let order: Vec<u32> = received.iter().map(|&(i, _)| i).collect();
    assert_eq!(
        order,
        (1..=100).collect::<Vec<u32>>(),
        "messages out of order"
    );
    let latencies: Vec<i64> = received.iter().map(|&(_, d)| d).collect();
    let (min, max) = (
        latencies.iter().min().copied().unwrap_or(0),
        latencies.iter().max().copied().unwrap_or(0),
    );
    eprintln!("one-way latency with 300ms jitter 200ms: min {min} ms, max {max} ms");
    assert!(min >= 99, "a message arrived {min} ms after it was sent");

    // clear removes the delay (a shaped read already in progress may still
    // carry the old delay, so poll).
    ctl_ok(&proxy, &format!("clear {} | {}", shorts[0], shorts[1]));
    let mut last = 0.0;
    wait_until_ok(
        Duration::from_secs(5),
        "a fast round trip after clear",
        || {
            last = erpc_round_trip_ms(&mut nodes[0], &names[1]);
            if last < 200.0 {
                Ok(())
            } else {
                Err(format!("{last:.1} ms"))
            }
        },
    );
}

// ---------------------------------------------------------------------------
// 5. throttle
// ---------------------------------------------------------------------------

#[test]
fn throttle_holds_a_bulk_transfer_to_the_cap() {
    if !require_erl() {
        return;
    }
    const CAP_BYTES_PER_SECOND: f64 = 4_000_000.0 / 8.0; // 4mbps
    const CHUNK: usize = 256 * 1024;
    const CHUNKS: usize = 6; // 1.5 MiB: about 3 s at the cap
    let proxy = Proxy::start(&["-v"]);
    let options = NodeOptions {
        connect_all: false,
        ..NodeOptions::default()
    };
    let mut nodes = proxy.start_nodes(&["a", "b"], &options);
    let names: Vec<String> = nodes.iter().map(|n| n.full_name().to_string()).collect();
    let shorts: Vec<String> = nodes.iter().map(|n| n.short_name().to_string()).collect();
    assert!(nodes[0].ping(&names[1]));
    ctl_ok(
        &proxy,
        &format!("throttle {} | {} 4mbps", shorts[0], shorts[1]),
    );

    // The receiver stamps each chunk when it has fully arrived.
    let reply = nodes[1].eval(
        "register(epmdpxy_sink, spawn(fun() -> L = fun L(Acc) -> receive \
           {chunk, I, Bin} -> L([{I, byte_size(Bin), erlang:monotonic_time(microsecond)} | Acc]); \
           {get, From} -> From ! {epmdpxy_sink, lists:reverse(Acc)}, L(Acc) end end, L([]) end)), ok",
    );
    assert_eq!(reply, "ok");
    let before: u64 = link_bytes(&proxy, &shorts[0], &shorts[1])
        .iter()
        .map(|(up, down)| up + down)
        .sum();
    // Random bytes: nothing on the way can compress them.
    let reply = nodes[0].eval(&format!(
        "spawn(fun() -> [{{epmdpxy_sink, '{}'}} ! {{chunk, I, rand:bytes({CHUNK})}} \
         || I <- lists:seq(1, {CHUNKS})] end), ok",
        names[1]
    ));
    assert_eq!(reply, "ok");

    // Meanwhile, the proxy's own byte counters, sampled.
    let mut samples: Vec<(Instant, u64)> = Vec::new();
    let mut arrivals: Vec<(usize, u64, i64)> = Vec::new();
    wait_until_ok(Duration::from_secs(20), "the whole transfer on b", || {
        let total: u64 = link_bytes(&proxy, &shorts[0], &shorts[1])
            .iter()
            .map(|(up, down)| up + down)
            .sum();
        samples.push((Instant::now(), total - before.min(total)));
        let reply = nodes[1].eval(
            "epmdpxy_sink ! {get, self()}, receive {epmdpxy_sink, L} -> \
             lists:flatten([io_lib:format(\"~b:~b:~b \", [I, S, T]) || {I, S, T} <- L]) after 5000 -> timeout end",
        );
        arrivals = reply
            .trim_matches('"')
            .split_whitespace()
            .filter_map(|entry| {
                let mut parts = entry.split(':');
                Some((
                    parts.next()?.parse().ok()?,
                    parts.next()?.parse().ok()?,
                    parts.next()?.parse().ok()?,
                ))
            })
            .collect();
        if arrivals.len() == CHUNKS {
            Ok(())
        } else {
            Err(format!("{} of {CHUNKS} chunks arrived", arrivals.len()))
        }
    });
    let order: Vec<usize> = arrivals.iter().map(|a| a.0).collect();
    assert_eq!(order, (1..=CHUNKS).collect::<Vec<_>>());

    // Payload rate seen by the receiver, from the first chunk's arrival to
    // the last's (start-up excluded). The wire carries a few dozen bytes
    // more per 64 KiB fragment: well under 1 %.
    let (first, last) = (arrivals[0], arrivals[CHUNKS - 1]);
    let payload: u64 = arrivals[1..].iter().map(|a| a.1).sum();
    let seconds = (last.2 - first.2) as f64 / 1e6;
    let received_rate = payload as f64 / seconds;

    // Rate through the proxy, from its counters: between the samples past
    // the first 10 % and before the last 10 % of the transfer.
    let total = samples.last().map(|s| s.1).unwrap_or(0);
    let inner: Vec<&(Instant, u64)> = samples
        .iter()
        .filter(|s| s.1 > total / 10 && s.1 < total - total / 10)
        .collect();
    assert!(inner.len() >= 3, "too few counter samples: {samples:?}");
    let (s0, s1) = (inner[0], inner[inner.len() - 1]);
    let proxy_rate = (s1.1 - s0.1) as f64 / (s1.0 - s0.0).as_secs_f64();
    eprintln!(
        "throttle 4mbps = {CAP_BYTES_PER_SECOND} B/s: receiver measured {received_rate:.0} B/s \
         ({payload} B in {seconds:.2} s); proxy counters {proxy_rate:.0} B/s \
         ({} B in {:.2} s, {total} B in all)",
        s1.1 - s0.1,
        (s1.0 - s0.0).as_secs_f64()
    );
    for (what, rate) in [("receiver", received_rate), ("proxy counters", proxy_rate)] {
        let ratio = rate / CAP_BYTES_PER_SECOND;
        assert!(
            (0.8..=1.2).contains(&ratio),
            "{what}: {rate:.0} B/s is {:.0} % of the cap",
            ratio * 100.0
        );
    }
}

// ---------------------------------------------------------------------------
// 6. watch
// ---------------------------------------------------------------------------

/// A raw control session in `watch` mode; a thread collects its lines.
struct WatchSession {
    stream: TcpStream,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl WatchSession {
    fn open(proxy: &Proxy) -> WatchSession {
        let mut stream =
            TcpStream::connect(("127.0.0.1", proxy.control_port)).expect("connect to control");
        stream.write_all(b"watch\n").expect("send watch");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut session = WatchSession {
            stream,
            lines,
            seen: Vec::new(),
        };
        let first = session.next_line(Duration::from_secs(10));
        assert!(first.starts_with("OK watching"), "watch answered {first:?}");
        session.seen.clear();
        session
    }

    fn next_line(&mut self, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!("watch: nothing within {timeout:?}; seen: {:#?}", self.seen)
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("watch stream ended; seen: {:#?}", self.seen)
            }
        }
    }

    /// Reads until a line contains every one of `parts`.
    fn wait_for(&mut self, parts: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.next_line(left.max(Duration::from_millis(1)));
            if parts.iter().all(|p| line.contains(p)) {
                return;
            }
        }
    }

    /// Sends `quit`, reads up to `OK bye`, returns every event line seen.
    fn quit(mut self) -> Vec<String> {
        self.stream.write_all(b"quit\n").expect("send quit");
        loop {
            if self.next_line(Duration::from_secs(10)) == "OK bye" {
                break;
            }
        }
        self.seen.pop();
        self.seen
    }
}

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
    let mut first = WatchSession::open(&proxy);
    let second = WatchSession::open(&proxy);
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
    ctl_ok(&proxy, &format!("cut {a} | {b}"));
    ctl_ok(&proxy, &format!("fix {a} | {b}"));
    ctl_ok(&proxy, &format!("cut {a} -> {b}"));
    ctl_ok(&proxy, &format!("fix {a} -> {b}"));
    let reply = ctl_ok(&proxy, &format!("reset {a} | {b}"));
    assert!(reply.ends_with("(1 links closed)"), "{reply:?}");
    first.wait_for(&["link-close", "reason=\"reset by control\""]);
    ctl_ok(&proxy, &format!("delay {a} | {b} 300ms"));
    ctl_ok(&proxy, &format!("clear {a} | {b}"));
    ctl_ok(&proxy, &format!("isolate {a}"));
    ctl_ok(&proxy, &format!("rejoin {a}"));
    ctl_ok(&proxy, "heal");
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

// ---------------------------------------------------------------------------
// 7. epmdpxy ctl
// ---------------------------------------------------------------------------

/// Runs `epmdpxy ctl --control-port PORT ARGS...` with `stdin`; returns the
/// exit code, stdout and stderr. Killed after 20 s.
fn run_ctl(port: u16, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_epmdpxy"))
        .args(["ctl", "--control-port", &port.to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn epmdpxy ctl");
    let mut input = child.stdin.take().expect("piped stdin");
    // A ctl that exits without reading stdin makes this fail: ignore it.
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(output)) => (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
        Ok(Err(e)) => panic!("epmdpxy ctl {args:?}: {e}"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("epmdpxy ctl {args:?} did not finish within 20 s")
        }
    }
}

#[test]
fn ctl_exit_codes_and_scenarios_from_stdin() {
    let proxy = Proxy::start(&[]);
    let port = proxy.control_port;

    let (code, out, err) = run_ctl(port, &["status"], "");
    assert_eq!(code, 0, "status: {out}{err}");
    assert!(
        out.starts_with("OK 0 faults") && out.lines().count() == 2,
        "{out}"
    );

    // Words are joined with spaces, so `|` may come as its own argument.
    let (code, out, err) = run_ctl(port, &["cut", "x1", "|", "y1"], "");
    assert_eq!(code, 0, "cut: {out}{err}");
    assert!(out.starts_with("OK cut x1 | y1"), "{out}");

    // `->` as a word of its own is a command word too, not an option.
    let (code, out, err) = run_ctl(port, &["cut", "x2", "->", "y2"], "");
    assert_eq!(code, 0, "cut ->: {out}{err}");
    assert!(out.starts_with("OK cut x2 -> y2"), "{out}");
    let (code, out, err) = run_ctl(port, &["fix", "x2", "->", "y2"], "");
    assert_eq!((code, out.as_str()), (0, "OK fix x2 -> y2\n"), "{err}");

    let (code, out, err) = run_ctl(port, &["frobnicate", "x1"], "");
    assert_eq!(code, 1, "unknown command: {out}{err}");
    assert!(out.starts_with("ERR "), "{out}");
    let (code, out, _) = run_ctl(port, &["delay x1 | y1 fast"], "");
    assert_eq!(code, 1, "bad duration: {out}");
    assert!(out.starts_with("ERR "), "{out}");

    // Nobody listening: exit 2.
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let (code, out, err) = run_ctl(closed_port, &["status"], "");
    assert_eq!(code, 2, "no control port: {out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("cannot connect"), "{err}");
    let (code, _, err) = run_ctl(closed_port, &["-"], "status\n");
    assert_eq!(code, 2, "no control port with -: {err}");

    // A scenario on stdin stops at the first ERR: later lines are not sent.
    let scenario =
        "# a scenario\n\nisolate s1\nsleep 1s\n  throttle x1 | y1 64kbps\nfrobnicate\nisolate s2\n";
    let started = Instant::now();
    let (code, out, err) = run_ctl(port, &["-"], scenario);
    let took = started.elapsed();
    assert_eq!(code, 1, "scenario with an error: {out}{err}");
    let replies: Vec<&str> = out.lines().collect();
    assert_eq!(
        replies.len(),
        4,
        "one reply per command up to the ERR: {out}"
    );
    assert!(replies[0].starts_with("OK isolate s1"), "{out}");
    assert_eq!(replies[1], "OK slept 1s");
    assert!(
        replies[2].starts_with("OK throttle x1 | y1 64kbps"),
        "{out}"
    );
    assert!(replies[3].starts_with("ERR "), "{out}");
    assert!(took >= Duration::from_secs(1), "sleep 1s took {took:?}");
    let status = ctl_ok(&proxy, "status");
    // the header also carries the seed: compare the fault lines
    let faults: Vec<&str> = status.lines().skip(1).collect();
    assert!(status.starts_with("OK 3 faults"), "{status}");
    assert_eq!(
        faults,
        [
            "cut x1 | y1",
            "isolate s1",
            "throttle x1 | y1 64kbps",
            "END"
        ],
        "the commands after the ERR must not be applied"
    );

    // A clean scenario exits 0.
    let (code, out, err) = run_ctl(port, &["-"], "heal\nstatus\n");
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "OK healed");
    assert!(lines[1].starts_with("OK 0 faults seed="), "{out}");
    assert_eq!(lines[2], "END");
}

// ---------------------------------------------------------------------------
// 8. status is replayable
// ---------------------------------------------------------------------------

#[test]
fn status_lines_replay_to_the_same_status() {
    let proxy = Proxy::start(&[]);
    let faults = [
        "cut r1,r2 | r3",
        "cut r4 -> r5",
        "cut r6 | r7 | r8",
        "cut r9@hosta -> *@hostb",
        "cut r10 -> r11",
        "cut r11 -> r10",
        "isolate r12,r13",
        "isolate *@hostc",
        "delay r1 | r3 300ms jitter 50ms",
        "delay r2 | r4@hosta,r5 1.5s",
        "delay r6 | r7 2s",
        "delay r6 | r7 250ms",
        "throttle r1 | r2,r3 64kbps",
        "throttle r6 | r7 64KiB/s",
        "throttle r8 | r9 1.5mbps",
        "delay r8 | r9 10ms",
        "cut R14 | r14",
    ];
    for fault in faults {
        ctl_ok(&proxy, fault);
    }
    // Removing part of a fault leaves the rest described.
    ctl_ok(&proxy, "fix r2 | r3");
    ctl_ok(&proxy, "clear r1 | r2");

    let status = ctl_ok(&proxy, "status");
    let lines: Vec<&str> = status.lines().collect();
    assert_eq!(lines.last(), Some(&"END"), "{status}");
    let fault_lines = &lines[1..lines.len() - 1];
    assert!(
        lines[0].starts_with(&format!("OK {} faults", fault_lines.len())),
        "{status}"
    );
    eprintln!("status to replay:\n{status}");
    for expected in [
        "cut r1 | r3",
        "cut r4 -> r5",
        "cut r10 | r11",
        "isolate *@hostc",
        "delay r1 | r3 300ms jitter 50ms",
        "delay r6 | r7 250ms",
        "throttle r1 | r3 64kbps",
    ] {
        assert!(
            fault_lines.contains(&expected),
            "{expected:?} missing:\n{status}"
        );
    }
    assert!(
        !fault_lines
            .iter()
            .any(|l| l.contains("cut r2 | r3") || l.contains("r1 | r2 64kbps")),
        "removed faults still described:\n{status}"
    );

    assert_eq!(
        replay_status(&proxy),
        status,
        "status after replaying status"
    );
}

/// Heals, feeds the fault lines of `status` back one by one, and returns
/// the new `status`.
fn replay_status(proxy: &Proxy) -> String {
    let status = ctl_ok(proxy, "status");
    ctl_ok(proxy, "heal");
    let healed = ctl_ok(proxy, "status");
    assert!(
        healed.starts_with("OK 0 faults") && healed.lines().count() == 2,
        "{healed}"
    );
    for line in status.lines().skip(1).filter(|line| *line != "END") {
        ctl_ok(proxy, line);
    }
    ctl_ok(proxy, "status")
}

/// Durations are accepted with a decimal point, so `status` must show
/// them without rounding: a delay of 0.5 ms is not "0ms", and a jitter of
/// 0.4 ms must not replay as no jitter at all.
#[test]
fn sub_millisecond_durations_are_refused_so_status_stays_exact() {
    // `status` must replay exactly, so a duration it could not print
    // exactly is refused up front instead of being rounded.
    let proxy = Proxy::start(&[]);
    for line in ["delay p1 | p2 1.2345s jitter 0.4ms", "delay p3 | p4 0.5ms"] {
        let reply = proxy.ctl(line);
        assert!(
            reply.starts_with("ERR") && reply.contains("whole milliseconds"),
            "{line}: {reply}"
        );
    }
    ctl_ok(&proxy, "delay p1 | p2 1.234s jitter 1ms");
    let status = ctl_ok(&proxy, "status");
    assert!(
        status.contains("delay p1 | p2 1234ms jitter 1ms"),
        "{status}"
    );
    assert_eq!(
        replay_status(&proxy),
        status,
        "status after replaying status"
    );
}

/// One control line may name hundreds of nodes; the rules every relayed
/// chunk is checked against are capped (10,000), so such a line is refused
/// as a whole and nothing of it is applied.
#[test]
fn the_number_of_fault_rules_is_capped() {
    let proxy = Proxy::start(&[]);
    let island = |prefix: &str, n: usize| {
        (0..n)
            .map(|i| format!("{prefix}{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    // 2 × 100 × 100 = 20,000 directed pairs
    let reply = proxy.ctl(&format!("cut {} | {}", island("a", 100), island("b", 100)));
    assert!(reply.starts_with("ERR too many faults"), "{reply}");
    let status = ctl_ok(&proxy, "status");
    assert!(
        status.starts_with("OK 0 faults"),
        "nothing was applied: {status}"
    );
    // 2 × 50 × 50 = 5,000 pairs fit, twice more do not
    ctl_ok(
        &proxy,
        &format!("cut {} | {}", island("a", 50), island("b", 50)),
    );
    ctl_ok(
        &proxy,
        &format!("delay {} | {} 10ms", island("c", 50), island("d", 49)),
    );
    let reply = proxy.ctl(&format!(
        "throttle {} | {} 1mbps",
        island("e", 10),
        island("f", 10)
    ));
    assert!(reply.starts_with("ERR too many faults"), "{reply}");
    // status shows each both-ways pair once: 2,500 cuts + 2,450 delays
    assert!(ctl_ok(&proxy, "status").starts_with("OK 4950 faults"));
}
