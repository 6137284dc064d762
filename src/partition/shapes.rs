//! Partition shapes: the topologies Jepsen uses to find bugs, computed from
//! a node list and a seeded random generator.
//!
//! Everything here is pure. A shape turns the (sorted) list of node names
//! into a [`Layout`]: one or more `cut` commands, each a list of islands.
//! Randomness comes only from the seeded [`Rng`], and shapes shuffle the
//! *sorted* node list, so the same seed and the same number of nodes pick
//! the same positions in that order: a run replays from its seed and node
//! list, even when the node names carry a different suffix.
//!
//! | shape | layout |
//! |---|---|
//! | `halves` | the first ⌊n/2⌋ names (sorted) \| the rest |
//! | `random-halves` | the same after a shuffle |
//! | `one` | one random node \| the rest |
//! | `majority` | a random majority (⌊n/2⌋+1) \| the rest |
//! | `sizes 2,2,1` | random islands of those sizes (they must add up to n) |
//! | `bridge` | random halves, minus one node of the second half that keeps links to both |
//! | `ring` | every node sees a majority, no two see the same one |

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::names::Pattern;
use super::rules::Islands;
use crate::base::rng::Rng;
use crate::base::words::{agree, count};

/// The shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    Halves,
    RandomHalves,
    One,
    Majority,
    Sizes(Vec<usize>),
    Bridge,
    Ring,
}

/// The shapes `chaos start ... shapes` may name (every shape but `sizes`,
/// which needs its sizes), by that name.
pub const CHAOS_SHAPES: &[(&str, Shape)] = &[
    ("halves", Shape::Halves),
    ("random-halves", Shape::RandomHalves),
    ("one", Shape::One),
    ("majority", Shape::Majority),
    ("bridge", Shape::Bridge),
    ("ring", Shape::Ring),
];

impl Shape {
    /// Its name in a `chaos start ... shapes` list (`sizes` has none).
    pub fn chaos_name(&self) -> Option<&'static str> {
        CHAOS_SHAPES
            .iter()
            .find(|(_, shape)| shape == self)
            .map(|(name, _)| *name)
    }

    /// Fewest nodes the shape can cut anything between.
    pub fn min_nodes(&self) -> usize {
        match self {
            Shape::Halves | Shape::RandomHalves | Shape::One => 2,
            Shape::Majority | Shape::Bridge | Shape::Ring => 3,
            Shape::Sizes(sizes) => sizes.iter().sum(),
        }
    }
}

/// The control command that applies the shape.
impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Halves => f.write_str("split halves"),
            Shape::RandomHalves => f.write_str("split random-halves"),
            Shape::One => f.write_str("split one"),
            Shape::Majority => f.write_str("split majority"),
            Shape::Sizes(sizes) => {
                let sizes: Vec<String> = sizes.iter().map(ToString::to_string).collect();
                write!(f, "split sizes {}", sizes.join(","))
            }
            Shape::Bridge => f.write_str("bridge"),
            Shape::Ring => f.write_str("ring"),
        }
    }
}

/// The islands of one `cut` command; each island sorted by name.
pub type CutIslands = Vec<Vec<String>>;

/// What a shape applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub shape: Shape,
    /// The bridge node of `bridge`; `None` for the other shapes.
    pub bridge: Option<String>,
    /// The cuts, in the order they are applied. Together they are the
    /// whole layout; each is one `cut A | B [| C]` line.
    pub cuts: Vec<CutIslands>,
}

impl Layout {
    /// The cuts as `cut a,b | c` lines.
    pub fn cut_lines(&self) -> Vec<String> {
        self.cuts.iter().map(cut_line).collect()
    }

    /// The cuts as the islands of patterns the fault model stores.
    pub fn islands(&self) -> Vec<Islands> {
        self.cuts.iter().map(cut_islands_patterns).collect()
    }
}

/// One cut's islands as patterns (`n1` names the node on any host).
pub fn cut_islands_patterns(islands: &CutIslands) -> Islands {
    islands
        .iter()
        .map(|island| island.iter().cloned().map(Pattern::Alive).collect())
        .collect()
}

/// `cut a,b | c` for one set of islands.
pub fn cut_line(islands: &CutIslands) -> String {
    let islands: Vec<String> = islands.iter().map(|island| island.join(",")).collect();
    format!("cut {}", islands.join(" | "))
}

