//! The proxy's handle on one collection's shards, wherever the streaming node runs.
//! A streaming node that restarted has not reopened the collection; the handle opens
//! it (recovering the shards) and retries once. Nothing else is retried: a write that
//! timed out may or may not have happened, and the client must be told so. A
//! collection dropped while a request was on its way is "collection not found": the
//! open refuses to bring it back (the router checks the catalog, the streaming node
//! remembers what it dropped).

use std::future::Future;

use quiver_core::batch::{Batch, Pk};
use quiver_core::ids::{FieldId, PartitionId, SegmentId};
use quiver_core::rt::Deadline;
use quiver_core::search::{Hit, Metric};
use quiver_core::shard::MutationAck;

use crate::coordinator::CollectionInfo;
use crate::error::{code, ApiError, ApiResult};
use crate::rpc::{
    IndexProgress, SearchKnobs, ShardRef, StreamingApi, VectorSearch, WireScope,
    DEFAULT_READ_BUDGET,
};

/// The vector part of a search: which field, the query vectors, how many results,
/// the metric, and the index and range search parameters, parsed once.
pub struct VectorQuery<'a> {
    pub field: FieldId,
    pub queries: &'a [Vec<f32>],
    pub k: usize,
    pub metric: Metric,
    pub knobs: SearchKnobs,
}

pub struct Shards<'a> {
    api: &'a dyn StreamingApi,
    pub info: &'a CollectionInfo,
    /// The deadline every read sent through this handle carries.
    deadline: Deadline,
}

impl<'a> Shards<'a> {
    /// A handle whose reads carry the server's default budget.
    pub fn new(api: &'a dyn StreamingApi, info: &'a CollectionInfo) -> Self {
        Shards {
            api,
            info,
            deadline: Deadline::after(DEFAULT_READ_BUDGET),
        }
    }

    /// The same handle, its reads carrying the request's `deadline`.
    pub fn until(self, deadline: Deadline) -> Self {
        Shards { deadline, ..self }
    }

    /// `scope` as sent: with this handle's deadline.
    fn stamped(&self, scope: &WireScope) -> WireScope {
        WireScope {
            deadline: self.deadline,
            ..scope.clone()
        }
    }

    pub fn len(&self) -> usize {
        self.info.shards as usize
    }

    fn at(&self, shard: usize) -> ShardRef {
        ShardRef {
            collection: self.info.id,
            shard: shard as u32,
        }
    }

    pub async fn open(&self) -> ApiResult<()> {
        self.api.open(self.info.clone()).await
    }

    /// Runs `op`; if the streaming node has not opened the collection, opens it and
    /// runs `op` once more. Still not open means it was dropped meanwhile.
    async fn call<T, F, Fut>(&self, op: F) -> ApiResult<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ApiResult<T>>,
    {
        match op().await {
            Err(e) if e.code == code::NOT_OPEN => {
                self.open().await?;
                match op().await {
                    Err(e) if e.code == code::NOT_OPEN => Err(self.not_found()),
                    r => r,
                }
            }
            r => r,
        }
    }

    /// The collection this handle is for no longer exists.
    fn not_found(&self) -> ApiError {
        ApiError::collection_not_found(&self.info.db, self.info.name())
    }

    pub async fn write(
        &self,
        shard: usize,
        partition: PartitionId,
        batch: &Batch,
        upsert: bool,
    ) -> ApiResult<MutationAck> {
        let at = self.at(shard);
        self.call(|| self.api.insert(at, partition, batch.clone(), upsert))
            .await
    }

    pub async fn delete(&self, shard: usize, pks: &[Pk]) -> ApiResult<MutationAck> {
        let at = self.at(shard);
        self.call(|| self.api.delete(at, pks.to_vec())).await
    }

    pub async fn flush(&self, shard: usize) -> ApiResult<Vec<SegmentId>> {
        let at = self.at(shard);
        self.call(|| self.api.flush(at)).await
    }

    pub async fn search(
        &self,
        shard: usize,
        q: &VectorQuery<'_>,
        scope: &WireScope,
    ) -> ApiResult<Vec<Vec<Hit>>> {
        let search = VectorSearch {
            field: q.field,
            queries: q.queries.to_vec(),
            k: q.k as u32,
            metric: q.metric,
            scope: self.stamped(scope),
            knobs: q.knobs,
        };
        let at = self.at(shard);
        self.call(|| self.api.search(at, search.clone())).await
    }

    pub async fn query_rows(
        &self,
        shard: usize,
        scope: &WireScope,
        limit: Option<usize>,
    ) -> ApiResult<Vec<(Pk, SegmentId, u32)>> {
        let at = self.at(shard);
        let limit = limit.map(|l| l as u64);
        let scope = self.stamped(scope);
        self.call(|| self.api.query_rows(at, scope.clone(), limit))
            .await
    }

    pub async fn count(&self, shard: usize, scope: &WireScope) -> ApiResult<usize> {
        let at = self.at(shard);
        let scope = self.stamped(scope);
        Ok(self.call(|| self.api.count(at, scope.clone())).await? as usize)
    }

    pub async fn fetch(&self, shard: usize, refs: &[(SegmentId, u32)]) -> ApiResult<Batch> {
        let at = self.at(shard);
        self.call(|| self.api.fetch(at, refs.to_vec())).await
    }

    /// How far index `index` is built and served on this shard.
    pub async fn index_state(&self, shard: usize, index: i64) -> ApiResult<IndexProgress> {
        let at = self.at(shard);
        self.call(|| self.api.index_state(at, index)).await
    }
}
