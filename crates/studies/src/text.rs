//! Planted texts: pseudo-random hex codes, UUIDs and one-digit edits.

use cfmem::hash::SplitMix64;

/// A deterministic stream of pseudo-random hex digits.
pub(crate) struct Hex(SplitMix64);

impl Hex {
    pub(crate) fn new(seed: u64) -> Self {
        Self(SplitMix64::new(seed))
    }

    pub(crate) fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from_digit(self.0.below(16) as u32, 16).unwrap_or('0'))
            .collect()
    }

    pub(crate) fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-a{}-{}",
            self.digits(8),
            self.digits(4),
            self.digits(3),
            self.digits(3),
            self.digits(12)
        )
    }

    /// `text` with one hex digit of its code (the last 32 characters)
    /// replaced by a different one.
    pub(crate) fn edit(&mut self, text: &str) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        let at = chars.len() - 1 - self.0.below(32) as usize;
        let old = chars[at];
        let mut new = old;
        while new == old {
            new = char::from_digit(self.0.below(16) as u32, 16).unwrap_or('0');
        }
        chars[at] = new;
        chars.into_iter().collect()
    }
}

/// `The secret code is CODE`.
pub(crate) fn secret(code: &str) -> String {
    format!("The secret code is {code}")
}
