//! The query node's reads over the segments a delegator names. Searches run on the
//! compute seam (`rt::compute`: a worker pool in production) over a snapshot of the
//! segments and indexes taken under the lock, so a long search neither holds the lock
//! nor blocks an async worker; and they run chunk by chunk in the node's compute
//! lanes ([`rt::Lanes`]), so a search with a large `nq` takes turns with the other
//! searches instead of stalling them, and stops at its deadline.

use std::collections::BTreeMap;
use std::sync::Arc;

use quiver_ann::bitset::Bitset;
use quiver_ann::index::{AnnIndex, SearchParams};
use quiver_core::batch::{Batch, Pk};
use quiver_core::ids::{CollectionId, SegmentId};
use quiver_core::rt;
use quiver_core::search::{reduce, search_segment, Hit, SearchRequest};
use quiver_core::segment::{SealedSegment, SegmentView};

use super::{missing, not_served, segment_of, QueryNode, Served};
use crate::error::{ApiError, ApiResult};
use crate::rpc::{ShardRef, VectorSearch, WireScope};

/// A segment to search and the index to search it through, if one serves the search.
type SearchUnit = (Arc<SealedSegment>, Option<Arc<AnnIndex>>);

fn served(all: &BTreeMap<(CollectionId, u32), Served>, at: ShardRef) -> ApiResult<&Served> {
    all.get(&(at.collection, at.shard))
        .ok_or_else(|| not_served(at))
}

impl QueryNode {
    /// Top-k per query over the named segments, each through its index when it has
    /// one for the field and metric (range searches scan exactly: an index walk stops
    /// at top-k).
    pub(super) async fn search_segments(
        &self,
        at: ShardRef,
        segments: &[SegmentId],
        search: VectorSearch,
    ) -> ApiResult<Vec<Vec<Hit>>> {
        let units = {
            let all = self.served.read().await;
            let s = served(&all, at)?;
            let mut units: Vec<SearchUnit> = Vec::new();
            for id in segments {
                let Some(seg) = segment_of(s, *id)? else {
                    continue;
                };
                let index = s
                    .indexes
                    .get(&(*id, search.field))
                    .filter(|i| i.metric() == search.metric && search.knobs.range.is_unbounded())
                    .cloned();
                units.push((Arc::clone(seg), index));
            }
            units
        };
        let ticket = self.lanes.admit(search.scope.deadline)?;
        let plan = Arc::new(SearchPlan::new(units, search));
        let nq = plan.prepared.len();
        let per_chunk = rt::lanes::chunk_len(nq, plan.query_cost());
        let mut out = Vec::with_capacity(nq);
        for lo in (0..nq).step_by(per_chunk) {
            let hi = (lo + per_chunk).min(nq);
            let p = Arc::clone(&plan);
            out.extend(ticket.compute(move || p.search(lo..hi)).await?);
        }
        quiver_core::invariant!(out.len() == nq, "{nq} queries answered {}", out.len());
        Ok(out)
    }

    /// The rows in scope in the named segments, sorted, at most `limit`.
    pub(super) async fn rows_in_scope(
        &self,
        at: ShardRef,
        segments: &[SegmentId],
        scope: &WireScope,
        limit: Option<u64>,
    ) -> ApiResult<Vec<(Pk, SegmentId, u32)>> {
        let all = self.served.read().await;
        let s = served(&all, at)?;
        let pred = &scope.filter;
        let mut rows = Vec::new();
        for id in segments {
            let Some(seg) = segment_of(s, *id)? else {
                continue;
            };
            for i in 0..seg.num_rows() {
                if seg.is_visible(i, scope.read_ts) && pred.eval(seg.data(), i) {
                    rows.push((seg.pk(i).clone(), seg.id, i as u32));
                }
            }
        }
        rows.sort();
        if let Some(l) = limit {
            rows.truncate(l as usize);
        }
        Ok(rows)
    }

