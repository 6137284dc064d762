//! The reachability matrix (`matrix` on the control port): who can send
//! bytes to whom under the faults in force, one character per ordered
//! pair of nodes. Rows send, columns receive: the cell in row `a`, column
//! `b` is about bytes from `a` to `b`. Pure: [`mark`] asks a
//! [`PartitionSet`] about one pair, as a relay would ask it about a link
//! between them; [`draw`] lays the marks out as text lines. The control
//! room supplies the registered nodes (with the full names the proxy has
//! learnt) and the live links.
//!
//! ```text
//! OK 5 nodes, 4 live links (rows send, columns receive)
//!    n1 n2 n3 n4 n5
//! n1 \  .  X  X  X
//! n2 .  \  X  X  X
//! n3 X  X  \  .  .
//! n4 X  X  .  \  .
//! n5 X  X  .  .  \
//! legend: . reachable  X cut  > one way  ~ slowed  r reset  \ self  e exempt
//! links: n1-n2 1, n3-n4 1, n3-n5 1, n4-n5 1
//! END
//! ```
//!
//! Up to [`MAX_NAMED`] nodes are labelled with their names when the
//! matrix fits [`WIDTH`] columns; otherwise they are numbered and a key
//! (`1 = n1`) follows the legend. A `reset` stores no fault, but marks the
//! live links it concerns until each end sends: a pair with such a link
//! shows `r`.

use std::collections::BTreeMap;

use super::names::{Host, NodeName};
use super::set::PartitionSet;
use crate::base::words::count;

/// Most nodes labelled with their names; more are numbered.
pub const MAX_NAMED: usize = 12;

/// The widest a named matrix may be, in characters.
pub const WIDTH: usize = 80;

/// What one cell says about the bytes from its row's node to its
/// column's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Nothing holds or slows them.
    Reachable,
    /// Held, and so are the bytes the other way (a cut, an isolated end).
    Cut,
    /// Held this way only (`cut a -> b`); the other way flows.
    OneWay,
    /// Delayed or throttled this way, not held.
    Shaped,
    /// A node and itself.
    Itself,
    /// One end is exempt: never held, delayed or throttled.
    Exempt,
    /// A live link between them waits to be reset (`reset`).
    ResetPending,
}

impl Mark {
    /// Every mark, in the legend's order.
    pub const ALL: [Mark; 7] = [
        Mark::Reachable,
        Mark::Cut,
        Mark::OneWay,
        Mark::Shaped,
        Mark::ResetPending,
        Mark::Itself,
        Mark::Exempt,
    ];

    /// Its character in the matrix.
    pub fn symbol(self) -> char {
        match self {
            Mark::Reachable => '.',
            Mark::Cut => 'X',
            Mark::OneWay => '>',
            Mark::Shaped => '~',
            Mark::Itself => '\\',
            Mark::Exempt => 'e',
            Mark::ResetPending => 'r',
        }
    }

    /// The mark a character stands for.
    pub fn from_symbol(symbol: char) -> Option<Mark> {
        Mark::ALL.into_iter().find(|mark| mark.symbol() == symbol)
    }

    fn meaning(self) -> &'static str {
        match self {
            Mark::Reachable => "reachable",
            Mark::Cut => "cut",
            Mark::OneWay => "one way",
            Mark::Shaped => "slowed",
            Mark::Itself => "self",
            Mark::Exempt => "exempt",
            Mark::ResetPending => "reset",
        }
    }
}

/// The legend line printed under the matrix.
pub fn legend() -> String {
    let entries: Vec<String> = Mark::ALL
        .iter()
        .map(|mark| format!("{} {}", mark.symbol(), mark.meaning()))
        .collect();
    format!("legend: {}", entries.join("  "))
}

