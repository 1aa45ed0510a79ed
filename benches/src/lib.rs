//! Benchmarks for Quiver. Criterion micro-benchmarks live in `benches/`:
//! `cargo bench --manifest-path benches/Cargo.toml`. This library holds what they
//! share: deterministic synthetic data.

use quiver_core::rt::Rng;

/// `n` vectors of `dim` floats drawn around 32 cluster centres, seeded.
pub fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::seed_from_u64(seed);
    let centres: Vec<f32> = (0..32 * dim).map(|_| rng.normal()).collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.index(32);
        for d in 0..dim {
            out.push(centres[c * dim + d] + 0.3 * rng.normal());
        }
    }
    out
}
