//! The partition model: which node may send bytes to which, and how fast.
//!
//! A cut is stored as directed pairs of name patterns: `(a, b)` means bytes
//! from any node matching `a` to any node matching `b` are held. A symmetric
//! cut `a | b` is the two pairs `(a, b)` and `(b, a)`. An isolated pattern
//! holds every byte to or from its nodes. Delays and bandwidth caps are kept
//! per directed pair the same way. Patterns are kept as the user wrote them,
//! so a fault may name nodes that have not registered yet and applies as
//! soon as they appear. Everything here is pure and shared between threads
//! as `Arc<RwLock<PartitionSet>>`.
//!
//! Exempt nodes sit outside the model: no fault ever applies to a link that
//! has an exempt node at either end (`holds` and `shaping` say so), whatever
//! the faults name. [`shapes`] computes the partition shapes.

pub mod shapes;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

/// A node as the proxy knows it: its alive name (what it registered with
/// EPMD) and, when known, its host (from the distribution handshake).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeName {
    pub alive: String,
    pub host: Option<String>,
}

impl NodeName {
    /// `n1@host` → alive `n1`, host `host`; `n1` → no host.
    pub fn parse(text: &str) -> NodeName {
        match text.split_once('@') {
            Some((alive, host)) => NodeName {
                alive: alive.to_owned(),
                host: Some(host.to_owned()),
            },
            None => NodeName {
                alive: text.to_owned(),
                host: None,
            },
        }
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(host) => write!(f, "{}@{}", self.alive, host),
            None => f.write_str(&self.alive),
        }
    }
}

/// How a fault names nodes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pattern {
    /// `n1`: the node whose alive name is `n1`, on any host.
    Alive(String),
    /// `n1@host`: that node; also matches an `n1` whose host is not known.
    Full { alive: String, host: String },
    /// `*@host`: every node of that host.
    Host(String),
}

/// Why a name cannot be used in a fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPattern(pub String);

impl fmt::Display for BadPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Characters allowed in node names and host names.
fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '[' | ']')
}

impl Pattern {
    /// Parses `n1`, `n1@host` or `*@host`.
    pub fn parse(text: &str) -> Result<Pattern, BadPattern> {
        let valid = |part: &str| !part.is_empty() && part.chars().all(is_name_char);
        match text.split_once('@') {
            None if valid(text) => Ok(Pattern::Alive(text.to_owned())),
            Some(("*", host)) if valid(host) => Ok(Pattern::Host(host.to_owned())),
            Some((alive, host)) if valid(alive) && valid(host) => Ok(Pattern::Full {
                alive: alive.to_owned(),
                host: host.to_owned(),
            }),
            _ => Err(BadPattern(format!("bad node name '{text}'"))),
        }
    }

    /// True if this pattern names `node`. A node whose host is not known
    /// (`host: None`) might be on any host, so host parts are not held
    /// against it: `n1@h` and `*@h` both match it (the cautious reading for
    /// a cut). To say "on no host a pattern names", give it an empty host.
    pub fn matches(&self, node: &NodeName) -> bool {
        match self {
            Pattern::Alive(alive) => *alive == node.alive,
            Pattern::Full { alive, host } => {
                *alive == node.alive && node.host.as_ref().is_none_or(|h| h == host)
            }
            Pattern::Host(host) => node.host.as_ref().is_none_or(|h| h == host),
        }
    }

    /// True if both patterns surely name a common node: the same alive
    /// name (hosts equal where both give one), or a host pattern and a
    /// full name on that host. `*@h` and a bare `n1` are not known to
    /// overlap (n1's host may be another).
    pub fn overlaps(&self, other: &Pattern) -> bool {
        use Pattern::{Alive, Full, Host};
        match (self, other) {
            (Alive(a), Alive(b)) => a == b,
            (Alive(a), Full { alive, .. }) | (Full { alive, .. }, Alive(a)) => a == alive,
            (
                Full { alive, host },
                Full {
                    alive: other_alive,
                    host: other_host,
                },
            ) => alive == other_alive && host == other_host,
            (Host(a), Host(b)) => a == b,
            (Host(h), Full { host, .. }) | (Full { host, .. }, Host(h)) => h == host,
            (Host(_), Alive(_)) | (Alive(_), Host(_)) => false,
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Alive(alive) => f.write_str(alive),
            Pattern::Full { alive, host } => write!(f, "{alive}@{host}"),
            Pattern::Host(host) => write!(f, "*@{host}"),
        }
    }
}

