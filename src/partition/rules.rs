//! The vocabulary of faults: islands and what a fault names across them
//! ([`Islands`], [`Target`]), delays, rates and the shaping of a
//! direction, and the bound on how many rules may be in force. Pure.

use std::fmt;
use std::time::Duration;

use super::names::{group_text, Pattern};

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
pub fn pairs_across(islands: &Islands) -> Vec<(Pattern, Pattern)> {
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
    pub fn merge(self, other: Shaping) -> Shaping {
        Shaping {
            delay: self.delay.max(other.delay),
            rate: match (self.rate, other.rate) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

/// Islands as `a,b | c`.
pub fn islands_text(islands: &Islands) -> String {
    let groups: Vec<String> = islands.iter().map(|island| group_text(island)).collect();
    groups.join(" | ")
}

/// What a `cut` or `fix` applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every pair across different islands, both ways.
    Islands(Islands),
    /// One direction between two groups.
    OneWay {
        from: Vec<Pattern>,
        to: Vec<Pattern>,
    },
}

impl Target {
    /// Every pattern named.
    pub fn patterns(&self) -> Vec<&Pattern> {
        match self {
            Target::Islands(islands) => islands.iter().flatten().collect(),
            Target::OneWay { from, to } => from.iter().chain(to).collect(),
        }
    }

    /// The directed pairs it names (pairs may repeat in a one-way
    /// target's count no more than they are named).
    pub fn pairs(&self) -> Vec<(Pattern, Pattern)> {
        match self {
            Target::Islands(islands) => pairs_across(islands),
            Target::OneWay { from, to } => from
                .iter()
                .flat_map(|a| to.iter().map(move |b| (a.clone(), b.clone())))
                .collect(),
        }
    }

    /// How many directed pairs it names, without listing them.
    pub fn pair_count(&self) -> usize {
        match self {
            Target::Islands(islands) => pair_count(islands),
            Target::OneWay { from, to } => from.len() * to.len(),
        }
    }
}

/// `a,b | c` or `a -> b,c`, as the control language writes it.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Islands(islands) => f.write_str(&islands_text(islands)),
            Target::OneWay { from, to } => {
                write!(f, "{} -> {}", group_text(from), group_text(to))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{islands, p};
    use super::*;

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
    fn targets_count_and_print_their_pairs() {
        let two = Target::Islands(islands(&[&["a", "b"], &["c"]]));
        assert_eq!(two.to_string(), "a,b | c");
        assert_eq!(two.pair_count(), 4);
        assert_eq!(two.pairs().len(), 4);
        let one_way = Target::OneWay {
            from: vec![p("a")],
            to: vec![p("b"), p("c")],
        };
        assert_eq!(one_way.to_string(), "a -> b,c");
        assert_eq!(one_way.pair_count(), 2);
        assert_eq!(one_way.pairs(), vec![(p("a"), p("b")), (p("a"), p("c"))]);
        assert_eq!(one_way.patterns().len(), 3);
    }
}