/// The strict majority of `n`.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// Lays `shape` out over `nodes` (any order; duplicates ignored), drawing
/// from `rng`. Err says why the shape does not fit that many nodes.
pub fn layout(shape: &Shape, nodes: &[String], rng: &mut Rng) -> Result<Layout, String> {
    let sorted: Vec<String> = nodes
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let n = sorted.len();
    check_fits(shape, n)?;
    let shuffled = |rng: &mut Rng| {
        let mut order = sorted.clone();
        rng.shuffle(&mut order);
        order
    };
    let mut bridge = None;
    let cuts = match shape {
        Shape::Halves => vec![bisect(&sorted)],
        Shape::RandomHalves => vec![bisect(&shuffled(rng))],
        Shape::One => {
            // n ≥ 2 was checked above, so there is a node to pick.
            let Some(alone) = rng.choose(&sorted).cloned() else {
                return Err(format!("{shape}: no node to pick"));
            };
            let rest = sorted.iter().filter(|&name| *name != alone).cloned();
            let rest: Vec<String> = rest.collect();
            vec![vec![vec![alone], rest]]
        }
        Shape::Majority => {
            let order = shuffled(rng);
            let (big, small) = order.split_at(majority(n));
            vec![vec![sorted_island(big), sorted_island(small)]]
        }
        Shape::Sizes(sizes) => {
            // The sizes add up to n (checked above): each island takes the
            // next `size` nodes of the shuffled order.
            let mut order = shuffled(rng).into_iter();
            let islands = sizes
                .iter()
                .map(|&size| {
                    let mut island: Vec<String> = order.by_ref().take(size).collect();
                    island.sort();
                    island
                })
                .collect();
            vec![islands]
        }
        Shape::Bridge => {
            // Jepsen's bridge: bisect, and the first node of the second
            // half keeps its links to both halves.
            let order = shuffled(rng);
            let (first, second) = order.split_at(n / 2);
            // n ≥ 3 was checked above, so the second half is not empty.
            let Some((middle, rest)) = second.split_first() else {
                return Err(format!("{shape}: no node for the bridge"));
            };
            bridge = Some(middle.clone());
            vec![vec![sorted_island(first), sorted_island(rest)]]
        }
        Shape::Ring => ring_cuts(&sorted, &ring_links(n, rng)),
    };
    Ok(Layout {
        shape: shape.clone(),
        bridge,
        cuts,
    })
}

/// Err says why `shape` cannot be laid out over `n` nodes.
fn check_fits(shape: &Shape, n: usize) -> Result<(), String> {
    if let Shape::Sizes(sizes) = shape {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err("split sizes needs two or more sizes of at least 1".to_owned());
        }
        if sizes.iter().sum::<usize>() != n {
            return Err(format!(
                "{shape}: the sizes add up to {}, but there are {n} nodes to split",
                sizes.iter().sum::<usize>()
            ));
        }
    } else if n < shape.min_nodes() {
        return Err(format!(
            "{shape} needs at least {} that are not exempt; there {} {n}",
            count(shape.min_nodes(), "node"),
            agree(n, "is", "are")
        ));
    }
    Ok(())
}

fn sorted_island(names: &[String]) -> Vec<String> {
    let mut island = names.to_vec();
    island.sort();
    island
}

/// The smaller half first, as Jepsen's `bisect`.
fn bisect(order: &[String]) -> CutIslands {
    let (first, second) = order.split_at(order.len() / 2);
    vec![sorted_island(first), sorted_island(second)]
}

/// Who sees whom in a majorities ring over `n` nodes, as closed
/// neighbourhoods (each node sees itself). Links are symmetric: an Erlang
/// link that cannot carry bytes one way is soon down both ways.
///
/// - 3 nodes: a path a–b–c (a full ring of 3 is everyone).
/// - 4 and 5 nodes: an exact ring in random order, each node seeing its two
///   neighbours.
/// - 6 and more: stochastic, as Jepsen's: link a least-connected node to a
///   least-connected node it does not see yet until every node sees a
///   majority; redrawn while two nodes would see the same set, and after
///   [`RING_ATTEMPTS`] draws, a wider exact ring (each node sees its k
///   nearest on each side, with 2k+1 ≥ majority and 2k+1 < n).
fn ring_links(n: usize, rng: &mut Rng) -> Vec<BTreeSet<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    if n <= 3 {
        let mut sees: Vec<BTreeSet<usize>> = (0..n).map(|i| BTreeSet::from([i])).collect();
        for (&a, &b) in order.iter().zip(order.iter().skip(1)) {
            link(&mut sees, a, b);
        }
        return sees;
    }
    if n <= 5 {
        return circulant(&order, 1);
    }
    for _ in 0..RING_ATTEMPTS {
        let sees = stochastic_ring(n, rng);
        if all_distinct(&sees) {
            return sees;
        }
    }
    circulant(&order, (majority(n) - 1).div_ceil(2))
}