/// The mark of bytes from `from` to `to` under `set` (two different
/// nodes): what [`PartitionSet::holds`] and [`PartitionSet::shaping`]
/// answer for a link between them.
pub fn mark(set: &PartitionSet, from: &NodeName, to: &NodeName) -> Mark {
    if set.is_exempt(from) || set.is_exempt(to) {
        return Mark::Exempt;
    }
    let there = set.holds(Some(from), Some(to));
    let back = set.holds(Some(to), Some(from));
    match (there, back) {
        (true, true) => Mark::Cut,
        (true, false) => Mark::OneWay,
        (false, _) if !set.shaping(Some(from), Some(to)).is_none() => Mark::Shaped,
        (false, _) => Mark::Reachable,
    }
}

/// A node of the matrix: its label (the name it registered with) and the
/// name faults match (its full name once the proxy has learnt it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub label: String,
    pub name: NodeName,
}

impl Node {
    /// The node registered as `label`, as faults see it (`name`: its full
    /// name once learnt, else on this machine's names).
    pub fn registered(label: &str, name: NodeName) -> Node {
        Node {
            label: label.to_owned(),
            name,
        }
    }
}

/// Live links per pair of matrix nodes (by their positions), either way
/// round, and how many have an end that is not in the matrix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkCounts {
    pairs: BTreeMap<(usize, usize), usize>,
    elsewhere: usize,
}

impl LinkCounts {
    /// Counts links given as (initiator, target): the target is a node
    /// registered here (matched by its registered name), the initiator a
    /// node by full name (`None`: its handshake could not be read), matched
    /// to the node of that name on its host.
    pub fn count<'a>(
        nodes: &[Node],
        links: impl IntoIterator<Item = (Option<&'a NodeName>, &'a NodeName)>,
    ) -> LinkCounts {
        let target_at = |end: &NodeName| nodes.iter().position(|node| node.label == end.alive);
        // the same alive name, and not two different hosts
        let initiator_at = |end: &NodeName| {
            nodes.iter().position(|node| {
                let other_host = match (&node.name.host, &end.host) {
                    (Host::Named(a), Host::Named(b)) => a != b,
                    (here @ Host::OneOf(_), Host::Named(b)) => !here.may_be(b),
                    (Host::Named(a), here @ Host::OneOf(_)) => !here.may_be(a),
                    _ => false,
                };
                node.name.alive == end.alive && !other_host
            })
        };
        let mut counts = LinkCounts::default();
        for (initiator, target) in links {
            match (initiator.and_then(initiator_at), target_at(target)) {
                (Some(a), Some(b)) if a != b => {
                    *counts.pairs.entry((a.min(b), a.max(b))).or_default() += 1;
                }
                _ => counts.elsewhere += 1,
            }
        }
        counts
    }

    /// Every link counted.
    pub fn total(&self) -> usize {
        self.pairs.values().sum::<usize>() + self.elsewhere
    }
}

/// A drawn matrix: the `OK` line's text and the lines under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drawing {
    pub head: String,
    pub lines: Vec<String>,
}

/// Draws `nodes` as rows (senders) and columns (receivers), asking `cell`
/// for each pair of different nodes; then the legend, the key when the
/// nodes are numbered, and the live links per pair.
pub fn draw(nodes: &[Node], cell: impl Fn(&Node, &Node) -> Mark, links: &LinkCounts) -> Drawing {
    let (labels, numbered) = labels(nodes);
    let width = labels.iter().map(|label| text_width(label)).max();
    let mut lines = Vec::new();
    if let Some(width) = width {
        let mut header = " ".repeat(width);
        for label in &labels {
            header.push_str(&format!(" {label:width$}"));
        }
        lines.push(header.trim_end().to_owned());
        for (row, (from, row_label)) in nodes.iter().zip(&labels).enumerate() {
            let mut line = format!("{row_label:width$}");
            for (column, to) in nodes.iter().enumerate() {
                let mark = if row == column {
                    Mark::Itself
                } else {
                    cell(from, to)
                };
                // under its column label's first character
                line.push_str(&format!(" {:width$}", mark.symbol()));
            }
            lines.push(line.trim_end().to_owned());
        }
        lines.push(legend());
        if numbered {
            for (label, node) in labels.iter().zip(nodes) {
                lines.push(format!("{label:>width$} = {}", printable(&node.label)));
            }
        }
    }
    lines.extend(link_lines(&labels, links));
    let head = format!(
        "{}, {} (rows send, columns receive)",
        count(nodes.len(), "node"),
        count(links.total(), "live link")
    );
    Drawing { head, lines }
}

