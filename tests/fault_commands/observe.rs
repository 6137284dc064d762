//! How the fault tests see what happened. Inside each node, a small
//! process (`install_recorder`) subscribed to `net_kernel:monitor_nodes/2`
//! stamps every nodeup/nodedown with `os:system_time(millisecond)` (the
//! same clock as the test's `SystemTime`, all on one machine), so asking a
//! node what happened does not change what happens; pings meant to be
//! observed during a fault are spawned inside the node and record their
//! result the same way. On the proxy's side, the per-link byte counters of
//! `links`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{ErlNode, Proxy};

/// How long a fault may take to show in the nodes' views (a few ticks).
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);

/// Milliseconds since the Unix epoch: comparable with `os:system_time(millisecond)`.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Installs the in-node recorder (registered as `epmdpxy_rec`): every
/// nodeup/nodedown, with the nodedown reason, and every `{note, ...}` sent
/// to it, stamped with the wall clock in milliseconds.
pub fn install_recorder(node: &mut ErlNode) {
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
pub struct Seen {
    /// `up`, `down`, `ping`, ...
    pub kind: String,
    /// The peer's full name.
    pub node: String,
    /// nodedown reason, ping `{Result,Millis}`, or `none`.
    pub what: String,
    /// Wall clock, ms since the epoch.
    pub at_ms: i64,
}

/// Everything the recorder of `node` saw, oldest first.
pub fn recorded(node: &mut ErlNode) -> Vec<Seen> {
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
pub fn first_event(seen: &[Seen], kind: &str, peer: &str, since_ms: i64) -> Option<Seen> {
    seen.iter()
        .find(|s| s.kind == kind && s.node == peer && s.at_ms >= since_ms)
        .cloned()
}

/// Spawns a `net_adm:ping(Peer)` inside `node`; its result lands in the
/// recorder as `ping Peer {pong|pang,Millis} StartedAt`.
pub fn spawn_ping(node: &mut ErlNode, peer: &str) {
    let reply = node.eval(&format!(
        "spawn(fun() -> T0 = os:system_time(millisecond), R = net_adm:ping('{peer}'), \
         epmdpxy_rec ! {{note, ping, '{peer}', {{R, os:system_time(millisecond) - T0}}, T0}} end), ok"
    ));
    assert_eq!(reply, "ok");
}

/// The result of the first ping to `peer` started at or after `since_ms`:
/// (`pong`/`pang`, how long it took in ms), once it has finished.
pub fn ping_result(seen: &[Seen], peer: &str, since_ms: i64) -> Option<(String, i64)> {
    let ping = first_event(seen, "ping", peer, since_ms)?;
    let inner = ping.what.trim_start_matches('{').trim_end_matches('}');
    let (result, millis) = inner.split_once(',')?;
    Some((result.to_string(), millis.parse().ok()?))
}

/// (up, down) bytes of the live links whose initiator starts with `from`
/// and whose target starts with `to`.
pub fn link_bytes(proxy: &Proxy, from: &str, to: &str) -> Vec<(u64, u64)> {
    let reply = proxy.ctl_ok("links");
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
pub fn one_link_bytes(proxy: &Proxy, from: &str, to: &str) -> (u64, u64) {
    match link_bytes(proxy, from, to).as_slice() {
        [one] => *one,
        other => panic!("expected one link {from} -> {to}, found {other:?}"),
    }
}
