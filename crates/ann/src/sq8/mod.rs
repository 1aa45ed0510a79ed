//! SQ8 scalar quantization, and the two indexes that use it: HNSW_SQ8 and IVF_SQ8.
//!
//! Each dimension `d` is mapped linearly from the trained `[min_d, max_d]` to a byte:
//! `x ~ min_d + scale_d * code` with `scale_d = (max_d - min_d) / 255`. Distances are
//! asymmetric (the query stays f32, only the rows are quantized) and are computed on the
//! codes without decoding them:
//! - L2: `|q - x|^2 ~ sum((a_d - scale_d * code_d)^2)` with `a = q - min` per query;
//! - IP/COSINE: `q . x ~ q . min + sum((q_d * scale_d) * code_d)`.
//!
//! HNSW_SQ8 builds its graph on the full-precision vectors (the build costs the same
//! either way, and a graph built on exact distances has better links; the f32 rows are
//! kept anyway for re-ranking). A search walks the graph with SQ8 distances, which read a
//! quarter of the memory per node, then re-ranks its best `rerank` candidates with exact
//! f32 distances and returns the best `k` of those, so the distances it returns are
//! exact. IVF_SQ8 scans SQ8 codes in its lists and re-ranks the same way when it keeps
//! the f32 rows (`refine`, the default), or returns the SQ8 distances when it does not.
//!
//! Modules: `quantizer` (training, encoding and the f32-table SQ8 distances),
//! `int_kernel` (the 16-bit integer query table and oracle HNSW_SQ8 walks with),
//! `hnsw_sq8` and `ivf_sq8` (the two indexes); the exact re-rank both share is here.

mod hnsw_sq8;
mod int_kernel;
mod ivf_sq8;
mod quantizer;
#[cfg(test)]
mod tests;

use crate::distance::Space;
use crate::hnsw::{for_each_dist, F32Oracle};
use crate::util::KBest;

pub use hnsw_sq8::HnswSq8;
pub use ivf_sq8::IvfSq8;
pub use quantizer::Sq8;

/// Exact re-ranking: the best `k` of `cands` by f32 distance to prepared query `q` over
/// the padded rows `data` (indexed by row id).
pub(crate) fn rerank(
    space: &Space,
    q: &[f32],
    data: &[f32],
    cands: &[(u32, f32)],
    k: usize,
) -> Vec<(u32, f32)> {
    let o = F32Oracle::new(space, q, data);
    let mut top = KBest::new(k);
    for_each_dist(
        &o,
        cands.len(),
        |j| cands[j].0,
        |id, d| {
            if d <= top.worst() {
                top.push(d, id);
            }
        },
    );
    top.into_pairs()
}
