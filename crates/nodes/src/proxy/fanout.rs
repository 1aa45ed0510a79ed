//! Asking every shard at once. A read's shards answer concurrently and their answers
//! are gathered in shard order, so the reduction (and so the result) is the same as if
//! they had been asked one after another; of several failures, the lowest shard's is
//! returned, the one a one-after-another loop would have stopped at.

use std::collections::BTreeMap;
use std::future::Future;

use futures::future::join_all;
use quiver_core::batch::{Batch, ColumnData, Pk};
use quiver_core::ids::SegmentId;
use quiver_core::schema::CollectionSchema;
use quiver_core::search::Hit;

use super::shards::{Shards, VectorQuery};
use crate::error::ApiResult;
use crate::rpc::envelope::result_too_large;
use crate::rpc::{WireScope, MAX_MESSAGE_BYTES};

/// A row a shard holds: the shard, the segment, the row in the segment.
pub(super) type RowRef = (usize, SegmentId, u32);

/// Runs `ask(i)` for each `i` in `items` concurrently; the answers in `items` order,
/// or the first error in that order.
pub(super) async fn all<I, T, F, Fut>(items: I, ask: F) -> ApiResult<Vec<T>>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future<Output = ApiResult<T>>,
{
    join_all(items.into_iter().map(ask))
        .await
        .into_iter()
        .collect()
}

/// Every shard's answer to a vector search, per shard then per query.
pub(super) async fn search(
    shards: &Shards<'_>,
    vq: &VectorQuery<'_>,
    scope: &WireScope,
) -> ApiResult<Vec<Vec<Vec<Hit>>>> {
    let per_shard = all(0..shards.len(), |i| shards.search(i, vq, scope)).await?;
    quiver_core::invariant!(
        per_shard.iter().all(|r| r.len() == vq.queries.len()),
        "a shard answered a search of {} queries with another number of lists",
        vq.queries.len()
    );
    Ok(per_shard)
}

/// The rows matching `scope` over every shard (at most `cap` from each), with the
/// shard each came from.
pub(super) async fn query_rows(
    shards: &Shards<'_>,
    scope: &WireScope,
    cap: Option<usize>,
) -> ApiResult<Vec<(Pk, RowRef)>> {
    let per_shard = all(0..shards.len(), |i| shards.query_rows(i, scope, cap)).await?;
    Ok(per_shard
        .into_iter()
        .enumerate()
        .flat_map(|(i, rows)| {
            rows.into_iter()
                .map(move |(pk, seg, row)| (pk, (i, seg, row)))
        })
        .collect())
}

/// The number of rows matching `scope`, summed over every shard.
pub(super) async fn count(shards: &Shards<'_>, scope: &WireScope) -> ApiResult<usize> {
    let per_shard = all(0..shards.len(), |i| shards.count(i, scope)).await?;
    Ok(per_shard.into_iter().sum())
}

/// Fetches rows `refs` in the given order, asking each shard holding some at once,
/// for each distinct row once (a search's queries often share hits). A row a shard no
/// longer returns is left out (callers that need all of them check). A result that
/// could not be sent under the message limit is refused before it is assembled.
pub(super) async fn fetch_rows(
    schema: &CollectionSchema,
    shards: &Shards<'_>,
    refs: &[RowRef],
) -> ApiResult<Batch> {
    let mut per_shard: BTreeMap<usize, Vec<(SegmentId, u32)>> = BTreeMap::new();
    for &(s, seg, row) in refs {
        per_shard.entry(s).or_default().push((seg, row));
    }
    for rs in per_shard.values_mut() {
        rs.sort_unstable();
        rs.dedup();
    }
    let batches = all(&per_shard, |(s, rs)| shards.fetch(*s, rs)).await?;
    // Per shard: the fetched rows and where each reference landed in them.
    type Fetched = (Batch, BTreeMap<(SegmentId, u32), usize>);
    let fetched: BTreeMap<usize, Fetched> = per_shard
        .iter()
        .zip(batches)
        .map(|((s, rs), b)| {
            let idx = rs.iter().enumerate().map(|(i, r)| (*r, i)).collect();
            (*s, (b, idx))
        })
        .collect();
    let found = |&(s, seg, row): &RowRef| {
        let (b, idx) = fetched.get(&s)?;
        let &i = idx.get(&(seg, row))?;
        (i < b.num_rows).then_some((b, i))
    };
    let bytes: usize = refs
        .iter()
        .filter_map(found)
        .map(|(b, i)| row_bytes(b, i))
        .sum();
    if bytes > MAX_MESSAGE_BYTES {
        return Err(result_too_large(bytes, MAX_MESSAGE_BYTES));
    }
    let mut out = Batch::empty(schema);
    for (b, i) in refs.iter().filter_map(found) {
        out.push_row(b, i);
    }
    Ok(out)
}

/// About how many bytes row `i` of `b` takes in a reply (a lower bound: the values
/// without their framing).
fn row_bytes(b: &Batch, i: usize) -> usize {
    b.columns
        .iter()
        .map(|c| match &c.data {
            ColumnData::VarChar(v) | ColumnData::Json(v) => v.get(i).map_or(0, String::len),
            ColumnData::FloatVector { dim, .. } => *dim as usize * 4,
            _ => 8,
        })
        .sum()
}
