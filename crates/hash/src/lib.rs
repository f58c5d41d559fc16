//! Small, portable, seeded hashing and random numbers, shared by the
//! trainer (`cfmem-core`: batch order) and the analysis (`cfmem-analysis`:
//! membership designs, synthetic data).
//!
//! Memberships and batch orders must be pure functions of `(seed, model,
//! unit)` that never change between versions or platforms, so they use
//! SplitMix64 (Steele, Lea & Flood 2014) written out here rather than a
//! library generator whose stream may change between releases. It lives in
//! its own dependency-free crate because the trainer and the analysis must
//! agree on it and neither may depend on the other.
//!
//! ```
//! use cfmem_hash::{hash_words, splitmix, SplitMix64};
//!
//! let mut rng = SplitMix64::new(7);
//! assert_eq!(rng.next_u64(), splitmix(7));
//! assert_ne!(hash_words(&[1, 2]), hash_words(&[2, 1]));
//! ```
#![deny(missing_docs)]

/// The golden-ratio increment of SplitMix64.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's finaliser: a bijective 64-bit mixer.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One SplitMix64 step from state `x`: `mix64(x + golden)`, the first
/// output of [`SplitMix64::new(x)`](SplitMix64::new). A well-mixed hash of
/// `x`.
pub fn splitmix(x: u64) -> u64 {
    mix64(x.wrapping_add(GOLDEN))
}

/// Hash of a sequence of words, each folded through [`splitmix`].
pub fn hash_words(words: &[u64]) -> u64 {
    let mut h = GOLDEN;
    for &w in words {
        h = mix64(h ^ splitmix(w));
    }
    h
}

/// The top 53 bits of `x` as a uniform number in `[0, 1)`.
pub fn unit_f64(x: u64) -> f64 {
    (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix64(self.state)
    }

    /// A uniform number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        unit_f64(self.next_u64())
    }

    /// A standard normal deviate (Box–Muller, one of the pair).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A uniform integer in `0..n`, by Lemire's multiply-shift with
    /// rejection, so it has no modulo bias. `n == 0` gives 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let threshold = n.wrapping_neg() % n;
        loop {
            let x = self.next_u64();
            let m = (x as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_reference_stream() {
        // Reference values of SplitMix64 seeded with 1234567 (from the
        // published C implementation, splitmix64.c by S. Vigna).
        let mut g = SplitMix64::new(1_234_567);
        let want = [
            6_457_827_717_110_365_317u64,
            3_203_168_211_198_807_973,
            9_817_491_932_198_370_423,
            4_593_380_528_125_082_431,
            16_408_922_859_458_223_821,
        ];
        for w in want {
            assert_eq!(g.next_u64(), w);
        }
        assert_eq!(splitmix(1_234_567), want[0]);
    }

    #[test]
    fn below_is_in_range_and_covers_it() {
        let mut g = SplitMix64::new(3);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let x = g.below(7) as usize;
            seen[x] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(g.below(0), 0);
    }

    #[test]
    fn normal_has_unit_moments() {
        let mut g = SplitMix64::new(9);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| g.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        // SE of the mean 1/√n ≈ 0.0022; of the variance √(2/n) ≈ 0.0032.
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.015,
            "{mean} {var}"
        );
    }
}
