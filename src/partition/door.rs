//! The partition room's handle, [`Faults`]: the faults in force, shared as
//! `Arc<RwLock<PartitionSet>>`, and the notifier that wakes relays when
//! they change. [`Faults::apply`] is the one door for every fault change:
//! it checks and applies a whole [`Change`] under one write lock, so no
//! relay ever sees half of a command, and two sessions cannot both pass a
//! check that only one of them fits.

use std::sync::{Arc, RwLock, RwLockReadGuard};

use super::change::{Applied, Change, Refused};
use super::names::{KnownNodes, Pattern};
use super::set::PartitionSet;
use crate::base::sync::{read, write, Notifier};

/// The faults in force and their change notifier; cheap to clone (every
/// clone is the same state).
#[derive(Clone, Default)]
pub struct Faults {
    set: Arc<RwLock<PartitionSet>>,
    /// Bumped on every fault change (and, by the proxy, on every link
    /// event a held relay must look at); held relays wait on it.
    changes: Arc<Notifier>,
}

impl Faults {
    /// No faults; `exempt` nodes are exempt from the start (`--exempt`).
    pub fn new(exempt: &[Pattern]) -> Faults {
        let mut set = PartitionSet::new();
        for node in exempt {
            set.exempt(node);
        }
        Faults {
            set: Arc::new(RwLock::new(set)),
            changes: Arc::default(),
        }
    }

    /// Checks `change` and applies it whole under one write lock, then
    /// wakes every relay. Nothing is applied when it is refused.
    /// `known`: the nodes by name, for removals spelled another way.
    pub fn apply(&self, change: &Change, known: &KnownNodes) -> Result<Applied, Refused> {
        let applied = write(&self.set).apply(change, known)?;
        self.changes.bump();
        Ok(applied)
    }

    /// The faults in force, for the questions a relay asks per chunk.
    pub fn read(&self) -> RwLockReadGuard<'_, PartitionSet> {
        read(&self.set)
    }

    /// A copy of the faults in force, for answers that take a while.
    pub fn snapshot(&self) -> PartitionSet {
        self.read().clone()
    }

    /// The notifier held relays sleep on.
    pub fn changes(&self) -> &Notifier {
        &self.changes
    }
}

#[cfg(test)]
mod tests {
    use super::super::rules::{Target, MAX_RULES};
    use super::super::testing::{n, p};
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Barrier;

    fn names(prefix: &str, count: usize) -> Vec<Pattern> {
        (0..count).map(|i| p(&format!("{prefix}{i}"))).collect()
    }

    /// Two sessions each ask for a cut that fits under the limit alone but
    /// not together: exactly one gets it, every time.
    #[test]
    fn two_racing_cuts_cannot_pass_the_limit_together() {
        for round in 0..20 {
            let faults = Faults::default();
            let start = Barrier::new(2);
            let cut = |prefix: &str| {
                let islands = vec![
                    names(&format!("{prefix}a"), 50),
                    names(&format!("{prefix}b"), 60),
                ];
                Change::Cut(Target::Islands(islands))
            };
            let results: Vec<bool> = std::thread::scope(|scope| {
                let racers: Vec<_> = ["x", "y"]
                    .map(|prefix| {
                        let (faults, start, change) = (&faults, &start, cut(prefix));
                        scope.spawn(move || {
                            start.wait();
                            faults.apply(&change, &KnownNodes::default()).is_ok()
                        })
                    })
                    .into_iter()
                    .collect();
                racers
                    .into_iter()
                    .map(|r| r.join().expect("racer"))
                    .collect()
            });
            assert_eq!(results.iter().filter(|ok| **ok).count(), 1, "round {round}");
            assert!(faults.read().rule_count() <= MAX_RULES, "round {round}");
        }
    }

    /// Relays never see `isolate a,b,c` half applied: whenever one of a,
    /// b, c is held, all three are. (Four readers keep the lock busy, so
    /// a change applied in several locked steps would be seen between
    /// them.)
    #[test]
    fn a_relay_never_sees_half_an_isolate() {
        let faults = Faults::default();
        let isolate = Change::Isolate(vec![p("a"), p("b"), p("c")]);
        let rejoin = Change::Rejoin(vec![p("a"), p("b"), p("c")]);
        let (a, b, c, d) = (n("a@h"), n("b@h"), n("c@h"), n("d@h"));
        let done = AtomicBool::new(false);
        let torn: usize = std::thread::scope(|scope| {
            let readers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let mut torn = 0;
                        while !done.load(Ordering::Relaxed) {
                            let set = faults.read();
                            let held = [&a, &b, &c].map(|x| set.holds(Some(x), Some(&d)));
                            if held.contains(&true) && held.contains(&false) {
                                torn += 1;
                            }
                        }
                        torn
                    })
                })
                .collect();
            for _ in 0..20_000 {
                faults
                    .apply(&isolate, &KnownNodes::default())
                    .expect("isolate");
                faults
                    .apply(&rejoin, &KnownNodes::default())
                    .expect("rejoin");
            }
            done.store(true, Ordering::Relaxed);
            readers.into_iter().map(|r| r.join().expect("reader")).sum()
        });
        assert_eq!(torn, 0, "readers saw a half-applied isolate {torn} times");
    }

    #[test]
    fn a_refused_change_changes_nothing_and_wakes_nobody() {
        let faults = Faults::new(&[p("runner")]);
        let before = faults.changes().generation();
        let known = KnownNodes::default();
        let refused = faults.apply(&Change::Isolate(vec![p("n1"), p("runner")]), &known);
        assert!(
            matches!(refused, Err(Refused::Exempt { .. })),
            "{refused:?}"
        );
        assert!(faults.read().is_empty(), "n1 was not isolated either");
        assert_eq!(faults.changes().generation(), before);
        faults.apply(&Change::Heal, &known).expect("heal");
        assert_ne!(faults.changes().generation(), before);
    }
}
