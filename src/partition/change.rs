//! The one door every fault change goes through: a [`Change`] (what a
//! command or a chaos step asks for), checked and applied by
//! [`PartitionSet::apply`] as a whole — refused with a [`Refused`] that
//! says why (an exempt node named, too many rules), or applied entirely.
//! [`super::door::Faults`] runs it under one write lock. Pure.

use std::fmt;

use super::names::{group_text, KnownNodes, Pattern};
use super::rules::{
    format_duration, islands_text, pair_count, pairs_across, Delay, Islands, Rate, Target,
    MAX_RULES,
};
use super::set::PartitionSet;
use super::shapes::Layout;
use crate::base::words::{agree, count};

/// A change to the faults in force, as one command asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Cut(Target),
    Fix(Target),
    Isolate(Vec<Pattern>),
    Rejoin(Vec<Pattern>),
    Delay(Islands, Delay),
    Throttle(Islands, Rate),
    Clear(Islands),
    /// Closes the live links between the islands; stores nothing.
    Reset(Islands),
    Heal,
    Exempt(Vec<Pattern>),
    Unexempt(Vec<Pattern>),
    /// Every cut of a shape, applied at once.
    Layout(Layout),
}

/// What kind of event a change is for `watch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// A fault added (`fault-applied`).
    Applies,
    /// A fault removed (`fault-removed`).
    Removes,
    /// An exemption changed (`exempt-changed`).
    Exempts,
}

/// A change that was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// How many rules it added or removed: pairs for cuts, fixes, clears
    /// and layouts; nodes for isolate, rejoin and unexempt; the faults an
    /// `exempt` removed; 0 for `reset`, delays, throttles and `heal`.
    pub count: usize,
}

/// Why a change was refused; nothing of it was applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The change names an exempt node.
    Exempt { named: Pattern, exempt: Pattern },
    /// A shape's node was exempted after the shape was laid out.
    BecameExempt { named: Pattern, shape: String },
    /// The change would take the rules past [`MAX_RULES`].
    TooMany { adds: usize, in_force: usize },
    /// A `fix` or `clear` that matches nothing in force (the faults that
    /// are, one per line as `status` shows them).
    NoSuchFault { in_force: Vec<String> },
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Exempt { named, exempt } => {
                let alias = if exempt == named {
                    String::new()
                } else {
                    format!(" (as {exempt})")
                };
                write!(
                    f,
                    "{named} is exempt{alias}: no fault applies to it; unexempt {exempt} first"
                )
            }
            Refused::BecameExempt { named, shape } => {
                write!(f, "{named} became exempt; {shape} not applied")
            }
            Refused::TooMany { adds, in_force } => write!(
                f,
                "too many faults: this names {}, {} {} in force, the limit is {MAX_RULES} (heal, or name fewer nodes)",
                count(*adds, "node pair"),
                count(*in_force, "rule"),
                agree(*in_force, "is", "are")
            ),
            Refused::NoSuchFault { in_force } if in_force.is_empty() => {
                f.write_str("no such fault in force (nothing is in force)")
            }
            Refused::NoSuchFault { in_force } => {
                write!(f, "no such fault in force (in force: {})", in_force.join("; "))
            }
        }
    }
}

impl Change {
    pub fn kind(&self) -> ChangeKind {
        match self {
            Change::Fix(_) | Change::Rejoin(_) | Change::Clear(_) | Change::Heal => {
                ChangeKind::Removes
            }
            Change::Exempt(_) | Change::Unexempt(_) => ChangeKind::Exempts,
            _ => ChangeKind::Applies,
        }
    }

    /// True if the change may hold bytes that flowed before it, so writes
    /// in progress must finish before it is confirmed. (An `unexempt` may
    /// let a fault written as `*@host` hold its node's links.)
    pub fn may_hold(&self) -> bool {
        matches!(
            self,
            Change::Cut(_) | Change::Isolate(_) | Change::Unexempt(_) | Change::Layout(_)
        )
    }

    /// The node patterns a fault is written with, which must not name an
    /// exempt node (removals and exemptions may name anything).
    fn named(&self) -> Vec<&Pattern> {
        match self {
            Change::Cut(target) => target.patterns(),
            Change::Isolate(nodes) => nodes.iter().collect(),
            Change::Delay(islands, _) | Change::Throttle(islands, _) | Change::Reset(islands) => {
                islands.iter().flatten().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Rules the change may add, for the [`MAX_RULES`] check.
    fn adds(&self) -> usize {
        match self {
            Change::Cut(target) => target.pair_count(),
            Change::Delay(islands, _) | Change::Throttle(islands, _) => pair_count(islands),
            Change::Isolate(nodes) => nodes.len(),
            Change::Layout(layout) => layout.islands().iter().map(pair_count).sum(),
            _ => 0,
        }
    }
}

/// The line that creates the change (a layout: its cuts, `; `-separated).
impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Cut(target) => write!(f, "cut {target}"),
            Change::Fix(target) => write!(f, "fix {target}"),
            Change::Isolate(nodes) => write!(f, "isolate {}", group_text(nodes)),
            Change::Rejoin(nodes) => write!(f, "rejoin {}", group_text(nodes)),
            Change::Delay(islands, delay) => {
                let base = format_duration(delay.base);
                write!(f, "delay {} {base}", islands_text(islands))?;
                if !delay.jitter.is_zero() {
                    write!(f, " jitter {}", format_duration(delay.jitter))?;
                }
                Ok(())
            }
            Change::Throttle(islands, rate) => {
                write!(f, "throttle {} {rate}", islands_text(islands))
            }
            Change::Clear(islands) => write!(f, "clear {}", islands_text(islands)),
            Change::Reset(islands) => write!(f, "reset {}", islands_text(islands)),
            Change::Heal => f.write_str("heal"),
            Change::Exempt(nodes) => write!(f, "exempt {}", group_text(nodes)),
            Change::Unexempt(nodes) => write!(f, "unexempt {}", group_text(nodes)),
            Change::Layout(layout) => f.write_str(&layout.cut_lines().join("; ")),
        }
    }
}