    /// How many rows of the named segments are in scope.
    pub(super) async fn count_in_scope(
        &self,
        at: ShardRef,
        segments: &[SegmentId],
        scope: &WireScope,
    ) -> ApiResult<u64> {
        let all = self.served.read().await;
        let s = served(&all, at)?;
        let pred = &scope.filter;
        let mut n = 0u64;
        for id in segments {
            let Some(seg) = segment_of(s, *id)? else {
                continue;
            };
            n += (0..seg.num_rows())
                .filter(|&i| seg.is_visible(i, scope.read_ts) && pred.eval(seg.data(), i))
                .count() as u64;
        }
        Ok(n)
    }

    /// Whole rows by (segment, row), in order.
    pub(super) async fn rows_by_ref(
        &self,
        at: ShardRef,
        refs: &[(SegmentId, u32)],
    ) -> ApiResult<Batch> {
        let all = self.served.read().await;
        let s = served(&all, at)?;
        let mut out = Batch::empty(&s.info.schema);
        for &(id, row) in refs {
            let seg = s.segments.get(&id).ok_or_else(|| missing(id))?;
            if row as usize >= seg.num_rows() {
                return Err(ApiError::internal(format!("segment {id} has no row {row}")));
            }
            out.push_row(&seg.data().take(&[row as usize]), 0);
        }
        Ok(out)
    }
}

/// A search over a snapshot of units, shared by its chunks.
struct SearchPlan {
    units: Vec<SearchUnit>,
    search: VectorSearch,
    /// The queries prepared for the metric (see `Metric::prepare_query`).
    prepared: Vec<Vec<f32>>,
}

impl SearchPlan {
    fn new(units: Vec<SearchUnit>, search: VectorSearch) -> Self {
        let prepared = search
            .queries
            .iter()
            .map(|q| search.metric.prepare_query(q))
            .collect();
        SearchPlan {
            units,
            search,
            prepared,
        }
    }

    /// About how many multiply-adds one query costs over every unit: every row for
    /// an exact scan, the rows an index walk visits (a few per beam slot) otherwise.
    fn query_cost(&self) -> usize {
        let dim = self.prepared.first().map_or(1, Vec::len);
        let ef = self.search.knobs.ann.ef_for(self.search.k as usize);
        self.units
            .iter()
            .map(|(seg, index)| match index {
                Some(_) => seg.num_rows().min(ef.saturating_mul(32)),
                None => seg.num_rows(),
            })
            .fold(0usize, usize::saturating_add)
            .saturating_mul(dim)
    }

    /// Searches every unit for the queries in `queries` and reduces per query
    /// (CPU-bound: runs on the compute seam).
    fn search(&self, queries: std::ops::Range<usize>) -> Vec<Vec<Hit>> {
        let search = &self.search;
        let pred = &search.scope.filter;
        let f = |seg: &dyn SegmentView, row: usize| pred.eval(seg.data(), row);
        let req = SearchRequest {
            field: search.field,
            queries: &self.prepared[queries],
            k: search.k as usize,
            metric: search.metric,
            read_ts: search.scope.read_ts,
            filter: if pred.matches_all() { None } else { Some(&f) },
            range: search.knobs.range,
        };
        let per_segment: Vec<Vec<Vec<Hit>>> = self
            .units
            .iter()
            .map(|(seg, index)| match index {
                Some(index) => search_indexed(seg, index, &req, &search.knobs.ann),
                None => search_segment(seg.as_ref(), &req),
            })
            .collect();
        (0..req.queries.len())
            .map(|q| reduce(per_segment.iter().map(|r| r[q].clone()).collect(), req.k))
            .collect()
    }
}

/// Searches one segment through its index: the rows a read may see (visible at the
/// snapshot, passing the filter) become the index's allowed set.
fn search_indexed(
    seg: &SealedSegment,
    index: &AnnIndex,
    req: &SearchRequest<'_>,
    params: &SearchParams,
) -> Vec<Vec<Hit>> {
    let allowed = Bitset::from_fn(seg.num_rows(), |i| {
        seg.is_visible(i, req.read_ts) && req.filter.is_none_or(|f| f(seg, i))
    });
    req.queries
        .iter()
        .map(|q| {
            index
                .search(q, req.k, params, Some(&allowed))
                .into_iter()
                .map(|(row, score)| Hit {
                    pk: seg.pk(row as usize).clone(),
                    score,
                    distance: req.metric.to_distance(score),
                    segment: seg.id,
                    row,
                })
                .collect()
        })
        .collect()
}