/// Islands as written in `cut a,b | c`: each inner list is one island.
pub type Islands = Vec<Vec<Pattern>>;

/// Most rules (directed pairs cut, delayed or capped, plus isolated names)
/// in force at once. Every relayed chunk is checked against the rules, so
/// they are bounded: one 4 KiB `cut` line could otherwise name ~360,000
/// pairs.
pub const MAX_RULES: usize = 10_000;

/// How many directed pairs `islands` names, without listing them.
pub fn pair_count(islands: &Islands) -> usize {
    let sizes: Vec<usize> = islands.iter().map(Vec::len).collect();
    let total: usize = sizes.iter().sum();
    sizes.iter().map(|size| size * (total - size)).sum()
}

/// Every directed pair between different islands.
fn pairs_across(islands: &Islands) -> Vec<(Pattern, Pattern)> {
    let mut pairs = Vec::new();
    for (i, from_island) in islands.iter().enumerate() {
        for (j, to_island) in islands.iter().enumerate() {
            if i == j {
                continue;
            }
            for from in from_island {
                for to in to_island {
                    pairs.push((from.clone(), to.clone()));
                }
            }
        }
    }
    pairs
}

/// A delivery delay: each chunk waits `base` ± up to `jitter`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Delay {
    pub base: Duration,
    pub jitter: Duration,
}

/// A bandwidth cap, in bits per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rate {
    pub bits_per_second: u64,
}

impl Rate {
    pub fn bytes_per_second(self) -> f64 {
        self.bits_per_second as f64 / 8.0
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = self.bits_per_second;
        if bits >= 1_000_000 && bits.is_multiple_of(1_000_000) {
            write!(f, "{}mbps", bits / 1_000_000)
        } else if bits >= 1000 && bits.is_multiple_of(1000) {
            write!(f, "{}kbps", bits / 1000)
        } else {
            write!(f, "{bits}bps")
        }
    }
}

/// Formats a duration the way the control language reads it.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms >= 1000 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// How a direction of a link is slowed down (nothing, by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shaping {
    pub delay: Option<Delay>,
    pub rate: Option<Rate>,
}

impl Shaping {
    pub fn is_none(&self) -> bool {
        self.delay.is_none() && self.rate.is_none()
    }

