//! Short constructors for the partition room's tests.

use super::names::{NodeName, Pattern};
use super::rules::Islands;

pub fn p(text: &str) -> Pattern {
    // Test-only (`#[cfg(test)] mod testing` in partition/mod.rs): a bad
    // pattern here is a typo in a test, which should fail loudly.
    Pattern::parse(text).expect("valid pattern") // no-panic: compiled only for tests
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
