//! The proxy's handle on one collection's shards, wherever the streaming node runs.
//! A streaming node that restarted has not reopened the collection; the handle opens
//! it (recovering the shards) and retries once. Nothing else is retried: a write that
//! timed out may or may not have happened, and the client must be told so.

use quiver_core::batch::{Batch, Pk};
use quiver_core::ids::{FieldId, PartitionId, SegmentId};
use quiver_core::search::{Hit, Metric};
use quiver_core::shard::MutationAck;

use crate::coordinator::CollectionInfo;
use crate::error::{code, ApiResult};
use crate::rpc::wire::{unexpected, StreamRequest, StreamResponse, WireScope};
use crate::rpc::StreamingApi;

/// The vector part of a search: which field, the query vectors, how many results,
/// the metric, and the index search parameters (`ef`, `nprobe`, ...).
pub struct VectorQuery<'a> {
    pub field: FieldId,
    pub queries: &'a [Vec<f32>],
    pub k: usize,
    pub metric: Metric,
    pub params: &'a [(String, String)],
}

pub struct Shards<'a> {
    api: &'a dyn StreamingApi,
    pub info: &'a CollectionInfo,
}

impl<'a> Shards<'a> {
    pub fn new(api: &'a dyn StreamingApi, info: &'a CollectionInfo) -> Self {
        Shards { api, info }
    }

    pub fn len(&self) -> usize {
        self.info.shards as usize
    }

    pub async fn open(&self) -> ApiResult<()> {
        self.api
            .call(StreamRequest::Open {
                info: self.info.clone(),
            })
            .await
            .map(|_| ())
    }

    async fn call(&self, make: impl Fn() -> StreamRequest) -> ApiResult<StreamResponse> {
        match self.api.call(make()).await {
            Err(e) if e.code == code::NOT_OPEN => {
                self.open().await?;
                self.api.call(make()).await
            }
            r => r,
        }
    }

    pub async fn write(
        &self,
        shard: usize,
        partition: PartitionId,
        batch: &Batch,
        upsert: bool,
    ) -> ApiResult<MutationAck> {
        let c = self.info.id;
        match self
            .call(|| StreamRequest::Insert {
                collection: c,
                shard: shard as u32,
                partition,
                batch: batch.clone(),
                upsert,
            })
            .await?
        {
            StreamResponse::Ack(a) => Ok(a),
            _ => Err(unexpected("insert")),
        }
    }

    pub async fn delete(&self, shard: usize, pks: &[Pk]) -> ApiResult<MutationAck> {
        let c = self.info.id;
        match self
            .call(|| StreamRequest::Delete {
                collection: c,
                shard: shard as u32,
                pks: pks.to_vec(),
            })
            .await?
        {
            StreamResponse::Ack(a) => Ok(a),
            _ => Err(unexpected("delete")),
        }
    }

    pub async fn flush(&self, shard: usize) -> ApiResult<Vec<SegmentId>> {
        let c = self.info.id;
        match self
            .call(|| StreamRequest::Flush {
                collection: c,
                shard: shard as u32,
            })
            .await?
        {
            StreamResponse::Flushed { segments } => Ok(segments),
            _ => Err(unexpected("flush")),
        }
    }

    pub async fn search(
        &self,
        shard: usize,
        q: &VectorQuery<'_>,
        scope: &WireScope,
    ) -> ApiResult<Vec<Vec<Hit>>> {
        let c = self.info.id;
        let resp = self
            .call(|| StreamRequest::Search {
                collection: c,
                shard: shard as u32,
                field: q.field,
                queries: q.queries.to_vec(),
                k: q.k as u32,
                metric: q.metric,
                scope: scope.clone(),
                params: q.params.to_vec(),
            })
            .await?;
        match resp {
            StreamResponse::Hits(h) => Ok(h
                .into_iter()
                .map(|q| {
                    q.into_iter()
                        .map(|w| Hit {
                            pk: w.pk,
                            score: w.score,
                            distance: w.distance,
                            segment: w.segment,
                            row: w.row,
                        })
                        .collect()
                })
                .collect()),
            _ => Err(unexpected("search")),
        }
    }

    pub async fn query_rows(
        &self,
        shard: usize,
        scope: &WireScope,
        limit: Option<usize>,
    ) -> ApiResult<Vec<(Pk, SegmentId, u32)>> {
        let c = self.info.id;
        match self
            .call(|| StreamRequest::QueryRows {
                collection: c,
                shard: shard as u32,
                scope: scope.clone(),
                limit: limit.map(|l| l as u64),
            })
            .await?
        {
            StreamResponse::Rows(r) => Ok(r),
            _ => Err(unexpected("query")),
        }
    }

    pub async fn count(&self, shard: usize, scope: &WireScope) -> ApiResult<usize> {
        let c = self.info.id;
        match self
            .call(|| StreamRequest::Count {
                collection: c,
                shard: shard as u32,
                scope: scope.clone(),
            })
            .await?
        {
            StreamResponse::Count(n) => Ok(n as usize),
            _ => Err(unexpected("count")),
        }
    }

    pub async fn fetch(&self, shard: usize, refs: &[(SegmentId, u32)]) -> ApiResult<Batch> {
        let c = self.info.id;
        match self
            .call(|| StreamRequest::Fetch {
                collection: c,
                shard: shard as u32,
                refs: refs.to_vec(),
            })
            .await?
        {
            StreamResponse::Fetched(b) => Ok(b),
            _ => Err(unexpected("fetch")),
        }
    }
}
