//! How faults name nodes: a node as the proxy knows it ([`NodeName`]: its
//! registered name, and its host once learnt) and the patterns a fault is
//! written with ([`Pattern`]: `n1`, `n1@host`, `*@host`). Pure.

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
        let nowhere = NodeName {
            alive: "x".into(),
            host: Some(String::new()),
        };
        assert!(!p("*@h").matches(&nowhere));
        assert!(!p("x@h").matches(&nowhere));
        assert!(p("x").matches(&nowhere));
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
}
