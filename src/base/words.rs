//! Counted nouns for replies, events and log lines: `1 link`, `2 links`.
//! The one place a count meets its noun, so no reply says `1 faults`.

/// Any unsigned count (`usize`, `u64`, ...).
pub trait Number: std::fmt::Display + PartialEq + From<u8> {}

impl<N: std::fmt::Display + PartialEq + From<u8>> Number for N {}

/// `count(1, "link")` is `1 link`, `count(2, "live link")` is
/// `2 live links`: the noun gets an `s` unless there is exactly one.
pub fn count<N: Number>(n: N, noun: &str) -> String {
    if n == N::from(1) {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The verb form that agrees with `n`: `agree(1, "was", "were")` is
/// `was`, any other number takes the plural (`2 links were`).
pub fn agree<N: Number>(n: N, one: &'static str, many: &'static str) -> &'static str {
    if n == N::from(1) {
        one
    } else {
        many
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_number_plural() {
        assert_eq!(count(0, "fault"), "0 faults");
        assert_eq!(count(1, "fault"), "1 fault");
        assert_eq!(count(2, "live link"), "2 live links");
        assert_eq!(count(1, "live link"), "1 live link");
        assert_eq!(agree(1, "was", "were"), "was");
        assert_eq!(agree(0, "is", "are"), "are");
        assert_eq!(agree(3, "is", "are"), "are");
    }
}