/// How many stochastic rings are drawn before falling back to an exact one.
pub const RING_ATTEMPTS: usize = 64;

/// Links `a` and `b` both ways (indexes past `sees` are ignored).
fn link(sees: &mut [BTreeSet<usize>], a: usize, b: usize) {
    if let Some(seen) = sees.get_mut(a) {
        seen.insert(b);
    }
    if let Some(seen) = sees.get_mut(b) {
        seen.insert(a);
    }
}

/// Each node in `order` sees the `k` nodes on each side of it.
fn circulant(order: &[usize], k: usize) -> Vec<BTreeSet<usize>> {
    let n = order.len();
    let mut sees: Vec<BTreeSet<usize>> = (0..n).map(|i| BTreeSet::from([i])).collect();
    for (position, &node) in order.iter().enumerate() {
        // the next k in the ring, wrapping around
        for &other in order.iter().cycle().skip(position + 1).take(k) {
            link(&mut sees, node, other);
        }
    }
    sees
}

fn stochastic_ring(n: usize, rng: &mut Rng) -> Vec<BTreeSet<usize>> {
    let need = majority(n);
    let mut sees: Vec<BTreeSet<usize>> = (0..n).map(|i| BTreeSet::from([i])).collect();
    loop {
        let least = sees.iter().map(BTreeSet::len).min().unwrap_or(need);
        if least >= need {
            break;
        }
        // Neither pick below can find its list empty: `least` is some
        // node's count, and `a` sees fewer than a majority, so it has
        // strangers.
        let lonely: Vec<(usize, &BTreeSet<usize>)> = sees
            .iter()
            .enumerate()
            .filter(|(_, seen)| seen.len() == least)
            .collect();
        let Some(&(a, seen_by_a)) = rng.choose(&lonely) else {
            break;
        };
        // (index, how many it sees) of each node `a` does not see
        let strangers: Vec<(usize, usize)> = sees
            .iter()
            .enumerate()
            .filter(|(j, _)| !seen_by_a.contains(j))
            .map(|(j, seen)| (j, seen.len()))
            .collect();
        let fewest = strangers.iter().map(|&(_, len)| len).min().unwrap_or(0);
        let candidates: Vec<usize> = strangers
            .into_iter()
            .filter(|&(_, len)| len == fewest)
            .map(|(j, _)| j)
            .collect();
        let Some(&b) = rng.choose(&candidates) else {
            break;
        };
        link(&mut sees, a, b);
    }
    sees
}

fn all_distinct(sees: &[BTreeSet<usize>]) -> bool {
    let unique: BTreeSet<&BTreeSet<usize>> = sees.iter().collect();
    unique.len() == sees.len()
}

/// The cuts that leave exactly `sees`: for each node in name order, one
/// `cut node | the later nodes it must not see`.
fn ring_cuts(sorted: &[String], sees: &[BTreeSet<usize>]) -> Vec<CutIslands> {
    let mut cuts = Vec::new();
    for (i, (name, seen)) in sorted.iter().zip(sees).enumerate() {
        let unseen: Vec<String> = sorted
            .iter()
            .enumerate()
            .skip(i + 1)
            .filter(|(j, _)| !seen.contains(j))
            .map(|(_, other)| other.clone())
            .collect();
        if !unseen.is_empty() {
            cuts.push(vec![vec![name.clone()], unseen]);
        }
    }
    cuts
}

