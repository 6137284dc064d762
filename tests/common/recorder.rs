//! What real nodes observe, recorded inside them. A small process
//! registered as `epmdpxy_rec` (`install`) subscribes to
//! `net_kernel:monitor_nodes(true, [nodedown_reason])` and stamps every
//! nodeup and nodedown (with its reason) with `os:system_time(millisecond)`
//! — the clock of the test's `SystemTime`, all on one machine — so asking a
//! node what happened never changes what happens. Pings and sends meant to
//! run during a fault are spawned inside the node and note their results
//! there too (`{note, Kind, Peer, What, At}`); the recorder also notes and
//! swallows `{bulk, From, Binary}` messages sent to it.

use std::time::{SystemTime, UNIX_EPOCH};

use super::ErlNode;

/// Milliseconds since the Unix epoch: comparable with `os:system_time(millisecond)`.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One thing a node's recorder saw.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `up`, `down`, `ping`, `bulk` (a bulk message arrived), `sent`, ...
    pub kind: String,
    /// The peer's full name.
    pub node: String,
    /// nodedown reason, ping `{Result,Millis}`, bulk size, or `none`.
    pub what: String,
    /// Wall clock, ms since the epoch.
    pub at_ms: i64,
}

/// Starts the recorder in `node`.
pub fn install(node: &mut ErlNode) {
    let reply = node.eval(
        "register(epmdpxy_rec, spawn(fun() -> \
         ok = net_kernel:monitor_nodes(true, [nodedown_reason]), \
         Loop = fun Loop(Acc) -> receive \
           {get, From} -> From ! {epmdpxy_rec, lists:reverse(Acc)}, Loop(Acc); \
           {nodeup, N, _} -> Loop([{up, N, none, os:system_time(millisecond)} | Acc]); \
           {nodedown, N, Info} -> Loop([{down, N, proplists:get_value(nodedown_reason, Info), os:system_time(millisecond)} | Acc]); \
           {note, Kind, N, What, T} -> Loop([{Kind, N, What, T} | Acc]); \
           {bulk, From, Bin} -> Loop([{bulk, From, byte_size(Bin), os:system_time(millisecond)} | Acc]); \
           _ -> Loop(Acc) \
         end end, Loop([]) end)), ok",
    );
    assert_eq!(
        reply,
        "ok",
        "installing the recorder on {}",
        node.short_name()
    );
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
                kind: fields[0].to_owned(),
                node: fields[1].to_owned(),
                what: fields[2].to_owned(),
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

/// Spawns, inside `node`, the send of one message of `bytes` bytes to the
/// recorder of `peer` (which swallows it and notes `bulk`); `node` notes
/// `sent` when it started.
pub fn spawn_bulk_send(node: &mut ErlNode, peer: &str, bytes: usize) {
    let reply = node.eval(&format!(
        "spawn(fun() -> T0 = os:system_time(millisecond), \
         {{epmdpxy_rec, '{peer}'}} ! {{bulk, node(), binary:copy(<<7>>, {bytes})}}, \
         epmdpxy_rec ! {{note, sent, '{peer}', {bytes}, T0}} end), ok"
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
