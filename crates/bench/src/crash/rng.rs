//! A small seeded random number generator (SplitMix64), so that a crash
//! run's choices (kill moments, conversations, body lengths) follow from
//! one printed seed. Not for anything secret.

/// SplitMix64: one `u64` of state, full period, good enough for test
/// choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator that starts from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A generator for part `i` of a run, independent of the others.
    pub fn split(seed: u64, i: u64) -> Self {
        let mut r = Self(seed ^ i.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi` (`lo` when `hi < lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo + 1;
        // The bias of a plain modulo is far below anything a test notices.
        lo + self.next_u64() % span
    }

    /// An index below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        usize::try_from(self.next_u64() % n as u64).unwrap_or(0)
    }
}

/// A seed from the clock, for runs that do not name one.
pub fn clock_seed() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // Keep it short enough to read out and type back.
    (now as u64 ^ u64::from(std::process::id())) % 1_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_choices() {
        let a: Vec<u64> = (0..5).map(|_| Rng::new(7).range(10, 20)).collect();
        let mut r = Rng::new(7);
        let b: Vec<u64> = (0..5).map(|_| r.range(10, 20)).collect();
        assert!(a.iter().all(|v| (10..=20).contains(v)));
        assert!(b.iter().all(|v| (10..=20).contains(v)));
        let mut r2 = Rng::new(7);
        let c: Vec<u64> = (0..5).map(|_| r2.range(10, 20)).collect();
        assert_eq!(b, c);
        assert_ne!(Rng::split(7, 1).next_u64(), Rng::split(7, 2).next_u64());
        assert_eq!(Rng::new(1).below(0), 0);
        assert_eq!(Rng::new(1).range(5, 5), 5);
    }
}
