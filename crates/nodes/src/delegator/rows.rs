//! Row reads through a shard's delegator: the rows in scope (a query), how many there
//! are (a count), and whole rows by reference (a fetch of output fields).

use quiver_core::batch::{Batch, Pk};
use quiver_core::ids::SegmentId;
use quiver_core::segment::SegmentView;
use quiver_core::shard::{ReadScope, Shard};

use super::read::SplitRead;
use super::ShardDelegator;
use crate::error::{ApiError, ApiResult, ErrorKind};
use crate::rpc::{QueryNodeApi, ShardRef, WireScope};

type RowRef = (Pk, SegmentId, u32);

struct QueryRows<'a> {
    at: ShardRef,
    wire: &'a WireScope,
    scope: ReadScope<'a>,
    limit: Option<u64>,
}

#[async_trait::async_trait]
impl SplitRead for QueryRows<'_> {
    type Out = Vec<RowRef>;
    const NAME: &'static str = "query";

    async fn local(&self, shard: &Shard) -> ApiResult<(Self::Out, Vec<(SegmentId, bool)>)> {
        let limit = self.limit.map(|l| l as usize);
        Ok(shard.query_rows_split(self.scope, limit).await)
    }

    async fn remote(
        &self,
        qn: &dyn QueryNodeApi,
        segments: Vec<SegmentId>,
        read_id: u64,
    ) -> ApiResult<Self::Out> {
        let wire = WireScope {
            read_id,
            ..self.wire.clone()
        };
        qn.query_rows(self.at, segments, wire, self.limit).await
    }

    fn merge(&self, mut local: Self::Out, remote: Self::Out) -> Self::Out {
        local.extend(remote);
        local.sort();
        if let Some(l) = self.limit {
            local.truncate(l as usize);
        }
        local
    }
}

struct Count<'a> {
    at: ShardRef,
    wire: &'a WireScope,
    scope: ReadScope<'a>,
}

#[async_trait::async_trait]
impl SplitRead for Count<'_> {
    type Out = u64;
    const NAME: &'static str = "count";

    async fn local(&self, shard: &Shard) -> ApiResult<(Self::Out, Vec<(SegmentId, bool)>)> {
        let (n, remote) = shard.count_split(self.scope).await;
        Ok((n as u64, remote))
    }

    async fn remote(
        &self,
        qn: &dyn QueryNodeApi,
        segments: Vec<SegmentId>,
        read_id: u64,
    ) -> ApiResult<Self::Out> {
        let wire = WireScope {
            read_id,
            ..self.wire.clone()
        };
        qn.count(self.at, segments, wire).await
    }

    fn merge(&self, local: Self::Out, remote: Self::Out) -> Self::Out {
        local + remote
    }
}

impl ShardDelegator<'_> {
    /// The rows in scope, sorted by primary key, at most `limit`.
    pub async fn query_rows(&self, scope: WireScope, limit: Option<u64>) -> ApiResult<Vec<RowRef>> {
        let wire = self.snapshot(scope).await?;
        let pred = &wire.filter;
        let f = |seg: &dyn SegmentView, row: usize| pred.eval(seg.data(), row);
        let read = QueryRows {
            at: self.at,
            wire: &wire,
            scope: wire.read_scope(pred, &f),
            limit,
        };
        self.read(&read).await
    }

    /// How many rows are in scope.
    pub async fn count(&self, scope: WireScope) -> ApiResult<u64> {
        let wire = self.snapshot(scope).await?;
        let pred = &wire.filter;
        let f = |seg: &dyn SegmentView, row: usize| pred.eval(seg.data(), row);
        let read = Count {
            at: self.at,
            wire: &wire,
            scope: wire.read_scope(pred, &f),
        };
        self.read(&read).await
    }

    /// Whole rows by (segment, row), in the order asked: exactly one row per reference.
    /// Rows of handed-off segments come from the query node; if it fails, the
    /// segments are taken back and every row is read here.
    pub async fn fetch(&self, refs: Vec<(SegmentId, u32)>) -> ApiResult<Batch> {
        let (near, far_pos) = self.shard.fetch_split(&refs).await?;
        if far_pos.is_empty() {
            return Ok(near);
        }
        let far: Vec<(SegmentId, u32)> = far_pos.iter().map(|&p| refs[p]).collect();
        let fetched = match self.target() {
            Some(qn) => qn.fetch(self.at, far.clone()).await,
            None => Err(ApiError::internal("no query node serves the segments")),
        };
        match fetched {
            Ok(b) if b.num_rows == far.len() => Ok(interleave(
                &self.shard.config().schema,
                &refs,
                near,
                &far_pos,
                b,
            )),
            // Refused as asked (too large a result): the node is fine, and reading the
            // rows here would not make them fit.
            Err(e) if e.kind == ErrorKind::InvalidInput => Err(e),
            other => {
                self.suspect();
                tracing::warn!(error = ?other.err(), "query node fetch failed; serving its segments here");
                let ids: Vec<SegmentId> = far.iter().map(|(id, _)| *id).collect();
                self.shard.reclaim(&ids).await?;
                let (all, still_far) = self.shard.fetch_split(&refs).await?;
                if !still_far.is_empty() {
                    return Err(ApiError::internal(
                        "rows of handed-off segments could not be fetched",
                    ));
                }
                Ok(all)
            }
        }
    }
}

/// Reassembles rows in the order of `refs`: those at `far_pos` from `far`, the rest
/// from `near`.
fn interleave(
    schema: &quiver_core::schema::CollectionSchema,
    refs: &[(SegmentId, u32)],
    near: Batch,
    far_pos: &[usize],
    far: Batch,
) -> Batch {
    let (mut ni, mut fi) = (0usize, 0usize);
    let mut out = Batch::empty(schema);
    let mut far_iter = far_pos.iter().peekable();
    for pos in 0..refs.len() {
        if far_iter.peek() == Some(&&pos) {
            far_iter.next();
            out.push_row(&far, fi);
            fi += 1;
        } else {
            out.push_row(&near, ni);
            ni += 1;
        }
    }
    quiver_core::invariant!(
        ni == near.num_rows && fi == far.num_rows && out.num_rows == refs.len(),
        "fetch reassembly used {ni}/{} near and {fi}/{} far rows for {} references",
        near.num_rows,
        far.num_rows,
        refs.len()
    );
    out
}
