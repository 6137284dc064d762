//! One-way cuts (`cut a -> b`) against real nodes: what OTP 25 reports
//! (as on a real network that drops a->b packets, whose ACKs of b's data
//! are dropped too, so the reverse direction stalls: b ticks out, and a
//! ticks out on its own soon after), no byte crossing the held direction,
//! the reverse direction quiet after the stall, and links both ways again
//! after the fix.

use std::time::{Duration, Instant};

use super::observe::{
    first_event, install_recorder, link_bytes, now_ms, one_link_bytes, ping_result, recorded,
    spawn_ping, CONVERGE_TIMEOUT,
};
use crate::common::{require_erl, wait_until, wait_until_ok, ErlNode, NodeOptions, Proxy};

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

    proxy.ctl_ok(&format!("cut {} -> {}", shorts[0], shorts[1]));
    let cut1_ms = now_ms();
    proxy.ctl_ok(&format!("cut {} -> {}", shorts[3], shorts[2]));
    let cut2_ms = now_ms();
    let links = proxy.ctl_ok("links");
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

    // The proxy's side: not a byte crossed the cut direction. The other
    // direction stalls 200 ms after its first send since the cut (the ACK
    // that never comes): once both nodes are down nothing crosses it any
    // more — not the starved node's close, not the sender's last ticks.
    let after = [
        one_link_bytes(&proxy, &shorts[0], &shorts[1]),
        one_link_bytes(&proxy, &shorts[2], &shorts[3]),
    ];
    std::thread::sleep(Duration::from_millis(600));
    let later = [
        one_link_bytes(&proxy, &shorts[0], &shorts[1]),
        one_link_bytes(&proxy, &shorts[2], &shorts[3]),
    ];
    eprintln!(
        "link bytes (up, down) at the cut: {at_cut:?}; after both nodedowns: {after:?}; 600 ms later: {later:?}"
    );
    assert_eq!(
        after[0].0, at_cut[0].0,
        "a1 -> b1 bytes crossed `cut a1 -> b1`"
    );
    assert_eq!(later[0], after[0], "a1 - b1 carried bytes after the stall");
    assert_eq!(
        after[1].1, at_cut[1].1,
        "b2 -> a2 bytes crossed `cut b2 -> a2`"
    );
    assert_eq!(later[1], after[1], "a2 - b2 carried bytes after the stall");

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
        // Its close does not cross the cut either: the sender stops
        // hearing it too once the reverse direction stalls (~200 ms after
        // the cut), and ticks out on its own, a little after the starved
        // node (on a real network ~0.65 s after).
        assert_eq!(outcome.other_reason, "net_tick_timeout", "{label}");
        let gap = outcome.other_down_after_ms - outcome.starved_down_after_ms;
        assert!(
            (-500..1500).contains(&gap),
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
    proxy.ctl_ok(&format!("fix {} -> {}", shorts[0], shorts[1]));
    proxy.ctl_ok(&format!("fix {} -> {}", shorts[3], shorts[2]));
    let status = proxy.ctl_ok("status");
    assert!(status.starts_with("OK 0 faults"), "{status}");
    wait_until_ok(
        Duration::from_secs(10),
        "the dead links to close after the fix",
        || match proxy.ctl_ok("links").as_str() {
            "OK 0 links\nEND" => Ok(()),
            other => Err(other.to_string()),
        },
    );
    assert!(nodes[0].ping(&names[1]), "a1 -> b1 after the fix");
    assert!(nodes[3].ping(&names[2]), "b2 -> a2 after the fix");
    assert!(nodes[1].ping(&names[0]), "b1 -> a1 after the fix");
    eprintln!("one-way cut test took {:?}", test_start.elapsed());
}
