//! quiver-ann: Quiver's approximate-nearest-neighbour engine.
//!
//! This crate owns index code only: building, searching and (de)serializing FLAT, HNSW,
//! HNSW_SQ8, IVF_FLAT and IVF_SQ8 indexes over a dense block of `f32` row vectors whose
//! row ids are their positions. It does no storage or I/O beyond turning an index into
//! bytes and back ([`serialize`]); where those bytes live, which rows are deleted or
//! invisible (passed in as an allowed-rows [`Bitset`]) and how rows map to primary keys
//! is the caller's business.
//!
//! Determinism and threads: randomness comes only from seeded [`quiver_core::rt::Rng`]s,
//! and builds take a `threads` count that callers set to
//! [`quiver_core::rt::compute_parallelism()`] (1 under the simulator, where [`quiver_core::rt::par`] runs
//! everything inline). A single-threaded build is bit-for-bit reproducible.
//!
//! Scores: every index ranks internally by a distance where smaller is better (squared
//! L2, or the negated inner product for IP and COSINE). [`AnnIndex::search`] returns
//! Milvus scores (L2 ascending, IP/COSINE similarity descending); the per-index `search`
//! methods return the internal distances (see [`distance`]).

pub mod bitset;
pub mod distance;
pub mod error;
pub mod flat;
pub mod hnsw;
pub mod index;
pub mod ivf;
pub mod serialize;
pub mod sq8;
mod util;

#[cfg(test)]
mod testutil;

pub use bitset::Bitset;
pub use distance::Space;
pub use error::AnnError;
pub use flat::FlatIndex;
pub use hnsw::{Hnsw, HnswParams};
pub use index::{AnnIndex, IndexKind, IndexParams, SearchParams};
pub use ivf::{IvfFlat, IvfParams};
pub use quiver_core::search::distance::Metric;
pub use serialize::fuzz;
pub use sq8::{HnswSq8, IvfSq8, Sq8};