/// A registered name as the matrix prints it: EPMD accepts any
/// character but NUL, and a space or a line break would break the rows,
/// columns and lines of the answer, so those (and other control
/// characters) are shown as `?`.
fn printable(name: &str) -> String {
    let shown = |c: char| match c.is_whitespace() || c.is_control() {
        true => '?',
        false => c,
    };
    name.chars().map(shown).collect()
}

/// How many columns `text` takes (one per character).
fn text_width(text: &str) -> usize {
    text.chars().count()
}

/// The labels, and whether they are numbers: the names, or `1` to `n`
/// when there are more than [`MAX_NAMED`] nodes or the names would make
/// the matrix wider than [`WIDTH`]. Every column is as wide as the
/// widest label, and so is the row labels' column.
fn labels(nodes: &[Node]) -> (Vec<String>, bool) {
    let names: Vec<String> = nodes.iter().map(|node| printable(&node.label)).collect();
    let widest = names.iter().map(|name| text_width(name)).max();
    let named_width = (nodes.len() + 1) * widest.unwrap_or(0) + nodes.len();
    if nodes.len() <= MAX_NAMED && named_width <= WIDTH {
        (names, false)
    } else {
        ((1..=nodes.len()).map(|i| i.to_string()).collect(), true)
    }
}

/// `links: a-b 1, a-c 2` (the pairs with live links, in matrix order),
/// wrapped at [`WIDTH`]; `links: none` when there are none.
fn link_lines(labels: &[String], links: &LinkCounts) -> Vec<String> {
    const PREFIX: &str = "links: ";
    let mut items: Vec<String> = links
        .pairs
        .iter()
        .filter_map(|(&(a, b), count)| {
            let (a, b) = (labels.get(a)?, labels.get(b)?);
            Some(format!("{a}-{b} {count}"))
        })
        .collect();
    if links.elsewhere > 0 {
        let elsewhere = links.elsewhere;
        items.push(format!("{elsewhere} with an end not in the matrix"));
    }
    if items.is_empty() {
        items.push("none".to_owned());
    }
    let last = items.len().saturating_sub(1);
    let mut lines = Vec::new();
    let mut line = PREFIX.to_owned();
    for (i, item) in items.into_iter().enumerate() {
        let piece = if i < last { format!("{item},") } else { item };
        if text_width(&line) > PREFIX.len() {
            if text_width(&line) + 1 + text_width(&piece) > WIDTH {
                lines.push(std::mem::replace(&mut line, " ".repeat(PREFIX.len())));
            } else {
                line.push(' ');
            }
        }
        line.push_str(&piece);
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::super::chaos_plan::{ChaosConfig, Planner, CHAOS_FAULTS};
    use super::super::names::KnownNodes;
    use super::super::shapes::{layout, reachable, Shape};
    use super::super::testing::{islands, n, p};
    use super::super::{Change, Islands, Pattern, Target};
    use super::*;
    use crate::base::rng::Rng;
    use std::time::Duration;

    fn nodes(labels: &[impl AsRef<str>]) -> Vec<Node> {
        let node = |label: &_| {
            Node::registered(AsRef::<str>::as_ref(label), n(AsRef::<str>::as_ref(label)))
        };
        labels.iter().map(node).collect()
    }

    /// `n1` to `n{count}`.
    fn names(count: usize) -> Vec<String> {
        (1..=count).map(|i| format!("n{i}")).collect()
    }

    fn drawn(set: &PartitionSet, nodes: &[Node], links: &LinkCounts) -> Drawing {
        draw(nodes, |a, b| mark(set, &a.name, &b.name), links)
    }

    fn apply(set: &mut PartitionSet, line: &str) {
        let change = match line.split_once(' ') {
            Some(("cut", rest)) if rest.contains("->") => {
                let (from, to) = rest.split_once("->").expect("->");
                Change::Cut(Target::OneWay {
                    from: vec![p(from.trim())],
                    to: vec![p(to.trim())],
                })
            }
            Some(("cut", rest)) => Change::Cut(Target::Islands(spec(rest))),
            _ => panic!("{line}"),
        };
        set.apply(&change, &KnownNodes::default()).expect("applies");
    }

    /// `a,b | c` as islands.
    fn spec(text: &str) -> Islands {
        text.split('|')
            .map(|island| island.split(',').map(|name| p(name.trim())).collect())
            .collect()
    }

    /// Reads a drawing back: the mark of every (row, column) pair, by
    /// node label (numbers are looked up in the key).
    fn read(drawing: &Drawing) -> BTreeMap<(String, String), Mark> {
        let mut lines = drawing.lines.iter();
        let header: Vec<char> = lines.next().expect("a header").chars().collect();
        // a column starts where a label starts
        let starts: Vec<usize> = (1..header.len())
            .filter(|&at| header[at - 1] == ' ' && header[at] != ' ')
            .collect();
        let label_at =
            |at: usize| -> String { header[at..].iter().take_while(|c| **c != ' ').collect() };
        let rows: Vec<&String> = lines
            .take_while(|line| !line.starts_with("legend: "))
            .collect();
        let key: BTreeMap<String, String> = drawing
            .lines
            .iter()
            .filter_map(|line| line.split_once(" = "))
            .map(|(number, name)| (number.trim().to_owned(), name.to_owned()))
            .collect();
        let name = |label: String| key.get(&label).cloned().unwrap_or(label);
        let mut cells = BTreeMap::new();
        for row in rows {
            let chars: Vec<char> = row.chars().collect();
            let row_label: String = row.split(' ').next().expect("label").to_owned();
            for &at in &starts {
                let symbol = chars.get(at).copied().unwrap_or(' ');
                let mark = Mark::from_symbol(symbol).unwrap_or_else(|| panic!("{row:?} at {at}"));
                cells.insert((name(row_label.clone()), name(label_at(at))), mark);
            }
        }
        cells
    }

    #[test]
    fn five_nodes_in_two_islands_as_the_docs_show_them() {
        let nodes = nodes(&["n1", "n2", "n3", "n4", "n5"]);
        let mut set = PartitionSet::new();
        apply(&mut set, "cut n1,n2 | n3,n4,n5");
        let name = |text: &str| n(&format!("{text}@h"));
        let ends =
            [("n2", "n1"), ("n3", "n4"), ("n5", "n3"), ("n4", "n5")].map(|(a, b)| (name(a), n(b)));
        let links = LinkCounts::count(&nodes, ends.iter().map(|(a, b)| (Some(a), b)));
        let drawing = drawn(&set, &nodes, &links);
        assert_eq!(
            drawing.head,
            "5 nodes, 4 live links (rows send, columns receive)"
        );
        let want = r"   n1 n2 n3 n4 n5
n1 \  .  X  X  X
n2 .  \  X  X  X
n3 X  X  \  .  .
n4 X  X  .  \  .
n5 X  X  .  .  \
legend: . reachable  X cut  > one way  ~ slowed  r reset  \ self  e exempt
links: n1-n2 1, n3-n4 1, n3-n5 1, n4-n5 1";
        assert_eq!(drawing.lines.join("\n"), want);
        // the module's doc comment shows this very answer
        let doc = include_str!("matrix.rs");
        let doc: Vec<&str> = doc
            .lines()
            .filter_map(|line| line.strip_prefix("//! "))
            .skip_while(|line| !line.starts_with("OK 5 nodes"))
            .take(9)
            .collect();
        assert_eq!(doc.first().copied(), Some(&*format!("OK {}", drawing.head)));
        assert_eq!(
            doc.get(1..).map(|lines| lines.join("\n")),
            Some(want.to_owned())
        );
    }

    #[test]
    fn one_way_cut_marks_one_cell_and_heal_clears_it() {
        let nodes = nodes(&["a", "b", "c"]);
        let mut set = PartitionSet::new();
        apply(&mut set, "cut a -> b");
        let cells = read(&drawn(&set, &nodes, &LinkCounts::default()));
        for ((from, to), got) in &cells {
            let want = match (from.as_str(), to.as_str()) {
                (x, y) if x == y => Mark::Itself,
                ("a", "b") => Mark::OneWay,
                _ => Mark::Reachable,
            };
            assert_eq!(*got, want, "{from} -> {to}");
        }
        assert_eq!(cells.len(), 9);
        set.heal();
        let cells = read(&drawn(&set, &nodes, &LinkCounts::default()));
        assert!(cells.iter().all(|((a, b), mark)| *mark
            == if a == b {
                Mark::Itself
            } else {
                Mark::Reachable
            }));
    }

    #[test]
    fn isolation_exemption_and_shaping() {
        let nodes = nodes(&["a", "b", "c", "iso", "runner"]);
        let mut set = PartitionSet::new();
        set.exempt(&p("runner"));
        set.isolate(&p("iso"));
        // shaped one way round, held the other: the hold wins there
        set.set_delay(
            &islands(&[&["a"], &["b"]]),
            super::super::Delay {
                base: Duration::from_millis(100),
                jitter: Duration::ZERO,
            },
        );
        apply(&mut set, "cut b -> a");
        set.set_rate(
            &islands(&[&["a"], &["c"]]),
            super::super::Rate {
                bits_per_second: 8000,
            },
        );
        let cells = read(&drawn(&set, &nodes, &LinkCounts::default()));
        let at = |a: &str, b: &str| cells[&(a.to_owned(), b.to_owned())];
        assert_eq!(at("a", "b"), Mark::Shaped);
        assert_eq!(at("b", "a"), Mark::OneWay);
        assert_eq!(at("a", "c"), Mark::Shaped);
        assert_eq!(at("c", "a"), Mark::Shaped);
        assert_eq!(at("b", "c"), Mark::Reachable);
        for other in ["a", "b", "c"] {
            assert_eq!(at("iso", other), Mark::Cut);
            assert_eq!(at(other, "iso"), Mark::Cut);
            assert_eq!(at("runner", other), Mark::Exempt);
            assert_eq!(at(other, "runner"), Mark::Exempt);
        }
        assert_eq!(
            at("iso", "runner"),
            Mark::Exempt,
            "exempt wins over isolate"
        );
        assert_eq!(at("runner", "runner"), Mark::Itself);
    }

    /// Host patterns match a node by the full name the proxy learnt; a
    /// node whose host is not known is not let off by a host part.
    #[test]
    fn host_patterns_use_the_learned_full_names() {
        let nodes = vec![
            Node::registered("n1", n("n1@h1")),
            Node::registered("n2", n("n2@h2")),
            Node::registered("n3", n("n3")),
        ];
        let mut set = PartitionSet::new();
        apply(&mut set, "cut *@h1 -> *@h2");
        apply(&mut set, "cut n1@elsewhere | n2");
        let cells = read(&drawn(&set, &nodes, &LinkCounts::default()));
        let at = |a: &str, b: &str| cells[&(a.to_owned(), b.to_owned())];
        assert_eq!(
            at("n1", "n2"),
            Mark::OneWay,
            "h1 to h2, and n1 is not n1@elsewhere"
        );
        assert_eq!(at("n2", "n1"), Mark::Reachable);
        assert_eq!(at("n1", "n3"), Mark::OneWay, "n3 may be on h2");
        assert_eq!(at("n3", "n2"), Mark::OneWay, "n3 may be on h1");
        assert_eq!(at("n3", "n1"), Mark::Reachable, "n1 is on h1, not h2");
    }

    #[test]
    fn more_than_twelve_nodes_or_long_names_are_numbered() {
        let set = PartitionSet::new();
        let drawing = drawn(&set, &nodes(&names(12)), &LinkCounts::default());
        assert!(
            drawing.lines[0].starts_with("    n1  n2  n3"),
            "{:?}",
            drawing.lines
        );
        assert!(!drawing.lines.iter().any(|line| line.contains(" = ")));
        for count in [13, 30] {
            let drawing = drawn(&set, &nodes(&names(count)), &LinkCounts::default());
            assert!(
                drawing.lines[0].starts_with("   1  2  3"),
                "{:?}",
                drawing.lines
            );
            assert!(drawing.lines.contains(&format!("{count} = n{count}")));
            assert!(drawing.lines.contains(&format!("{:>2} = n1", 1)));
            assert_eq!(read(&drawing).len(), count * count);
        }
        // Spaces and line breaks in a name cannot break the answer.
        let odd = nodes(&["a b", "x\nEND", "tab\t"]);
        let drawing = drawn(&set, &odd, &LinkCounts::default());
        assert_eq!(drawing.lines[0], "      a?b   x?END tab?");
        assert_eq!(read(&drawing).len(), 9);
        assert!(drawing
            .lines
            .iter()
            .all(|line| !line.contains(['\n', '\t'])));
        // A node may be called "1": names are never taken for numbers.
        let odd = nodes(&["1", "2"]);
        let cells = read(&drawn(&set, &odd, &LinkCounts::default()));
        assert_eq!(cells.len(), 4);
        // Up to twelve nodes fit 80 columns, whatever their names.
        for len in [1, 5, 8, 20, 255] {
            for count in 1..=MAX_NAMED {
                let labels: Vec<String> = (0..count).map(|i| format!("{i:x<len$}")).collect();
                let drawing = drawn(&set, &nodes(&labels), &LinkCounts::default());
                let grid = drawing
                    .lines
                    .iter()
                    .take_while(|line| !line.contains(" = ") && !line.starts_with("links:"));
                for line in grid {
                    assert!(line.len() <= WIDTH, "{count} nodes, {len}: {line:?}");
                }
                assert_eq!(read(&drawing).len(), count * count, "{count} x {len}");
            }
        }
        assert!(legend().len() <= WIDTH);
    }

    #[test]
    fn links_are_counted_per_pair_and_wrapped() {
        let nodes = vec![
            Node::registered("a", n("a@h")),
            Node::registered("b", n("b")),
            Node::registered("c", n("c@h")),
        ];
        let (a, b, c, a_elsewhere, gone) = (n("a@h"), n("b@h"), n("c"), n("a@g"), n("gone"));
        let links = [
            (Some(&a), &b),
            (Some(&b), &n("a")),
            (Some(&c), &n("b")),
            (None, &c),
            (Some(&a_elsewhere), &b),
            (Some(&a), &gone),
        ];
        let counts = LinkCounts::count(&nodes, links);
        assert_eq!(counts.total(), 6);
        let drawing = drawn(&PartitionSet::new(), &nodes, &counts);
        assert_eq!(
            drawing.lines.last().map(String::as_str),
            Some("links: a-b 2, b-c 1, 3 with an end not in the matrix")
        );
        assert!(drawing.head.starts_with("3 nodes, 6 live links"));
        // every pair of 12 long-named nodes linked: wrapped, all there
        let names: Vec<String> = (0..12).map(|i| format!("node{i}")).collect();
        let twelve: Vec<Node> = names.iter().map(|l| Node::registered(l, n(l))).collect();
        let ends: Vec<(NodeName, NodeName)> = names
            .iter()
            .enumerate()
            .flat_map(|(i, a)| names.iter().skip(i + 1).map(move |b| (n(a), n(b))))
            .collect();
        let counts = LinkCounts::count(&twelve, ends.iter().map(|(a, b)| (Some(a), b)));
        let drawing = drawn(&PartitionSet::new(), &twelve, &counts);
        let link_lines: Vec<&String> = drawing
            .lines
            .iter()
            .skip_while(|line| !line.starts_with("links: "))
            .collect();
        assert!(link_lines.len() > 1);
        assert!(
            link_lines.iter().all(|line| line.len() <= WIDTH),
            "{link_lines:#?}"
        );
        let items = link_lines
            .iter()
            .map(|line| line.trim_start_matches("links: ").trim());
        let items: Vec<&str> = items.flat_map(|line| line.split(", ")).collect();
        assert_eq!(items.len(), 66);
        assert_eq!(items.first().copied(), Some("1-2 1"));
        assert_eq!(items.last().copied(), Some("11-12 1"));
        // no nodes: no grid, and no links
        let empty = drawn(&PartitionSet::new(), &[], &LinkCounts::default());
        assert_eq!(empty.lines, vec!["links: none"]);
        assert!(empty.head.starts_with("0 nodes, 0 live links"));
    }

    /// What a matrix drawn from `set` says, against `want(from, to)` for
    /// every pair of different nodes.
    fn check(set: &PartitionSet, names: &[String], want: impl Fn(&str, &str) -> Mark, what: &str) {
        let cells = read(&drawn(set, &nodes(names), &LinkCounts::default()));
        assert_eq!(cells.len(), names.len() * names.len(), "{what}");
        for ((from, to), got) in cells {
            let want = if from == to {
                Mark::Itself
            } else {
                want(&from, &to)
            };
            assert_eq!(got, want, "{what}: {from} -> {to}");
        }
    }

    /// The islands' cross pairs are `across`, the rest reachable.
    fn by_islands(islands: &Islands, across: Mark) -> impl Fn(&str, &str) -> Mark + '_ {
        let island = move |name: &str| {
            islands
                .iter()
                .position(|island| island.contains(&Pattern::Alive(name.to_owned())))
        };
        move |a, b| match (island(a), island(b)) {
            (Some(x), Some(y)) if x != y => across,
            _ => Mark::Reachable,
        }
    }

    #[test]
    fn every_shape_draws_what_reachable_says() {
        for count in 3..=9 {
            let names = names(count);
            let shapes = [
                Shape::Halves,
                Shape::RandomHalves,
                Shape::One,
                Shape::Majority,
                Shape::Bridge,
                Shape::Ring,
                Shape::Sizes(vec![1, count - 1]),
                Shape::Sizes(vec![1, 1, count - 2]),
            ];
            for seed in 0..12 {
                let mut rng = Rng::new(seed);
                for shape in &shapes {
                    let layout = layout(shape, &names, &mut rng).expect("fits");
                    let sees = reachable(&names, &layout.cuts);
                    let mut set = PartitionSet::new();
                    set.apply(&Change::Layout(layout), &KnownNodes::default())
                        .expect("applies");
                    let want = |a: &str, b: &str| {
                        if sees[a].contains(b) {
                            Mark::Reachable
                        } else {
                            Mark::Cut
                        }
                    };
                    check(
                        &set,
                        &names,
                        want,
                        &format!("{shape} on {count}, seed {seed}"),
                    );
                }
            }
        }
    }

    #[test]
    fn every_chaos_step_draws_what_it_applies() {
        let config = ChaosConfig {
            faults: CHAOS_FAULTS.iter().map(|(_, fault)| *fault).collect(),
            ..ChaosConfig::default()
        };
        let mut planner = Planner::new(7, &config);
        for step in 0..400 {
            let names = names(3 + step % 7);
            let change = planner.next(&names).plan.expect("fits");
            let mut set = PartitionSet::new();
            set.apply(&change, &KnownNodes::default()).expect("applies");
            let what = format!("step {step}: {change}");
            match &change {
                Change::Layout(layout) => {
                    let sees = reachable(&names, &layout.cuts);
                    let want = |a: &str, b: &str| match sees[a].contains(b) {
                        true => Mark::Reachable,
                        false => Mark::Cut,
                    };
                    check(&set, &names, want, &what);
                }
                Change::Isolate(isolated) => {
                    let alone = |name: &str| isolated.contains(&Pattern::Alive(name.to_owned()));
                    let want = |a: &str, b: &str| match alone(a) || alone(b) {
                        true => Mark::Cut,
                        false => Mark::Reachable,
                    };
                    check(&set, &names, want, &what);
                }
                Change::Delay(islands, _) | Change::Throttle(islands, _) => {
                    check(&set, &names, by_islands(islands, Mark::Shaped), &what);
                }
                Change::Reset(_) => check(&set, &names, |_, _| Mark::Reachable, &what),
                other => panic!("chaos planned {other}"),
            }
        }
    }
}
