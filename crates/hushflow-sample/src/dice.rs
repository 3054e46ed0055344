//! The one source of randomness. Every draw goes through `next_u64` of a seeded ChaCha8 stream
//! and is mapped to a range here, not by `rand`'s distributions, so that the output depends only
//! on the ChaCha8 key stream (which is fixed by its specification) and stays byte-identical
//! across `rand` releases.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub(crate) struct Dice {
    rng: ChaCha8Rng,
}

impl Dice {
    pub(crate) fn new(seed: u64) -> Self {
        Dice {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// A number in `0..n`; `n` must be positive. Multiply-shift mapping: the bias is below
    /// `n / 2^64`, far under anything a sample could show.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.rng.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub(crate) fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// True with probability `per_mille / 1000`.
    pub(crate) fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// One element of a non-empty list.
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())]
    }

    /// One element of a non-empty list, by reference.
    pub(crate) fn pick_ref<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    pub(crate) fn digit(&mut self) -> u8 {
        self.below(10) as u8
    }

    /// Appends `template` with `#` replaced by a digit, `^` by a non-zero digit and `@` by an
    /// upper-case letter; other characters are copied.
    pub(crate) fn expand(&mut self, out: &mut String, template: &str) {
        const LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";
        for c in template.chars() {
            match c {
                '#' => out.push(char::from(b'0' + self.digit())),
                '^' => out.push(char::from(b'1' + self.below(9) as u8)),
                '@' => out.push(char::from(self.pick(LETTERS))),
                other => out.push(other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_range() {
        let mut d = Dice::new(7);
        for _ in 0..10_000 {
            assert!(d.below(3) < 3);
            let v = d.between(5, 9);
            assert!((5..=9).contains(&v));
            assert!(d.digit() < 10);
        }
    }

    #[test]
    fn expand_fills_placeholders() {
        let mut d = Dice::new(1);
        let mut s = String::new();
        d.expand(&mut s, "^#-@ x");
        let b = s.as_bytes();
        assert_eq!(s.len(), 6);
        assert!((b'1'..=b'9').contains(&b[0]));
        assert!(b[1].is_ascii_digit());
        assert_eq!(b[2], b'-');
        assert!(b[3].is_ascii_uppercase());
        assert_eq!(&s[4..], " x");
    }
}