    /// Combines two matching rules: the longer delay, the lower cap.
    fn merge(self, other: Shaping) -> Shaping {
        Shaping {
            delay: self.delay.max(other.delay),
            rate: match (self.rate, other.rate) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

/// All faults in force.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionSet {
    /// Directed pairs whose traffic is held.
    held: BTreeSet<(Pattern, Pattern)>,
    /// Nodes cut from every other node.
    isolated: BTreeSet<Pattern>,
    /// Directed pairs whose traffic is delayed or capped.
    shaping: BTreeMap<(Pattern, Pattern), Shaping>,
    /// Nodes no fault applies to. Not a fault: `heal` keeps them.
    exempt: BTreeSet<Pattern>,
}

impl PartitionSet {
    pub fn new() -> PartitionSet {
        PartitionSet::default()
    }

    /// Cuts every pair across different islands, both ways. Returns how
    /// many directed pairs were newly cut.
    pub fn cut(&mut self, islands: &Islands) -> usize {
        pairs_across(islands)
            .into_iter()
            .filter(|pair| self.held.insert(pair.clone()))
            .count()
    }

    /// Cuts one direction only: bytes from `from` to `to` are held.
    pub fn cut_one_way(&mut self, from: &Pattern, to: &Pattern) -> usize {
        usize::from(self.held.insert((from.clone(), to.clone())))
    }

    /// Removes the cuts `cut(islands)` would add. Returns how many directed
    /// pairs were removed.
    pub fn fix(&mut self, islands: &Islands) -> usize {
        pairs_across(islands)
            .iter()
            .filter(|pair| self.held.remove(pair))
            .count()
    }

    /// Removes a one-way cut.
    pub fn fix_one_way(&mut self, from: &Pattern, to: &Pattern) -> usize {
        usize::from(self.held.remove(&(from.clone(), to.clone())))
    }

    /// Cuts `node` from every other node, including nodes that appear
    /// later. Returns false if it was isolated already.
    pub fn isolate(&mut self, node: &Pattern) -> bool {
        self.isolated.insert(node.clone())
    }

    /// Undoes `isolate`. Returns false if it was not isolated.
    pub fn rejoin(&mut self, node: &Pattern) -> bool {
        self.isolated.remove(node)
    }

    /// Delays every pair across the islands, both ways (replacing an
    /// earlier delay between them; a cap stays).
    pub fn set_delay(&mut self, islands: &Islands, delay: Delay) {
        for pair in pairs_across(islands) {
            self.shaping.entry(pair).or_default().delay = Some(delay);
        }
    }

    /// Caps every pair across the islands, both ways.
    pub fn set_rate(&mut self, islands: &Islands, rate: Rate) {
        for pair in pairs_across(islands) {
            self.shaping.entry(pair).or_default().rate = Some(rate);
        }
    }

    /// Removes delays and caps across the islands. Returns how many
    /// directed pairs had one.
    pub fn clear(&mut self, islands: &Islands) -> usize {
        pairs_across(islands)
            .iter()
            .filter(|pair| self.shaping.remove(pair).is_some())
            .count()
    }

    /// Makes `node` exempt and removes the faults that name it (a cut
    /// `a,n | b` loses its pairs with `n`; the rest stays). Returns how many
    /// directed pairs and isolations were removed.
    pub fn exempt(&mut self, node: &Pattern) -> usize {
        self.exempt.insert(node.clone());
        let before = self.held.len() + self.isolated.len() + self.shaping.len();
        let names_it = |p: &Pattern| p.overlaps(node);
        self.held.retain(|(a, b)| !names_it(a) && !names_it(b));
        self.isolated.retain(|p| !names_it(p));
        self.shaping
            .retain(|(a, b), _| !names_it(a) && !names_it(b));
        before - (self.held.len() + self.isolated.len() + self.shaping.len())
    }

    /// Undoes `exempt`. Returns false if it was not exempt.
    pub fn unexempt(&mut self, node: &Pattern) -> bool {
        self.exempt.remove(node)
    }

    /// The exempt patterns, sorted.
    pub fn exempt_patterns(&self) -> impl Iterator<Item = &Pattern> {
        self.exempt.iter()
    }

    /// True if `node` is exempt.
    pub fn is_exempt(&self, node: &NodeName) -> bool {
        self.exempt.iter().any(|pattern| pattern.matches(node))
    }

    /// The exempt pattern that `pattern` names, if any: a fault naming it
    /// is refused rather than stored to no effect.
    pub fn exempt_overlap(&self, pattern: &Pattern) -> Option<&Pattern> {
        self.exempt.iter().find(|exempt| exempt.overlaps(pattern))
    }

    /// True if either end is exempt (an unknown end is not).
    fn touches_exempt(&self, from: Option<&NodeName>, to: Option<&NodeName>) -> bool {
        !self.exempt.is_empty()
            && [from, to]
                .into_iter()
                .flatten()
                .any(|node| self.is_exempt(node))
    }

    /// Removes every fault (exempt nodes stay exempt).
    pub fn heal(&mut self) {
        self.held.clear();
        self.isolated.clear();
        self.shaping.clear();
    }

    /// How many rules are in force (see [`MAX_RULES`]).
    pub fn rule_count(&self) -> usize {
        self.held.len() + self.isolated.len() + self.shaping.len()
    }

    /// True when nothing is in force.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty() && self.isolated.is_empty() && self.shaping.is_empty()
    }

    /// True if bytes from `from` to `to` must be held. `None` is a link end
    /// whose name is not known (the handshake could not be read): it
    /// matches no pair, but a link to or from an isolated node is held
    /// whatever the other end is.
    pub fn holds(&self, from: Option<&NodeName>, to: Option<&NodeName>) -> bool {
        if self.touches_exempt(from, to) {
            return false;
        }
        let named = |pattern: &Pattern, node: Option<&NodeName>| {
            node.is_some_and(|node| pattern.matches(node))
        };
        self.held
            .iter()
            .any(|(a, b)| named(a, from) && named(b, to))
            || self.isolated.iter().any(|p| named(p, from) || named(p, to))
    }

    /// How bytes from `from` to `to` are slowed down.
    pub fn shaping(&self, from: Option<&NodeName>, to: Option<&NodeName>) -> Shaping {
        if self.shaping.is_empty() {
            return Shaping::default();
        }
        let (Some(from), Some(to)) = (from, to) else {
            return Shaping::default();
        };
        if self.touches_exempt(Some(from), Some(to)) {
            return Shaping::default();
        }
        self.shaping
            .iter()
            .filter(|((a, b), _)| a.matches(from) && b.matches(to))
            .fold(Shaping::default(), |acc, (_, shaping)| acc.merge(*shaping))
    }

    /// The faults in force, one per line, in the syntax that creates them:
    /// `cut a | b` for a pair cut both ways, `cut a -> b` for one way,
    /// `isolate n`, `delay a | b 200ms`, `throttle a | b 64kbps`.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (a, b) in &self.held {
            let reverse = (b.clone(), a.clone());
            if self.held.contains(&reverse) {
                if a < b {
                    lines.push(format!("cut {a} | {b}"));
                }
            } else {
                lines.push(format!("cut {a} -> {b}"));
            }
        }
        lines.extend(self.isolated.iter().map(|node| format!("isolate {node}")));
        for ((a, b), shaping) in &self.shaping {
            // Shaping is only ever set both ways; print each pair once.
            if a > b {
                continue;
            }
            if let Some(delay) = shaping.delay {
                let mut line = format!("delay {a} | {b} {}", format_duration(delay.base));
                if !delay.jitter.is_zero() {
                    line.push_str(&format!(" jitter {}", format_duration(delay.jitter)));
                }
                lines.push(line);
            }
            if let Some(rate) = shaping.rate {
                lines.push(format!("throttle {a} | {b} {rate}"));
            }
        }
        lines
    }
}

