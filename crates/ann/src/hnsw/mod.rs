//! HNSW (Malkov & Yashunin) on contiguous memory.
//!
//! Layout, chosen so a search touches few cache lines and a build allocates nothing per
//! node:
//! - vectors: one 64-byte aligned `f32` block, row `i` at `i * padded_dim` (rows padded
//!   with zeros to a multiple of 8 floats);
//! - level 0: one flat `u32` array with a fixed-width row per node,
//!   `[count, n_0, .., n_{2M-1}]` (`2M + 1` words; 132 bytes for M = 16);
//! - upper levels: most nodes (a fraction `1 - 1/M`) have none, so they live in a separate
//!   compact array: node `i` with level `L > 0` owns `L` consecutive rows of `M + 1` words
//!   starting at `upper_off[i]` (`u32::MAX` for level-0 nodes), plus `levels[i]` (a byte).
//!
//! Build: hnswlib's algorithm (greedy descent, `efConstruction` beam search per level,
//! neighbour selection by hnswlib's `getNeighborsByHeuristic2`, reverse links pruned by
//! the same heuristic). Levels are drawn up front from `Rng::seed_from_u64(seed)`, so a
//! single-threaded build is deterministic. With more threads, nodes are inserted
//! concurrently: links live in `AtomicU32`s during the build (relaxed loads compile to
//! plain loads), every list write happens under the owning node's striped lock, and a
//! thread only ever holds one lock, so there is no lock order to get wrong. Readers
//! never lock: a list read during a concurrent write can mix old and new entries, all of
//! them valid node ids, which only perturbs that one search.
//!
//! Search: greedy descent on the upper levels, then a beam search on level 0 with the
//! linear candidate pool from `util` (no heaps), an epoch-stamped visited array, and
//! software prefetch of the next candidate's links and of neighbour vectors a few nodes
//! ahead of the distance loop. Filtered search keeps traversing through rows the filter
//! rejects but only admits allowed rows to the results; when the caller's count of
//! allowed rows makes an exact scan of them cheaper than that walk (a cost model,
//! [`hnsw_prefers_exact`]), it scans them exactly instead.
//!
//! Modules: `graph` (link storage, the graph view, distance oracles, prefetch sizing),
//! `walk` (the distance loop, greedy descent, the level beam search), `search` (the
//! index's unfiltered search), `filtered` (the filtered walk and the cost model that
//! picks it or an exact scan), `build` (level draws, upper-level layout, the build
//! driver and the links-in-range invariant) and `insert` (one node's insertion and its
//! links). The search pool and visited set are in `crate::util`.

mod build;
mod filtered;
mod graph;
mod insert;
mod search;
#[cfg(test)]
mod tests;
mod walk;

use serde::{Deserialize, Serialize};

use crate::distance::Space;
use crate::util::AlignedBuf;

pub(crate) use build::upper_layout;
pub use filtered::{hnsw_prefers_exact, prefer_brute_force, BRUTE_FORCE_FRACTION};
pub(crate) use graph::{prefetch_ahead, prefetch_line_count, F32Oracle, Graph, Oracle};
pub(crate) use walk::for_each_dist;

/// Highest level a node can get (levels are stored in a byte).
pub const MAX_LEVEL: usize = 31;
/// Largest `M` accepted (Milvus's limit).
pub const MAX_M: usize = 2048;
/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 0x5155_4956_4552; // "QUIVER"
/// Row ids must stay below 2^31: the search pool uses bit 31 as a flag.
pub const MAX_ROWS: usize = (1 << 31) - 1;

/// HNSW build parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Links per node on upper levels; level 0 keeps up to `2 * m`.
    pub m: usize,
    /// Beam width while inserting.
    pub ef_construction: usize,
    /// Seed of the level draws.
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            seed: DEFAULT_SEED,
        }
    }
}

/// An HNSW index over `f32` vectors.
#[derive(Debug, Clone)]
pub struct Hnsw {
    pub(crate) space: Space,
    pub(crate) n: usize,
    pub(crate) m: usize,
    pub(crate) ef_construction: usize,
    pub(crate) seed: u64,
    pub(crate) vectors: AlignedBuf,
    pub(crate) links0: Vec<u32>,
    pub(crate) levels: Vec<u8>,
    pub(crate) upper_off: Vec<u32>,
    pub(crate) upper: Vec<u32>,
    pub(crate) entry: u32,
    pub(crate) max_level: usize,
}

impl Hnsw {
    pub(crate) fn graph(&self) -> Graph<'_, [u32]> {
        Graph {
            links0: &self.links0[..],
            upper: &self.upper[..],
            upper_off: &self.upper_off,
            m: self.m,
            n: self.n,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn space(&self) -> &Space {
        &self.space
    }

    pub fn params(&self) -> HnswParams {
        HnswParams {
            m: self.m,
            ef_construction: self.ef_construction,
            seed: self.seed,
        }
    }

    /// Heap bytes of the structure, vectors included.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.vectors.heap_bytes()
            + self.links0.capacity() * 4
            + self.levels.capacity()
            + self.upper_off.capacity() * 4
            + self.upper.capacity() * 4
    }
}
