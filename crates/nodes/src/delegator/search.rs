//! A vector search through a shard's delegator: exact over the local segments, through
//! the indexes on the query node for the handed-off ones, reduced to one top-k.

use quiver_core::ids::{FieldId, SegmentId};
use quiver_core::rt::Ticket;
use quiver_core::search::{reduce, Hit};
use quiver_core::segment::SegmentView;
use quiver_core::shard::{ReadScope, Shard};

use super::read::SplitRead;
use super::ShardDelegator;
use crate::error::{code, ApiError, ApiResult};
use crate::rpc::{QueryNodeApi, ShardRef, VectorSearch};

struct Search<'a> {
    at: ShardRef,
    search: &'a VectorSearch,
    scope: ReadScope<'a>,
    /// The search's turn in this node's compute lanes.
    ticket: Ticket<'a>,
}

#[async_trait::async_trait]
impl SplitRead for Search<'_> {
    type Out = Vec<Vec<Hit>>;
    const NAME: &'static str = "search";

    async fn local(&self, shard: &Shard) -> ApiResult<(Self::Out, Vec<(SegmentId, bool)>)> {
        let s = self.search;
        let (k, scope) = (s.k as usize, self.scope);
        Ok(shard
            .search_split_paced(s.field, &s.queries, k, s.metric, scope, &self.ticket)
            .await?)
    }

    async fn remote(
        &self,
        qn: &dyn QueryNodeApi,
        segments: Vec<SegmentId>,
        read_id: u64,
    ) -> ApiResult<Self::Out> {
        let mut search = self.search.clone();
        search.scope.read_id = read_id;
        qn.search(self.at, segments, search).await
    }

    fn merge(&self, mut local: Self::Out, remote: Self::Out) -> Self::Out {
        for (q, hits) in remote.into_iter().enumerate() {
            let mut merged = std::mem::take(&mut local[q]);
            merged.extend(hits);
            local[q] = reduce(vec![merged], self.search.k as usize);
        }
        local
    }
}

impl ShardDelegator<'_> {
    /// Top-k per query over the whole shard at the search's guarantee. Refused when
    /// the field's index failed for good on one of the shard's segments: the user
    /// asked for that index, and silently scanning instead would hide the failure.
    pub async fn search(&self, mut search: VectorSearch) -> ApiResult<Vec<Vec<Hit>>> {
        self.check_index_usable(search.field).await?;
        search.scope = self.snapshot(search.scope).await?;
        let pred = &search.scope.filter;
        let f = |seg: &dyn SegmentView, row: usize| pred.eval(seg.data(), row);
        let scope = ReadScope {
            range: search.knobs.range,
            ..search.scope.read_scope(pred, &f)
        };
        let read = Search {
            at: self.at,
            search: &search,
            scope,
            ticket: self.d.lanes.admit(search.scope.deadline)?,
        };
        self.read(&read).await
    }
}

impl ShardDelegator<'_> {
    /// Why index `index_id` failed for good on this shard, if it did.
    pub async fn index_failure(&self, index_id: i64) -> Option<String> {
        let index = self.info.indexes.iter().find(|i| i.id == index_id)?;
        let (segment, reason) = self.fatal_build_failure(index).await?;
        Some(format!("segment {segment}: {reason}"))
    }

    async fn check_index_usable(&self, field: FieldId) -> ApiResult<()> {
        let Some(index) = self
            .info
            .schema
            .field_by_id(field)
            .and_then(|f| self.info.index_on(&f.name))
        else {
            return Ok(());
        };
        match self.fatal_build_failure(index).await {
            None => Ok(()),
            Some((segment, reason)) => Err(ApiError::new(
                code::INDEX_NOT_SUPPORTED,
                format!(
                    "index {} on field {} failed to build (segment {segment}): {reason}; drop the index and create it again with parameters that can be built",
                    index.name, index.field_name
                ),
            )),
        }
    }
}
