//! How faults name nodes: a node as the proxy knows it ([`NodeName`]: its
//! registered name, and its host once learnt) and the patterns a fault is
//! written with ([`Pattern`]: `n1`, `n1@host`, `*@host`). Pure.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// What the proxy knows of a node's host.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Host {
    /// Read from a handshake: exactly this host.
    Named(String),
    /// Not known: it might be any host, so every host part matches (the
    /// cautious reading for a cut).
    Unknown,
    /// One of these names: a node registered with this proxy runs on this
    /// machine, whose host names and addresses these are. Empty: on no
    /// host a pattern names.
    OneOf(Arc<[String]>),
}

impl Host {
    /// True if the node may be on `host`.
    pub fn may_be(&self, host: &str) -> bool {
        match self {
            Host::Named(named) => named == host,
            Host::Unknown => true,
            Host::OneOf(names) => names.iter().any(|name| name == host),
        }
    }
}

/// A node as the proxy knows it: its alive name (what it registered with
/// EPMD, or the part before `@` of the name its handshake sent) and what
/// is known of its host.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeName {
    pub alive: String,
    pub host: Host,
}

impl NodeName {
    /// `n1@host` → alive `n1`, host `host`; `n1` → host unknown.
    pub fn parse(text: &str) -> NodeName {
        match text.split_once('@') {
            Some((alive, host)) => NodeName {
                alive: alive.to_owned(),
                host: Host::Named(host.to_owned()),
            },
            None => NodeName::on(text, Host::Unknown),
        }
    }

    /// The node named `alive` on `host`.
    pub fn on(alive: &str, host: Host) -> NodeName {
        NodeName {
            alive: alive.to_owned(),
            host,
        }
    }
}

/// `n1@host` when the host is known, else `n1`.
impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Named(host) => write!(f, "{}@{}", self.alive, host),
            Host::Unknown | Host::OneOf(_) => f.write_str(&self.alive),
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
    /// might be on any host, so host parts are not held against it: `n1@h`
    /// and `*@h` both match it (the cautious reading for a cut). A node
    /// known to be on one of several hosts matches a host part naming
    /// any of them.
    pub fn matches(&self, node: &NodeName) -> bool {
        match self {
            Pattern::Alive(alive) => *alive == node.alive,
            Pattern::Full { alive, host } => *alive == node.alive && node.host.may_be(host),
            Pattern::Host(host) => node.host.may_be(host),
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

/// The nodes this proxy knows by name and the hosts each may be on, so a
/// fault can be removed in another spelling of the same node (`n1` and
/// `n1@host` for the `n1` registered here on `host`).
#[derive(Clone, Debug, Default)]
pub struct KnownNodes {
    hosts: BTreeMap<String, Host>,
}

impl KnownNodes {
    /// `alive` is a node the proxy knows, on `host`.
    pub fn insert(&mut self, alive: &str, host: Host) {
        self.hosts.insert(alive.to_owned(), host);
    }

    /// Every pattern that names the same node as `pattern`: itself, and
    /// for a known node its bare name and its full name on each host it
    /// may be on. Host patterns and unknown nodes have only themselves.
    pub fn spellings(&self, pattern: &Pattern) -> Vec<Pattern> {
        let mut spellings = vec![pattern.clone()];
        let (alive, named_host) = match pattern {
            Pattern::Host(_) => return spellings,
            Pattern::Alive(alive) => (alive, None),
            Pattern::Full { alive, host } => (alive, Some(host)),
        };
        let Some(host) = self.hosts.get(alive) else {
            return spellings;
        };
        let names: Vec<String> = match host {
            Host::Named(name) => vec![name.clone()],
            Host::OneOf(names) => names.to_vec(),
            Host::Unknown => Vec::new(),
        };
        if named_host.is_some_and(|named| !names.contains(named)) {
            return spellings;
        }
        let full = names.into_iter().map(|host| Pattern::Full {
            alive: alive.clone(),
            host,
        });
        for other in std::iter::once(Pattern::Alive(alive.clone())).chain(full) {
            if !spellings.contains(&other) {
                spellings.push(other);
            }
        }
        spellings
    }
}

/// Patterns joined with commas, as the control language writes a group:
/// `a,b@h,*@g`.
pub fn group_text(patterns: &[Pattern]) -> String {
    let names: Vec<String> = patterns.iter().map(ToString::to_string).collect();
    names.join(",")
}

#[cfg(test)]
mod tests {
    use super::super::testing::{n, p};
    use super::*;

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
        let nowhere = NodeName::on("x", Host::OneOf(Arc::from(Vec::new())));
        assert!(!p("*@h").matches(&nowhere));
        assert!(!p("x@h").matches(&nowhere));
        assert!(p("x").matches(&nowhere));
        let here = NodeName::on(
            "x",
            Host::OneOf(Arc::from(vec!["h".to_owned(), "10.0.0.1".to_owned()])),
        );
        assert!(p("*@h").matches(&here));
        assert!(p("x@10.0.0.1").matches(&here));
        assert!(!p("x@g").matches(&here));
        assert_eq!(here.to_string(), "x");
        assert_eq!(n("x@h").to_string(), "x@h");
    }

    #[test]
    fn overlapping_patterns() {
        assert!(p("a").overlaps(&p("a@h")));
        assert!(p("a@h").overlaps(&p("a")));
        assert!(!p("a@h").overlaps(&p("a@g")));
        assert!(p("*@h").overlaps(&p("a@h")));
        assert!(!p("*@h").overlaps(&p("a")));
        assert!(!p("a").overlaps(&p("b")));
    }

    #[test]
    fn groups_print_as_they_are_written() {
        assert_eq!(group_text(&[p("a"), p("b@h"), p("*@g")]), "a,b@h,*@g");
        assert_eq!(group_text(&[]), "");
    }

    #[test]
    fn known_nodes_spell_a_node_every_way() {
        let mut known = KnownNodes::default();
        known.insert("n1", Host::Named("vm".into()));
        let here = Host::OneOf(Arc::from(vec!["vm".to_owned(), "127.0.0.1".to_owned()]));
        known.insert("n2", here);
        assert_eq!(known.spellings(&p("n1")), vec![p("n1"), p("n1@vm")]);
        assert_eq!(known.spellings(&p("n1@vm")), vec![p("n1@vm"), p("n1")]);
        assert_eq!(known.spellings(&p("n1@other")), vec![p("n1@other")]);
        assert_eq!(
            known.spellings(&p("n2@127.0.0.1")),
            vec![p("n2@127.0.0.1"), p("n2"), p("n2@vm")]
        );
        assert_eq!(known.spellings(&p("n9")), vec![p("n9")]);
        assert_eq!(known.spellings(&p("*@vm")), vec![p("*@vm")]);
    }
}
