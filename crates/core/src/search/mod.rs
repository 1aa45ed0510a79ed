//! Exact (brute-force) vector search over segments and the top-k reduce that merges
//! per-segment, per-shard and per-proxy results.

pub mod brute;
pub mod distance;
pub mod topk;

pub use brute::{search_segment, ScoreRange, SearchRequest};
pub use distance::Metric;
pub use topk::{reduce, Hit};
