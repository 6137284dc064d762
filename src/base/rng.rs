//! The one seeded random generator. Every random choice the proxy makes —
//! a shape's islands, a chaos step, a delayed chunk's jitter — draws from
//! an [`Rng`] derived from the proxy's seed (`--seed`, `seed N`), so a run
//! replays from that one number.

/// A small, fast, seedable generator (splitmix64). Not cryptographic; its
/// only job is to make every random choice replayable from one number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// A generator of its own for stream `stream` (e.g. a link's id) of
    /// the run seeded with `seed`: the same pair always gives the same
    /// numbers, and different streams do not repeat each other.
    pub fn for_stream(seed: u64, stream: u64) -> Rng {
        let mut mixer = Rng::new(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        Rng::new(mixer.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `0..n` (0 when `n` is 0 or 1), without modulo
    /// bias: draws past the last whole multiple of `n` are redrawn.
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        let n = n as u64;
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return (x % n) as usize;
            }
        }
    }

    /// A uniform pick from `items` (`None` when it is empty), drawing as
    /// `below(items.len())` does.
    pub fn choose<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// A random stream with the seed it started from (what `status` shows and
/// `seed N` sets), advanced by every random choice.
#[derive(Clone, Debug)]
pub struct Seeded {
    pub seed: u64,
    pub rng: Rng,
}

impl Seeded {
    pub fn new(seed: u64) -> Seeded {
        Seeded {
            seed,
            rng: Rng::new(seed),
        }
    }
}

/// A seed for when the user gave none: the clock and the process id,
/// mixed so that two proxies started in the same second differ.
pub fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut rng = Rng::new(nanos ^ (u64::from(std::process::id()) << 32));
    // Keep it short enough to type: 12 decimal digits at most.
    rng.next_u64() % 1_000_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_replay_from_their_seed_and_differ_from_each_other() {
        let draw = |seed, stream| {
            let mut rng = Rng::for_stream(seed, stream);
            (0..8).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(11, 1), draw(11, 1));
        assert_ne!(draw(11, 1), draw(12, 1));
        assert_ne!(draw(11, 1), draw(11, 2));
        assert!(fresh_seed() < 1_000_000_000_000);
    }

    #[test]
    fn rng_is_deterministic_and_spreads() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(Rng::new(43).next_u64(), xs[0]);
        // splitmix64's published first output for seed 0
        assert_eq!(Rng::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
        let mut counts = [0usize; 5];
        let mut rng = Rng::new(7);
        for _ in 0..5000 {
            counts[rng.below(5)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (900..1100).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.below(1), 0);
    }
}
