//! The partition model: which node may send bytes to which.
//!
//! A cut is stored as directed pairs of name patterns: `(a, b)` means bytes
//! from any node matching `a` to any node matching `b` are held. A symmetric
//! cut `a | b` is the two pairs `(a, b)` and `(b, a)`. Patterns are kept as
//! the user wrote them, so a cut may name nodes that have not registered yet
//! and applies as soon as they appear. Everything here is pure and shared
//! between threads as `Arc<RwLock<PartitionSet>>`.

use std::collections::BTreeSet;
use std::fmt;

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

    /// True if this pattern names `node`.
    pub fn matches(&self, node: &NodeName) -> bool {
        match self {
            Pattern::Alive(alive) => *alive == node.alive,
            Pattern::Full { alive, host } => {
                *alive == node.alive && node.host.as_ref().is_none_or(|h| h == host)
            }
            Pattern::Host(host) => node.host.as_ref() == Some(host),
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

/// All faults in force.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionSet {
    /// Directed pairs whose traffic is held.
    held: BTreeSet<(Pattern, Pattern)>,
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

    /// Removes every fault.
    pub fn heal(&mut self) {
        self.held.clear();
    }

    /// True when nothing is in force.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// True if bytes from `from` to `to` must be held. A link whose
    /// initiator is unknown (`None`) matches no pair.
    pub fn holds(&self, from: Option<&NodeName>, to: &NodeName) -> bool {
        let Some(from) = from else { return false };
        self.held
            .iter()
            .any(|(a, b)| a.matches(from) && b.matches(to))
    }

    /// The faults in force, one per line, in the syntax that creates them:
    /// `cut a | b` for a pair cut both ways, `cut a -> b` for one way.
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
        lines
    }
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
        assert!(!p("*@h").matches(&n("x")));
    }

    #[test]
    fn cut_holds_every_pair_across_islands() {
        let mut set = PartitionSet::new();
        assert_eq!(set.cut(&islands(&[&["n1", "n2"], &["n3", "n4", "n5"]])), 12);
        assert!(set.holds(Some(&n("n1@h")), &n("n3")));
        assert!(set.holds(Some(&n("n5@h")), &n("n2")));
        assert!(!set.holds(Some(&n("n1@h")), &n("n2")));
        assert!(!set.holds(Some(&n("n3@h")), &n("n4")));
        assert!(
            !set.holds(None, &n("n3")),
            "unknown initiators match no pair"
        );
        assert!(!set.holds(Some(&n("n6@h")), &n("n1")));
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
        assert!(!set.holds(Some(&n("a")), &n("b")));
        assert!(set.holds(Some(&n("a")), &n("c")));
        set.heal();
        assert!(set.is_empty());
    }

    #[test]
    fn one_way_cut() {
        let mut set = PartitionSet::new();
        set.cut_one_way(&p("a"), &p("b"));
        assert!(set.holds(Some(&n("a")), &n("b")));
        assert!(!set.holds(Some(&n("b")), &n("a")));
        assert_eq!(set.describe(), vec!["cut a -> b"]);
        assert_eq!(set.fix_one_way(&p("a"), &p("b")), 1);
        assert!(set.is_empty());
    }
}
