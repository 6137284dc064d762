//! The partition room: the fault model, pure. Which node may send bytes to
//! which and how fast ([`set::PartitionSet`]), the names faults are
//! written with ([`names`], [`rules`]), the one door every change goes
//! through ([`change::Change`], applied by [`door::Faults::apply`] under
//! one write lock), the partition shapes ([`shapes`]), the chaos
//! planner ([`chaos_plan`]) and the reachability matrix the faults draw
//! ([`matrix`]). Nothing here touches a socket.

pub mod change;
pub mod chaos_plan;
pub mod door;
pub mod matrix;
pub mod names;
pub mod rules;
pub mod set;
pub mod shapes;

pub use change::{Applied, Change, ChangeKind, Refused};
pub use door::Faults;
pub use names::{NodeName, Pattern};
pub use rules::{Delay, Islands, Rate, Shaping, Target};
pub use set::PartitionSet;

/// Short constructors for the partition room's tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::names::{NodeName, Pattern};
    use super::rules::Islands;

    pub fn p(text: &str) -> Pattern {
        Pattern::parse(text).expect("valid pattern")
    }

    pub fn n(text: &str) -> NodeName {
        NodeName::parse(text)
    }

    /// `&[&["a", "b"], &["c"]]` → the islands `a,b | c`.
    pub fn islands(spec: &[&[&str]]) -> Islands {
        spec.iter()
            .map(|island| island.iter().map(|name| p(name)).collect())
            .collect()
    }
}
