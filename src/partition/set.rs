//! The faults in force ([`PartitionSet`]): which directed pairs of node
//! patterns are held, which patterns are isolated, how pairs are slowed
//! down, and which nodes are exempt — and the questions a relay asks of
//! them for every chunk (`holds`, `shaping`). Pure. Changes come through
//! [`PartitionSet::apply`] (see `change.rs`), which checks them first.
//!
//! A cut is stored as directed pairs of name patterns: `(a, b)` means bytes
//! from any node matching `a` to any node matching `b` are held. A
//! symmetric cut `a | b` is the two pairs `(a, b)` and `(b, a)`. Patterns
//! are kept as the user wrote them, so a fault may name nodes that have not
//! registered yet and applies as soon as they appear.
//!
//! Exempt nodes sit outside the model: no fault ever applies to a link that
//! has an exempt node at either end (`holds` and `shaping` say so), whatever
//! the faults name.

use std::collections::{BTreeMap, BTreeSet};

use super::names::{NodeName, Pattern};
use super::rules::{pairs_across, Delay, Islands, Rate, Shaping};

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

    /// Holds each directed pair. Returns how many were not held before.
    pub fn hold(&mut self, pairs: Vec<(Pattern, Pattern)>) -> usize {
        pairs
            .into_iter()
            .filter(|pair| self.held.insert(pair.clone()))
            .count()
    }

    /// Releases each directed pair. Returns how many were held.
    pub fn release(&mut self, pairs: Vec<(Pattern, Pattern)>) -> usize {
        pairs.iter().filter(|pair| self.held.remove(pair)).count()
    }

    /// True if the directed pair `(from, to)` is held, as written.
    pub fn holds_pair(&self, from: &Pattern, to: &Pattern) -> bool {
        self.held.contains(&(from.clone(), to.clone()))
    }

    /// Cuts every pair across different islands, both ways. Returns how
    /// many directed pairs were newly cut.
    pub fn cut(&mut self, islands: &Islands) -> usize {
        self.hold(pairs_across(islands))
    }

    /// Cuts one direction only: bytes from `from` to `to` are held.
    pub fn cut_one_way(&mut self, from: &Pattern, to: &Pattern) -> usize {
        self.hold(vec![(from.clone(), to.clone())])
    }

    /// Removes the cuts `cut(islands)` would add. Returns how many directed
    /// pairs were removed.
    pub fn fix(&mut self, islands: &Islands) -> usize {
        self.release(pairs_across(islands))
    }

    /// Removes a one-way cut.
    pub fn fix_one_way(&mut self, from: &Pattern, to: &Pattern) -> usize {
        self.release(vec![(from.clone(), to.clone())])
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

    /// Removes the delay and cap of each directed pair. Returns how many
    /// had one.
    pub fn unshape(&mut self, pairs: Vec<(Pattern, Pattern)>) -> usize {
        pairs
            .iter()
            .filter(|pair| self.shaping.remove(pair).is_some())
            .count()
    }

    /// Removes delays and caps across the islands. Returns how many
    /// directed pairs had one.
    pub fn clear(&mut self, islands: &Islands) -> usize {
        self.unshape(pairs_across(islands))
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

    /// The directed pairs whose bytes are held, sorted.
    pub fn held_pairs(&self) -> impl Iterator<Item = &(Pattern, Pattern)> {
        self.held.iter()
    }

    /// The isolated patterns, sorted.
    pub fn isolated(&self) -> impl Iterator<Item = &Pattern> {
        self.isolated.iter()
    }

    /// The delayed or capped directed pairs, sorted.
    pub fn shaped_pairs(&self) -> impl Iterator<Item = (&(Pattern, Pattern), &Shaping)> {
        self.shaping.iter()
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
    use super::super::rules::{Delay, Rate};
    use super::super::testing::{islands, n, p};
    use super::*;
    use std::time::Duration;

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
    fn reset_matches_links_between_islands() {
        let two = islands(&[&["a"], &["b", "c"]]);
        assert!(crosses(&two, &n("a@h"), &n("b")));
        assert!(crosses(&two, &n("c@h"), &n("a")));
        assert!(!crosses(&two, &n("b@h"), &n("c")));
    }

    #[test]
    fn exempt_overlap_names_the_exempt_pattern() {
        let mut set = PartitionSet::new();
        set.exempt(&p("a"));
        assert_eq!(set.exempt_overlap(&p("a@h")), Some(&p("a")));
        assert_eq!(set.exempt_overlap(&p("b")), None);
    }
}
