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
        "reset every live link between the islands, each end when it next sends; new links are allowed",
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
        "repeat: random shape or fault, hold, heal, wait; OPTIONS: seed N, every 5s, for 2s, shapes (of halves, random-halves, one, majority, bridge, ring), faults (of delay, throttle, reset, isolate)",
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

/// The widest line of the `help` answer: a description that would go
/// past it continues on the next lines, indented to its column.
pub const WIDTH: usize = 100;

/// The `help` answer: `OK N commands`, then the table, usages aligned,
/// each description wrapped at [`WIDTH`].
pub fn reply() -> Reply {
    let width = HELP.iter().map(|(usage, _)| usage.len()).max().unwrap_or(0);
    let indent = " ".repeat(width + 2);
    let mut lines = Vec::new();
    for (usage, what) in HELP {
        let mut pieces = wrap(what, WIDTH.saturating_sub(width + 2)).into_iter();
        let first = pieces.next().unwrap_or_default();
        lines.push(format!("{usage:width$}  {first}"));
        lines.extend(pieces.map(|piece| format!("{indent}{piece}")));
    }
    Reply::ok_with(count(HELP.len(), "command"), lines)
}

/// `text` in lines of at most `width` characters, broken at spaces (a
/// word longer than `width` gets a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_breaks_at_spaces_and_keeps_every_word() {
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert_eq!(wrap("short", 80), ["short"]);
        assert_eq!(
            wrap("averyveryverylongword x", 5),
            ["averyveryverylongword", "x"]
        );
    }

    #[test]
    fn no_help_line_is_wider_than_the_width() {
        let lines = reply().lines(true);
        for line in &lines {
            assert!(line.chars().count() <= WIDTH, "{line}");
        }
        assert!(lines.len() > HELP.len() + 2, "something was wrapped");
    }
}