/// Every spelling of every pair (see [`KnownNodes::spellings`]).
fn all_spellings(pairs: Vec<(Pattern, Pattern)>, known: &KnownNodes) -> Vec<(Pattern, Pattern)> {
    let mut out = Vec::new();
    for (a, b) in pairs {
        for a in known.spellings(&a) {
            for b in known.spellings(&b) {
                if !out.contains(&(a.clone(), b.clone())) {
                    out.push((a.clone(), b));
                }
            }
        }
    }
    out
}

impl PartitionSet {
    /// Checks `change` and applies all of it, or refuses it whole.
    /// Removals (`fix`, `clear`, `rejoin`) also remove what they name in
    /// another spelling of the same `known` nodes; a `fix` or `clear` that
    /// removes nothing is refused.
    pub fn apply(&mut self, change: &Change, known: &KnownNodes) -> Result<Applied, Refused> {
        self.check(change)?;
        let count = match change {
            Change::Cut(target) => self.hold(target.pairs()),
            Change::Fix(target) => self.release(all_spellings(target.pairs(), known)),
            Change::Isolate(nodes) => nodes.iter().filter(|node| self.isolate(node)).count(),
            Change::Rejoin(nodes) => nodes
                .iter()
                .filter(|node| {
                    let removed = known
                        .spellings(node)
                        .iter()
                        .filter(|s| self.rejoin(s))
                        .count();
                    removed > 0
                })
                .count(),
            Change::Delay(islands, delay) => {
                self.set_delay(islands, *delay);
                0
            }
            Change::Throttle(islands, rate) => {
                self.set_rate(islands, *rate);
                0
            }
            Change::Clear(islands) => self.unshape(all_spellings(pairs_across(islands), known)),
            Change::Reset(_) => 0,
            Change::Heal => {
                self.heal();
                0
            }
            Change::Exempt(nodes) => nodes.iter().map(|node| self.exempt(node)).sum(),
            Change::Unexempt(nodes) => nodes.iter().filter(|node| self.unexempt(node)).count(),
            Change::Layout(layout) => layout.islands().iter().map(|i| self.cut(i)).sum(),
        };
        if count == 0 && matches!(change, Change::Fix(_) | Change::Clear(_)) {
            return Err(Refused::NoSuchFault {
                in_force: self.describe(),
            });
        }
        Ok(Applied { count })
    }

    /// Refuses a fault that names an exempt node, or one that would take
    /// the rules past the limit.
    fn check(&self, change: &Change) -> Result<(), Refused> {
        if let Change::Layout(layout) = change {
            // A node exempted since the layout was computed.
            let named = layout.islands().into_iter().flatten().flatten();
            if let Some(named) = named.into_iter().find(|p| self.exempt_overlap(p).is_some()) {
                let shape = layout.shape.to_string();
                return Err(Refused::BecameExempt { named, shape });
            }
        }
        for named in change.named() {
            if let Some(exempt) = self.exempt_overlap(named) {
                let (named, exempt) = (named.clone(), exempt.clone());
                return Err(Refused::Exempt { named, exempt });
            }
        }
        let (adds, in_force) = (change.adds(), self.rule_count());
        if adds > 0 && in_force + adds > MAX_RULES {
            return Err(Refused::TooMany { adds, in_force });
        }
        Ok(())
    }

    /// The faults in force, each as the change that creates it: `cut a | b`
    /// for a pair held both ways, `cut a -> b` for one way, `isolate n`,
    /// `delay a | b 200ms`, `throttle a | b 64kbps`.
    pub fn in_force(&self) -> Vec<Change> {
        let one = |pattern: &Pattern| vec![pattern.clone()];
        let pair = |a: &Pattern, b: &Pattern| vec![one(a), one(b)];
        let mut changes = Vec::new();
        for (a, b) in self.held_pairs() {
            if !self.holds_pair(b, a) {
                let (from, to) = (one(a), one(b));
                changes.push(Change::Cut(Target::OneWay { from, to }));
            } else if a < b {
                changes.push(Change::Cut(Target::Islands(pair(a, b))));
            }
        }
        changes.extend(self.isolated().map(|node| Change::Isolate(one(node))));
        for ((a, b), shaping) in self.shaped_pairs() {
            // Shaping is only ever set both ways; print each pair once.
            if a > b {
                continue;
            }
            if let Some(delay) = shaping.delay {
                changes.push(Change::Delay(pair(a, b), delay));
            }
            if let Some(rate) = shaping.rate {
                changes.push(Change::Throttle(pair(a, b), rate));
            }
        }
        changes
    }

    /// [`PartitionSet::in_force`], one line each.
    pub fn describe(&self) -> Vec<String> {
        self.in_force().iter().map(ToString::to_string).collect()
    }
}
