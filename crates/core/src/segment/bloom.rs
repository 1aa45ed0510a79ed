//! A bloom filter over primary keys, persisted in a segment's statistics so deletes
//! can skip segments that cannot hold the key. Hashing uses `Pk::stable_hash` (xxh3),
//! which is part of the on-storage format and must never change.

use serde::{Deserialize, Serialize};

use crate::batch::Pk;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bloom {
    bits: Vec<u64>,
    k: u32,
}

impl Bloom {
    /// A filter sized for `n` keys at false-positive rate `fpr`.
    pub fn with_capacity(n: usize, fpr: f64) -> Self {
        let n = n.max(1) as f64;
        let m = (-(n * fpr.ln()) / (std::f64::consts::LN_2.powi(2))).ceil() as usize;
        let m = m.clamp(64, 1 << 34);
        let k = ((m as f64 / n) * std::f64::consts::LN_2)
            .round()
            .clamp(1.0, 16.0) as u32;
        Bloom {
            bits: vec![0; m.div_ceil(64)],
            k,
        }
    }

    fn positions(&self, pk: &Pk) -> impl Iterator<Item = usize> + '_ {
        let h = pk.stable_hash();
        let h1 = h as u32 as u64;
        let h2 = (h >> 32) | 1;
        let m = self.bits.len() as u64 * 64;
        (0..self.k as u64).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % m) as usize)
    }

    pub fn insert(&mut self, pk: &Pk) {
        let pos: Vec<usize> = self.positions(pk).collect();
        for p in pos {
            self.bits[p / 64] |= 1 << (p % 64);
        }
    }

    pub fn may_contain(&self, pk: &Pk) -> bool {
        if self.bits.is_empty() {
            return false;
        }
        self.positions(pk)
            .all(|p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let mut b = Bloom::with_capacity(1000, 0.01);
        for i in 0..1000 {
            b.insert(&Pk::Int(i));
        }
        assert!((0..1000).all(|i| b.may_contain(&Pk::Int(i))));
        let fp = (1000..11000)
            .filter(|&i| b.may_contain(&Pk::Int(i)))
            .count();
        assert!(fp < 300, "{fp} false positives of 10000");
        b.insert(&Pk::Str("x".into()));
        assert!(b.may_contain(&Pk::Str("x".into())));
    }
}
