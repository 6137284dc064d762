//! Shaping links between real nodes: `delay` (round trips slowed, order
//! kept under jitter, `clear` undoes it) and `throttle` (a bulk transfer
//! held to the cap, seen by the receiver and by the proxy's counters).

use std::time::{Duration, Instant};

use super::observe::link_bytes;
use crate::common::{require_erl, wait_until_ok, ErlNode, NodeOptions, Proxy};

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

/// Nodes `a` and `b` (no `connect_all`), linked by a ping; with their
/// full and short names.
fn linked_pair(proxy: &Proxy) -> (Vec<ErlNode>, Vec<String>, Vec<String>) {
    let options = NodeOptions {
        connect_all: false,
        ..NodeOptions::default()
    };
    let mut nodes = proxy.start_nodes(&["a", "b"], &options);
    let names: Vec<String> = nodes.iter().map(|n| n.full_name().to_string()).collect();
    let shorts: Vec<String> = nodes.iter().map(|n| n.short_name().to_string()).collect();
    assert!(nodes[0].ping(&names[1]));
    (nodes, names, shorts)
}

#[test]
fn delay_slows_round_trips_and_keeps_order() {
    if !require_erl() {
        return;
    }
    let proxy = Proxy::start(&["-v"]);
    let (mut nodes, names, shorts) = linked_pair(&proxy);
    let undelayed = erpc_round_trip_ms(&mut nodes[0], &names[1]);

    // Measured right after the command: the delay applies to the next
    // bytes already, not only after the link happens to be idle a while.
    proxy.ctl_ok(&format!("delay {} | {} 300ms", shorts[0], shorts[1]));
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
    proxy.ctl_ok(&format!(
        "delay {} | {} 300ms jitter 200ms",
        shorts[0], shorts[1]
    ));
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
    proxy.ctl_ok(&format!("clear {} | {}", shorts[0], shorts[1]));
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

#[test]
fn throttle_holds_a_bulk_transfer_to_the_cap() {
    if !require_erl() {
        return;
    }
    const CAP_BYTES_PER_SECOND: f64 = 4_000_000.0 / 8.0; // 4mbps
    const CHUNK: usize = 256 * 1024;
    const CHUNKS: usize = 6; // 1.5 MiB: about 3 s at the cap
    let proxy = Proxy::start(&["-v"]);
    let (mut nodes, names, shorts) = linked_pair(&proxy);
    proxy.ctl_ok(&format!("throttle {} | {} 4mbps", shorts[0], shorts[1]));

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
