//! `isolate`/`rejoin` (which also covers nodes started later) and
//! `reset` (an immediate nodedown, and new links right away) against real
//! nodes.

use std::time::{Duration, Instant};

use super::observe::{
    first_event, install_recorder, now_ms, ping_result, recorded, spawn_ping, CONVERGE_TIMEOUT,
};
use crate::common::erl::{await_views, islands};
use crate::common::{check_views, require_erl, wait_until, wait_until_ok, NodeOptions, Proxy};

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
    await_views(
        &mut nodes,
        &mesh4,
        CONVERGE_TIMEOUT,
        "a full mesh of 4 nodes",
    );
    let n4 = nodes[3].short_name().to_string();
    let n5 = proxy.unique_name("n5");

    let isolated_at = Instant::now();
    proxy.ctl_ok(&format!("isolate {n4}"));
    let split = islands(4, &[&[0, 1, 2], &[3]]);
    wait_until_ok(CONVERGE_TIMEOUT, "n1..n3 meshed and n4 alone", || {
        check_views(&mut nodes, &split)
    });
    eprintln!("isolate visible after {:?}", isolated_at.elapsed());

    // Two nodes started after the isolate: n5, isolated before it exists,
    // registers, tries to join and stays alone; n6, not isolated, joins
    // n1..n3 but cannot reach n4 (an isolate covers later nodes too).
    let reply = proxy.ctl_ok(&format!("isolate {n5}"));
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
        proxy
            .ctl_ok("links")
            .lines()
            .any(|l| l.contains(&format!(" {n5}@")) && l.contains("state=cut"))
    });
    let split6 = islands(6, &[&[0, 1, 2, 5], &[3], &[4]]);
    await_views(
        &mut nodes,
        &split6,
        CONVERGE_TIMEOUT,
        "n6 joined n1..n3, n4 and n5 alone",
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
    proxy.ctl_ok(&format!("rejoin {n4},{n5}"));
    let status = proxy.ctl_ok("status");
    assert!(status.starts_with("OK 0 faults"), "{status}");
    let mesh6 = islands(6, &[&[0, 1, 2, 3, 4, 5]]);
    await_views(
        &mut nodes,
        &mesh6,
        CONVERGE_TIMEOUT,
        "a full mesh of 6 after rejoin",
    );
    eprintln!("isolate test took {:?}", test_start.elapsed());
}

#[test]
fn reset_gives_nodedown_at_once_and_allows_new_links() {
    if !require_erl() {
        return;
    }
    let proxy = Proxy::start(&["-v"]);
    // Each end is reset when it next sends: at its next tick (every
    // net_ticktime / 4 = 2 s) at the latest. A nodedown from a tick
    // timeout would take 8 s.
    let options = NodeOptions {
        net_ticktime: 8,
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
    let reply = proxy.ctl_ok(&format!("reset {} | {}", shorts[0], shorts[1]));
    assert!(
        reply.ends_with("(1 link reset, each end as it next sends)"),
        "{reply:?}"
    );

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
            *after_ms <= 3500,
            "{node} saw nodedown {after_ms} ms after reset (ticks every 2 s, timeout 8 s)"
        );
        assert_eq!(reason, "connection_closed", "{node}");
    }
    let status = proxy.ctl_ok("status");
    assert!(
        status.starts_with("OK 0 faults"),
        "reset leaves no fault: {status}"
    );
    // New links right away, either way round.
    assert!(nodes[1].ping(&names[0]), "b -> a right after the reset");
    assert!(nodes[0].ping(&names[1]), "a -> b right after the reset");
}
