//! The `help` table: one line per command, shown by `help` on the
//! control port and compared by a test with `--help`, the docs and
//! README, so that they cannot drift apart.

use super::reply::Reply;
use crate::base::words::count;

/// One line per command, for `help` (and the docs, which a test compares).
pub const HELP: &[(&str, &str)] = &[
    (
        "cut A,B | C,D [| E...]",
        "cut every link between nodes of different islands, both ways",
    ),
    (
        "cut A -> B",
        "cut one way: bytes from A to B are held, B to A still flow",
    ),
    ("fix A,B | C,D [| E...]", "undo that cut (also: fix A -> B)"),
    (
        "isolate N[,M...]",
        "cut N from every other node, including nodes that register later",
    ),
    ("rejoin N[,M...]", "undo isolate"),
    (
        "delay A | B 200ms [jitter 50ms]",
        "deliver each chunk between the islands that much later, in order",
    ),
    (
        "throttle A | B 64kbps",
        "cap each link between the islands, each way (bps, kbps, mbps, gbps, B/s, KiB/s, MiB/s)",
    ),
    (
        "reset A | B",
        "close every live link between the islands now; new links are allowed",
    ),
    (
        "clear A | B",
        "remove delay and throttle between the islands",
    ),
    ("heal", "remove every fault"),
    (
        "watch",
        "stream events (nodes, links, faults), one line each, until quit",
    ),
    (
        "watch matrix",
        "show the matrix, then again after every fault change and node up or down, until quit",
    ),
    ("sleep 2s", "wait before answering (for scripts; ms, s, m)"),
    (
        "split halves",
        "cut the registered nodes (sorted by name) into two halves, smaller first",
    ),
    (
        "split random-halves",
        "cut random halves (random choices draw from the seed)",
    ),
    ("split one", "cut one random node from the rest"),
    ("split majority", "cut a random majority from the rest"),
    (
        "split sizes 2,2,1",
        "cut random islands of those sizes (they must add up to the node count)",
    ),
    (
        "bridge",
        "cut random halves, but one node keeps its links to both",
    ),
    (
        "ring",
        "cut so every node sees a majority and no two see the same one (one cut per line, then END)",
    ),
    (
        "seed [N]",
        "set the seed of the random shapes (no N: show it; start-up prints the first)",
    ),
    (
        "chaos start [OPTIONS]",
        "repeat: random shape or fault, hold, heal, wait; OPTIONS: seed N, every 5s, for 2s, shapes halves,random-halves,one,majority,bridge,ring, faults delay,throttle,reset,isolate",
    ),
    ("chaos stop", "stop the chaos run and heal"),
    ("chaos", "show the chaos run, if any"),
    (
        "exempt N[,M...]",
        "never cut, isolate, delay or reset N (removes the faults that name it)",
    ),
    ("unexempt N[,M...]", "undo exempt"),
    (
        "status",
        "every fault in force, in the syntax that creates it (header: seed, exempt nodes, chaos)",
    ),
    (
        "nodes",
        "registered nodes: name, real port, type, versions, creation",
    ),
    ("links", "live links: id, from, to, state, bytes each way"),
    (
        "matrix",
        "who reaches whom now: rows send, columns receive, one mark per pair (legend under it)",
    ),
    ("help", "this list"),
    ("quit", "close this session"),
];

/// The `help` answer: `OK N commands`, then the table, usages aligned.
pub fn reply() -> Reply {
    let width = HELP.iter().map(|(usage, _)| usage.len()).max().unwrap_or(0);
    let lines = HELP
        .iter()
        .map(|(usage, what)| format!("{usage:width$}  {what}"))
        .collect();
    Reply::ok_with(count(HELP.len(), "command"), lines)
}
