//! The typed bodies that several internal APIs share: a read's scope and a vector
//! search with its index knobs, parsed once at the proxy and carried typed from there.

use std::time::Duration;

use quiver_core::ids::{FieldId, PartitionId};
use quiver_core::rt::Deadline;
use quiver_core::search::{Metric, ScoreRange};
use quiver_core::tso::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

/// A read's scope on the wire. The filter travels compiled: the proxy compiles it once
/// (checking it against the schema), and the delegator and the query node evaluate
/// that plan as it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireScope {
    /// The read must see every write at or below this timestamp (the consistency
    /// level's guarantee). The delegator picks the snapshot.
    pub guarantee_ts: Timestamp,
    /// The snapshot the read executes at: set by the delegator (its safe timestamp,
    /// once that has reached `guarantee_ts`) and passed on to query nodes.
    pub read_ts: Timestamp,
    pub partitions: Vec<PartitionId>,
    pub filter: quiver_core::expr::Predicate,
    /// When the client stops waiting: every hop gives its calls the time left, and
    /// the work stops (with a timeout status) once it passes.
    pub deadline: Deadline,
    /// Names a delegator's call to a query node, so a long one can be asked after
    /// (see `QueryNodeApi::reading`); 0 elsewhere.
    pub read_id: u64,
}

/// How long a read may run when its client set no timeout: generous, but a read
/// nobody waits for does not run for ever.
pub const DEFAULT_READ_BUDGET: Duration = Duration::from_secs(120);

/// Range-search bounds from search parameters (`radius`, `range_filter`).
fn score_range(params: &[(String, String)]) -> ApiResult<quiver_core::search::ScoreRange> {
    let get =
        |k: &str| -> ApiResult<Option<f32>> {
            match params.iter().find(|(key, _)| key == k) {
                None => Ok(None),
                Some((_, v)) => v.trim().parse::<f32>().map(Some).map_err(|_| {
                    ApiError::invalid(format!("search param {k}={v:?} is not a number"))
                }),
            }
        };
    Ok(quiver_core::search::ScoreRange {
        radius: get("radius")?,
        range_filter: get("range_filter")?,
    })
}

impl WireScope {
    /// The read scope for a shard or segment search, with the compiled filter `f`.
    pub fn read_scope<'a>(
        &'a self,
        pred: &quiver_core::expr::Predicate,
        f: &'a (dyn Fn(&dyn quiver_core::segment::SegmentView, usize) -> bool + Sync),
    ) -> quiver_core::shard::ReadScope<'a> {
        quiver_core::shard::ReadScope {
            read_ts: self.read_ts,
            partitions: Some(&self.partitions),
            filter: if pred.matches_all() { None } else { Some(f) },
            range: Default::default(),
        }
    }
}

/// A vector search as a shard (and the query node serving its sealed segments)
/// receives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VectorSearch {
    pub field: FieldId,
    pub queries: Vec<Vec<f32>>,
    pub k: u32,
    pub metric: Metric,
    pub scope: WireScope,
    pub knobs: SearchKnobs,
}

/// The search parameters a client may tune, parsed and bounds-checked once (at the
/// proxy): the index's (`ef`, `nprobe`, `rerank`, `refine_k`) and range search's
/// (`radius`, `range_filter`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchKnobs {
    pub ann: quiver_ann::SearchParams,
    pub range: ScoreRange,
}

impl SearchKnobs {
    /// Parses Milvus's search parameters (string key/value pairs); unknown keys are
    /// ignored, out-of-range values refused.
    pub fn from_milvus(params: &[(String, String)]) -> ApiResult<Self> {
        let ann = quiver_ann::SearchParams::from_milvus(
            params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map_err(|e| ApiError::invalid(format!("search params: {e}")))?;
        Ok(SearchKnobs {
            ann,
            range: score_range(params)?,
        })
    }
}

/// How far an index's build has come on one shard (or, summed, on a collection), as
/// Milvus's DescribeIndex reports it: over sealed segments only (growing data is
/// searched exactly in Milvus too and is not waited for).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexProgress {
    /// Rows in sealed segments.
    pub total_rows: u64,
    /// Rows in sealed segments whose index is built and served (searched through it).
    pub indexed_rows: u64,
    /// Sealed segments whose index is not yet built and served.
    pub pending_segments: u64,
    /// Why the build failed for good on some segment, if it did.
    pub failure: Option<String>,
}

impl IndexProgress {
    /// The sum of two shards' progress (the first failure wins).
    pub fn merge(mut self, other: IndexProgress) -> IndexProgress {
        self.total_rows += other.total_rows;
        self.indexed_rows += other.indexed_rows;
        self.pending_segments += other.pending_segments;
        self.failure = self.failure.or(other.failure);
        quiver_core::invariant_cheap!(
            self.indexed_rows <= self.total_rows,
            "more rows indexed ({}) than there are ({})",
            self.indexed_rows,
            self.total_rows
        );
        self
    }

    /// Whether every sealed segment is searched through the index.
    pub fn finished(&self) -> bool {
        self.failure.is_none() && self.pending_segments == 0
    }
}
