//! How the fault tests see what happened: inside each node, the recorder
//! of `common::recorder` (nodeups, nodedowns with reasons, pings, each
//! stamped with the wall clock); on the proxy's side, the per-link byte
//! counters of `links`.

use std::time::Duration;

use crate::common::Proxy;

/// How long a fault may take to show in the nodes' views (a few ticks).
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);

pub use crate::common::recorder::{
    first_event, install as install_recorder, now_ms, ping_result, recorded, spawn_ping,
};

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
