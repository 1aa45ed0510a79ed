//! Distance kernels and metrics.
//!
//! L2 uses anndists' runtime-dispatched SIMD `DistL2` (measured about 4x a scalar loop
//! here). anndists has no general inner product (its `DistDot` is `1 - dot` and asserts
//! a non-negative result, which rounding breaks even for normalized vectors), so IP and
//! COSINE use [`dot`], a multi-accumulator loop the compiler vectorizes. The criterion
//! benchmark in `benches/` keeps both honest.

use anndists::dist::{DistL2, Distance};
use serde::{Deserialize, Serialize};

/// A similarity metric as Milvus names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Metric {
    /// Squared Euclidean distance; smaller is closer.
    L2,
    /// Inner product; larger is closer.
    IP,
    /// Cosine similarity; larger is closer.
    Cosine,
}

impl Metric {
    /// Parses Milvus's metric names, case-insensitively.
    pub fn parse(s: &str) -> Option<Metric> {
        match s.to_ascii_uppercase().as_str() {
            "L2" => Some(Metric::L2),
            "IP" => Some(Metric::IP),
            "COSINE" => Some(Metric::Cosine),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Metric::L2 => "L2",
            Metric::IP => "IP",
            Metric::Cosine => "COSINE",
        }
    }

    /// Whether larger scores are better.
    pub fn higher_is_better(&self) -> bool {
        !matches!(self, Metric::L2)
    }

    /// The score a user sees for `query` against `v`. For COSINE the query must
    /// already be normalized (see [`Metric::prepare_query`]).
    #[inline]
    pub fn score(&self, query: &[f32], v: &[f32]) -> f32 {
        match self {
            Metric::L2 => l2_sq(query, v),
            Metric::IP => dot(query, v),
            Metric::Cosine => {
                let n = norm(v);
                if n == 0.0 {
                    0.0
                } else {
                    dot(query, v) / n
                }
            }
        }
    }

    /// Turns a score into a distance where smaller is always better.
    #[inline]
    pub fn to_distance(&self, score: f32) -> f32 {
        if self.higher_is_better() {
            -score
        } else {
            score
        }
    }

    /// Normalizes a COSINE query once instead of per comparison.
    pub fn prepare_query(&self, q: &[f32]) -> Vec<f32> {
        match self {
            Metric::Cosine => {
                let n = norm(q);
                if n == 0.0 {
                    q.to_vec()
                } else {
                    q.iter().map(|x| x / n).collect()
                }
            }
            _ => q.to_vec(),
        }
    }
}

/// Squared Euclidean distance via anndists' SIMD kernel.
#[inline]
pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    let d = DistL2.eval(a, b);
    d * d
}

/// Inner product with 16 independent accumulators (vectorized by the compiler).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 16];
    let chunks = a.len() / 16;
    for c in 0..chunks {
        let (x, y) = (&a[c * 16..c * 16 + 16], &b[c * 16..c * 16 + 16]);
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks * 16..a.len() {
        sum += a[i] * b[i];
    }
    sum
}

/// Squared Euclidean distance, the same 16-accumulator way (the benchmark's baseline).
#[inline]
pub fn l2_sq_plain(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let chunks = a.len() / 16;
    for c in 0..chunks {
        let (x, y) = (&a[c * 16..c * 16 + 16], &b[c * 16..c * 16 + 16]);
        for i in 0..16 {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks * 16..a.len() {
        let d = a[i] - b[i];
        sum += d * d;
    }
    sum
}

pub fn norm(v: &[f32]) -> f32 {
    dot(v, v).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_l2(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
    }

    proptest! {
        #[test]
        fn kernels_agree_with_naive_loops(v in proptest::collection::vec((-10f32..10.0, -10f32..10.0), 1..300)) {
            let (a, b): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
            let want = naive_l2(&a, &b);
            prop_assert!((l2_sq(&a, &b) - want).abs() <= 1e-3 * want.max(1.0));
            prop_assert!((l2_sq_plain(&a, &b) - want).abs() <= 1e-3 * want.max(1.0));
            let d: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            prop_assert!((dot(&a, &b) - d).abs() <= 1e-3 * d.abs().max(1.0));
        }
    }

    #[test]
    fn cosine_of_parallel_vectors_is_one() {
        let m = Metric::Cosine;
        let q = m.prepare_query(&[1.0, 2.0, 3.0]);
        assert!((m.score(&q, &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-6);
        assert_eq!(m.score(&q, &[0.0, 0.0, 0.0]), 0.0);
        assert_eq!(Metric::parse("cosine"), Some(Metric::Cosine));
        assert_eq!(Metric::parse("hamming"), None);
    }
}
