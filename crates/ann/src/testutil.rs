//! Test data: seeded clustered vectors and recall.

use quiver_core::rt::Rng;

/// `n` vectors of `dim` floats around 16 Gaussian cluster centres (the centres depend on
/// `dim` only, so different seeds draw from the same distribution).
pub(crate) fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut crng = Rng::seed_from_u64(1000 + dim as u64);
    let centres: Vec<f32> = (0..16 * dim).map(|_| 2.0 * crng.normal()).collect();
    let mut rng = Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.index(16);
        for x in &centres[c * dim..(c + 1) * dim] {
            out.push(x + rng.normal());
        }
    }
    out
}

/// |got ∩ want| / |want|, by row id.
pub(crate) fn recall(got: &[(u32, f32)], want: &[(u32, f32)]) -> f64 {
    if want.is_empty() {
        return 1.0;
    }
    let hits = got
        .iter()
        .filter(|g| want.iter().any(|w| w.0 == g.0))
        .count();
    hits as f64 / want.len() as f64
}

/// Mean recall over (got, want) pairs.
pub(crate) fn mean_recall<I>(pairs: I) -> f64
where
    I: IntoIterator<Item = (Vec<(u32, f32)>, Vec<(u32, f32)>)>,
{
    let (mut sum, mut n) = (0.0, 0usize);
    for (got, want) in pairs {
        sum += recall(&got, &want);
        n += 1;
    }
    if n == 0 {
        1.0
    } else {
        sum / n as f64
    }
}