/// True if a link from `from` to `to` runs between two different islands
/// (either way round): what `reset` closes.
pub fn crosses(islands: &Islands, from: &NodeName, to: &NodeName) -> bool {
    pairs_across(islands)
        .iter()
        .any(|(a, b)| a.matches(from) && b.matches(to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Pattern {
        Pattern::parse(text).expect("valid pattern")
    }

    fn n(text: &str) -> NodeName {
        NodeName::parse(text)
    }

    fn islands(spec: &[&[&str]]) -> Islands {
        spec.iter()
            .map(|island| island.iter().map(|name| p(name)).collect())
            .collect()
    }

    #[test]
    fn patterns_parse_and_match() {
        assert_eq!(p("n1"), Pattern::Alive("n1".into()));
        assert_eq!(
            p("n1@h"),
            Pattern::Full {
                alive: "n1".into(),
                host: "h".into()
            }
        );
        assert_eq!(p("*@10.0.0.1"), Pattern::Host("10.0.0.1".into()));
        for bad in [
            "", "@h", "n1@", "a b", "a|b", "a,b", "*", "*@", "a@b@c", "n1\0",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?}");
        }
        assert!(p("n1").matches(&n("n1@h")));
        assert!(p("n1").matches(&n("n1")));
        assert!(!p("n1").matches(&n("n10@h")));
        assert!(p("n1@h").matches(&n("n1@h")));
        assert!(p("n1@h").matches(&n("n1")));
        assert!(!p("n1@h").matches(&n("n1@other")));
        assert!(p("*@h").matches(&n("x@h")));
        assert!(
            p("*@h").matches(&n("x")),
            "a node on an unknown host may be on h"
        );
        let nowhere = NodeName {
            alive: "x".into(),
            host: Some(String::new()),
        };
        assert!(!p("*@h").matches(&nowhere));
        assert!(!p("x@h").matches(&nowhere));
        assert!(p("x").matches(&nowhere));
    }

    #[test]
    fn cut_holds_every_pair_across_islands() {
        let mut set = PartitionSet::new();
        assert_eq!(set.cut(&islands(&[&["n1", "n2"], &["n3", "n4", "n5"]])), 12);
        assert!(set.holds(Some(&n("n1@h")), Some(&n("n3"))));
        assert!(set.holds(Some(&n("n5@h")), Some(&n("n2"))));
        assert!(!set.holds(Some(&n("n1@h")), Some(&n("n2"))));
        assert!(!set.holds(Some(&n("n3@h")), Some(&n("n4"))));
        assert!(
            !set.holds(None, Some(&n("n3"))),
            "unknown initiators match no pair"
        );
        assert!(!set.holds(Some(&n("n6@h")), Some(&n("n1"))));
        // cutting again adds nothing
        assert_eq!(set.cut(&islands(&[&["n1"], &["n3"]])), 0);
    }

    #[test]
    fn three_islands_and_fix() {
        let mut set = PartitionSet::new();
        let three = islands(&[&["a"], &["b"], &["c"]]);
        assert_eq!(set.cut(&three), 6);
        assert_eq!(set.describe(), vec!["cut a | b", "cut a | c", "cut b | c"]);
        assert_eq!(set.fix(&islands(&[&["a"], &["b"]])), 2);
        assert!(!set.holds(Some(&n("a")), Some(&n("b"))));
        assert!(set.holds(Some(&n("a")), Some(&n("c"))));
        set.heal();
        assert!(set.is_empty());
    }

    #[test]
    fn pair_counts_match_the_pairs() {
        for spec in [
            &[&["a"][..], &["b"]][..],
            &[&["a", "b"], &["c", "d", "e"]],
            &[&["a"], &["b"], &["c", "d"]],
        ] {
            let set = islands(spec);
            assert_eq!(pair_count(&set), pairs_across(&set).len(), "{spec:?}");
        }
    }

    #[test]
    fn one_way_cut() {
        let mut set = PartitionSet::new();
        set.cut_one_way(&p("a"), &p("b"));
        assert!(set.holds(Some(&n("a")), Some(&n("b"))));
        assert!(!set.holds(Some(&n("b")), Some(&n("a"))));
        assert_eq!(set.describe(), vec!["cut a -> b"]);
        assert_eq!(set.fix_one_way(&p("a"), &p("b")), 1);
        assert!(set.is_empty());
    }

    #[test]
    fn isolate_holds_everything_to_and_from_a_node() {
        let mut set = PartitionSet::new();
        assert!(set.isolate(&p("n1")));
        assert!(!set.isolate(&p("n1")));
        assert!(set.holds(Some(&n("n1@h")), Some(&n("n2"))));
        assert!(
            set.holds(Some(&n("n9@h")), Some(&n("n1"))),
            "nodes that appear later too"
        );
        assert!(set.holds(None, Some(&n("n1"))), "unknown initiators too");
        assert!(!set.holds(Some(&n("n2@h")), Some(&n("n3"))));
        assert_eq!(set.describe(), vec!["isolate n1"]);
        assert!(set.rejoin(&p("n1")));
        assert!(set.is_empty());
    }

    #[test]
    fn shaping_rules() {
        let mut set = PartitionSet::new();
        let delay = Delay {
            base: Duration::from_millis(200),
            jitter: Duration::from_millis(50),
        };
        set.set_delay(&islands(&[&["a"], &["b", "c"]]), delay);
        set.set_rate(
            &islands(&[&["a"], &["b"]]),
            Rate {
                bits_per_second: 64_000,
            },
        );
        let ab = set.shaping(Some(&n("a@h")), Some(&n("b")));
        assert_eq!(
            ab,
            Shaping {
                delay: Some(delay),
                rate: Some(Rate {
                    bits_per_second: 64_000
                })
            }
        );
        assert_eq!(
            set.shaping(Some(&n("c@h")), Some(&n("a"))).delay,
            Some(delay)
        );
        assert!(set.shaping(Some(&n("b@h")), Some(&n("c"))).is_none());
        assert!(set.shaping(None, Some(&n("a"))).is_none());
        assert_eq!(
            set.describe(),
            vec![
                "delay a | b 200ms jitter 50ms",
                "throttle a | b 64kbps",
                "delay a | c 200ms jitter 50ms"
            ]
        );
        assert_eq!(set.clear(&islands(&[&["a"], &["b", "c"]])), 4);
        assert!(set.is_empty());
    }

    #[test]
    fn rates_and_durations_print_as_they_parse() {
        assert_eq!(
            Rate {
                bits_per_second: 64_000
            }
            .to_string(),
            "64kbps"
        );
        assert_eq!(
            Rate {
                bits_per_second: 2_000_000
            }
            .to_string(),
            "2mbps"
        );
        assert_eq!(
            Rate {
                bits_per_second: 524_288
            }
            .to_string(),
            "524288bps"
        );
        assert_eq!(format_duration(Duration::from_millis(200)), "200ms");
        assert_eq!(format_duration(Duration::from_secs(2)), "2s");
    }

    #[test]
    fn exempt_nodes_are_never_held_or_shaped() {
        let mut set = PartitionSet::new();
        set.cut(&islands(&[&["a", "b"], &["c"]]));
        set.isolate(&p("d"));
        set.set_delay(
            &islands(&[&["a"], &["c"]]),
            Delay {
                base: Duration::from_millis(100),
                jitter: Duration::ZERO,
            },
        );
        set.cut_one_way(&p("*@h"), &p("e"));
        // exempting c removes the faults that name it, and nothing else
        assert_eq!(set.exempt(&p("c")), 6, "a<->c, b<->c cut, a<->c delay");
        assert_eq!(set.describe(), vec!["cut *@h -> e", "isolate d"]);
        assert!(
            !set.holds(Some(&n("c@h")), Some(&n("e"))),
            "host cut skips c"
        );
        assert!(set.holds(Some(&n("x@h")), Some(&n("e"))));
        // even a fault added later in a form that does not name it
        set.isolate(&p("*@h"));
        assert!(!set.holds(Some(&n("c@h")), Some(&n("a@h"))));
        assert!(
            !set.holds(Some(&n("d@h")), Some(&n("c@h"))),
            "isolated d still reaches c"
        );
        assert!(set.holds(Some(&n("d@h")), Some(&n("a@h"))));
        assert!(
            set.holds(None, Some(&n("d@h"))),
            "unknown ends are not exempt"
        );
        set.set_rate(
            &islands(&[&["*@h"], &["*@g"]]),
            Rate {
                bits_per_second: 8000,
            },
        );
        assert!(set.shaping(Some(&n("c@h")), Some(&n("x@g"))).is_none());
        assert!(!set.shaping(Some(&n("a@h")), Some(&n("x@g"))).is_none());
        // heal keeps the exemption
        set.heal();
        assert!(set.is_empty());
        assert_eq!(set.exempt_patterns().count(), 1);
        assert!(set.is_exempt(&n("c@anywhere")));
        assert!(set.unexempt(&p("c")));
        assert!(!set.unexempt(&p("c")));
        assert!(!set.is_exempt(&n("c")));
    }

    #[test]
    fn overlapping_patterns() {
        assert!(p("a").overlaps(&p("a@h")));
        assert!(p("a@h").overlaps(&p("a")));
        assert!(!p("a@h").overlaps(&p("a@g")));
        assert!(p("*@h").overlaps(&p("a@h")));
        assert!(!p("*@h").overlaps(&p("a")));
        assert!(!p("a").overlaps(&p("b")));
        let mut set = PartitionSet::new();
        set.exempt(&p("a"));
        assert_eq!(set.exempt_overlap(&p("a@h")), Some(&p("a")));
        assert_eq!(set.exempt_overlap(&p("b")), None);
    }

    #[test]
    fn reset_matches_links_between_islands() {
        let two = islands(&[&["a"], &["b", "c"]]);
        assert!(crosses(&two, &n("a@h"), &n("b")));
        assert!(crosses(&two, &n("c@h"), &n("a")));
        assert!(!crosses(&two, &n("b@h"), &n("c")));
    }
}