/// Whom each node still reaches (itself included) once `cuts` are applied:
/// two nodes reach each other unless some cut puts them on different
/// islands. For checking layouts.
pub fn reachable(nodes: &[String], cuts: &[CutIslands]) -> BTreeMap<String, BTreeSet<String>> {
    let island_of = |islands: &CutIslands, name: &str| {
        islands
            .iter()
            .position(|island| island.iter().any(|member| member == name))
    };
    let separated = |a: &str, b: &str| {
        cuts.iter().any(
            |islands| match (island_of(islands, a), island_of(islands, b)) {
                (Some(x), Some(y)) => x != y,
                _ => false,
            },
        )
    };
    nodes
        .iter()
        .map(|a| {
            let seen = nodes
                .iter()
                .filter(|b| a == *b || !separated(a, b))
                .cloned()
                .collect();
            (a.clone(), seen)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    /// Islands of a single-cut layout, as sets, with their sizes sorted.
    fn one_cut(layout: &Layout) -> &CutIslands {
        assert_eq!(layout.cuts.len(), 1, "{layout:?}");
        &layout.cuts[0]
    }

    /// Every node of `nodes` in exactly one island.
    fn assert_partition(islands: &CutIslands, nodes: &[String]) {
        let mut all: Vec<String> = islands.iter().flatten().cloned().collect();
        all.sort();
        assert_eq!(all, nodes, "islands {islands:?}");
    }

    fn sizes(islands: &CutIslands) -> Vec<usize> {
        islands.iter().map(Vec::len).collect()
    }

    #[test]
    fn halves_are_sorted_and_smaller_first() {
        for n in 1..=9 {
            let nodes = names(n);
            let result = layout(&Shape::Halves, &nodes, &mut Rng::new(1));
            if n < 2 {
                assert!(result.is_err());
                continue;
            }
            let layout = result.expect("fits");
            let islands = one_cut(&layout);
            assert_partition(islands, &nodes);
            assert_eq!(sizes(islands), vec![n / 2, n - n / 2]);
            assert_eq!(islands[0], nodes[..n / 2].to_vec(), "the first names");
        }
        let layout = layout(&Shape::Halves, &names(5), &mut Rng::new(1)).expect("fits");
        assert_eq!(layout.cut_lines(), vec!["cut n1,n2 | n3,n4,n5"]);
    }

    #[test]
    fn random_halves_one_and_majority() {
        for n in 1..=9 {
            let nodes = names(n);
            for seed in 0..20 {
                let mut rng = Rng::new(seed);
                for (shape, want) in [
                    (Shape::RandomHalves, vec![n / 2, n - n / 2]),
                    (Shape::One, vec![1, n.saturating_sub(1)]),
                    (Shape::Majority, vec![majority(n), n - majority(n)]),
                ] {
                    match layout(&shape, &nodes, &mut rng) {
                        Err(_) => assert!(n < shape.min_nodes(), "{shape} on {n}"),
                        Ok(layout) => {
                            let islands = one_cut(&layout);
                            assert_partition(islands, &nodes);
                            assert_eq!(sizes(islands), want, "{shape} on {n}");
                            assert!(islands.iter().all(|island| !island.is_empty()));
                        }
                    }
                }
            }
        }
        // The random shapes do move: over seeds, every node is alone once.
        let nodes = names(5);
        let alone: BTreeSet<String> = (0..50)
            .map(|seed| {
                let layout = layout(&Shape::One, &nodes, &mut Rng::new(seed)).expect("fits");
                one_cut(&layout)[0][0].clone()
            })
            .collect();
        assert_eq!(alone.len(), 5);
    }

    #[test]
    fn sizes_must_add_up() {
        for n in 1..=9 {
            let nodes = names(n);
            // every way to write n as two or three sizes
            for a in 1..n {
                for b in 1..=n - a {
                    let sizes_wanted = if a + b == n {
                        vec![a, b]
                    } else {
                        vec![a, b, n - a - b]
                    };
                    let shape = Shape::Sizes(sizes_wanted.clone());
                    let layout = layout(&shape, &nodes, &mut Rng::new(n as u64)).expect("fits");
                    let islands = one_cut(&layout);
                    assert_partition(islands, &nodes);
                    assert_eq!(sizes(islands), sizes_wanted);
                }
            }
            assert!(layout(&Shape::Sizes(vec![n, 1]), &nodes, &mut Rng::new(0)).is_err());
            assert!(layout(&Shape::Sizes(vec![n]), &nodes, &mut Rng::new(0)).is_err());
            assert!(layout(&Shape::Sizes(vec![0, n]), &nodes, &mut Rng::new(0)).is_err());
        }
    }

    #[test]
    fn bridge_node_reaches_everyone_and_the_halves_are_apart() {
        for n in 1..=9 {
            let nodes = names(n);
            for seed in 0..20 {
                let result = layout(&Shape::Bridge, &nodes, &mut Rng::new(seed));
                if n < 3 {
                    assert!(result.is_err());
                    continue;
                }
                let layout = result.expect("fits");
                let bridge = layout.bridge.clone().expect("a bridge node");
                let islands = one_cut(&layout);
                assert_eq!(sizes(islands), vec![n / 2, n - n / 2 - 1]);
                let mut all: Vec<String> = islands.iter().flatten().cloned().collect();
                all.push(bridge.clone());
                all.sort();
                assert_eq!(all, nodes);
                let seen = reachable(&nodes, &layout.cuts);
                assert_eq!(seen[&bridge].len(), n, "the bridge sees all");
                for a in &islands[0] {
                    for b in &islands[1] {
                        assert!(!seen[a].contains(b), "{a} and {b} are apart");
                    }
                }
                for island in islands {
                    for a in island {
                        // its own half and the bridge
                        assert_eq!(seen[a].len(), island.len() + 1);
                    }
                }
            }
        }
    }

    /// The majorities-ring property on `n` nodes with `seed`.
    fn check_ring(n: usize, seed: u64) {
        let nodes = names(n);
        let result = layout(&Shape::Ring, &nodes, &mut Rng::new(seed));
        if n < 3 {
            assert!(result.is_err());
            return;
        }
        let layout = result.expect("fits");
        let seen = reachable(&nodes, &layout.cuts);
        for (node, set) in &seen {
            assert!(set.len() >= majority(n), "{node} sees {set:?} on {n}");
            assert!(set.contains(node));
        }
        let distinct: BTreeSet<&BTreeSet<String>> = seen.values().collect();
        assert_eq!(
            distinct.len(),
            n,
            "all reachable sets differ on {n} (seed {seed})"
        );
        for cut in &layout.cuts {
            assert_eq!(cut.len(), 2);
            assert_eq!(cut[0].len(), 1);
        }
        if (4..=5).contains(&n) {
            // exact: a ring, everyone sees exactly its two neighbours
            assert!(seen.values().all(|set| set.len() == 3), "{seen:?}");
        }
    }

    #[test]
    fn ring_gives_every_node_a_different_majority() {
        for n in 1..=9 {
            for seed in 0..200 {
                check_ring(n, seed);
            }
        }
    }

    #[test]
    fn ring_on_five_is_exact() {
        let layout = layout(&Shape::Ring, &names(5), &mut Rng::new(3)).expect("fits");
        let pairs: usize = layout.cuts.iter().map(|cut| cut[1].len()).sum();
        assert_eq!(
            pairs, 5,
            "a 5-ring cuts each node from its 2 non-neighbours"
        );
    }

    #[test]
    fn the_fallback_ring_is_exact_too() {
        for n in 4..=40 {
            let mut order: Vec<usize> = (0..n).collect();
            Rng::new(n as u64).shuffle(&mut order);
            let k = (majority(n) - 1).div_ceil(2);
            let sees = circulant(&order, k);
            assert!(all_distinct(&sees), "{n}");
            assert!(sees.iter().all(|set| set.len() >= majority(n)), "{n}");
        }
    }

    #[test]
    fn same_seed_same_layouts() {
        let nodes = names(7);
        let shapes = [
            Shape::RandomHalves,
            Shape::One,
            Shape::Majority,
            Shape::Sizes(vec![3, 2, 2]),
            Shape::Bridge,
            Shape::Ring,
        ];
        let run = |seed| {
            let mut rng = Rng::new(seed);
            shapes
                .iter()
                .map(|shape| layout(shape, &nodes, &mut rng).expect("fits"))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11), run(12));
        // Node names only matter through their order.
        let suffixed: Vec<String> = nodes.iter().map(|n| format!("{n}_4711")).collect();
        let mut a = Rng::new(5);
        let mut b = Rng::new(5);
        let plain = layout(&Shape::Ring, &nodes, &mut a).expect("fits");
        let other = layout(&Shape::Ring, &suffixed, &mut b).expect("fits");
        let strip = |lines: Vec<String>| lines.join(";").replace("_4711", "");
        assert_eq!(strip(plain.cut_lines()), strip(other.cut_lines()));
    }

    #[test]
    fn input_order_and_duplicates_do_not_matter() {
        let mut shuffled = names(6);
        shuffled.reverse();
        shuffled.push("n3".to_owned());
        let a = layout(&Shape::Ring, &names(6), &mut Rng::new(9)).expect("fits");
        let b = layout(&Shape::Ring, &shuffled, &mut Rng::new(9)).expect("fits");
        assert_eq!(a, b);
    }

    #[test]
    fn shapes_print_as_their_command() {
        assert_eq!(Shape::Sizes(vec![2, 2, 1]).to_string(), "split sizes 2,2,1");
        assert_eq!(Shape::RandomHalves.to_string(), "split random-halves");
        assert_eq!(Shape::Ring.to_string(), "ring");
        assert_eq!(Shape::One.chaos_name(), Some("one"));
        assert_eq!(Shape::Sizes(vec![1, 1]).chaos_name(), None);
    }
}
