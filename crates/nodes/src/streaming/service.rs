//! The streaming node's API ([`StreamingApi`]): writes go to the shard (validate →
//! timestamp → WAL → apply → acknowledge, in `quiver_core::shard`), reads to the
//! shard's delegator ([`crate::delegator`]).

use std::future::Future;
use std::sync::Arc;

use quiver_core::batch::{Batch, Pk};
use quiver_core::ids::{PartitionId, SegmentId};
use quiver_core::search::Hit;
use quiver_core::shard::{MutationAck, Shard};
use tracing::Instrument;

use super::StreamingNode;
use crate::coordinator::CollectionInfo;
use crate::deadline::within;
use crate::delegator::ShardDelegator;
use crate::error::{ApiResult, ErrorKind};
use crate::rpc::{IndexProgress, ShardRef, StreamingApi, VectorSearch, WireScope};

impl StreamingNode {
    /// Runs `op` on the open copy of shard `at` (opening it if this node owns it). A
    /// copy whose vchannel moved on, or whose WAL failed (its state may no longer match
    /// the log), is closed: the next request reopens it from the manifest and the WAL,
    /// or learns the new owner.
    async fn on_shard<T, F, Fut>(&self, at: ShardRef, op: F) -> ApiResult<T>
    where
        F: FnOnce(CollectionInfo, Arc<Shard>) -> Fut,
        Fut: Future<Output = ApiResult<T>>,
    {
        let span = tracing::debug_span!("shard", collection = %at.collection, shard = at.shard);
        let mut used = None;
        let res = async {
            let (info, shard) = self.shard(at).await?;
            used = Some(shard.clone());
            op(info, shard).await
        }
        .instrument(span)
        .await;
        if let Err(e) = &res {
            if matches!(e.kind, ErrorKind::NotOwner | ErrorKind::NeedsReopen) {
                self.close(at, used.as_ref(), &e.reason).await;
            }
        }
        res
    }

    /// Runs `op` on the delegator of shard `at`.
    async fn on_delegator<'s, T, F, Fut>(&'s self, at: ShardRef, op: F) -> ApiResult<T>
    where
        F: FnOnce(ShardDelegator<'s>) -> Fut,
        Fut: Future<Output = ApiResult<T>>,
    {
        self.on_shard(at, |info, shard| op(self.delegation.of(info, at, shard)))
            .await
    }
}

#[async_trait::async_trait]
impl StreamingApi for StreamingNode {
    async fn open(&self, info: CollectionInfo) -> ApiResult<()> {
        self.register(&info).await;
        // Loading a damaged collection fails with the damage, naming what and where.
        self.check_damage(info.id).await
    }

    async fn drop_collection(&self, info: CollectionInfo) -> ApiResult<()> {
        StreamingNode::drop_collection(self, &info).await?;
        self.delegation.drop_collection(&info).await;
        self.gc_wake.notify_one();
        Ok(())
    }

    async fn insert(
        &self,
        at: ShardRef,
        partition: PartitionId,
        batch: Batch,
        upsert: bool,
    ) -> ApiResult<MutationAck> {
        self.on_shard(at, |_, s| async move {
            let ack = if upsert {
                s.upsert(partition, batch).await?
            } else {
                s.insert(partition, batch).await?
            };
            Ok(ack)
        })
        .await
    }

    async fn delete(&self, at: ShardRef, pks: Vec<Pk>) -> ApiResult<MutationAck> {
        self.on_shard(at, |_, s| async move { Ok(s.delete(pks).await?) })
            .await
    }

    async fn flush(&self, at: ShardRef) -> ApiResult<Vec<SegmentId>> {
        // Index builds and the handoff happen on the next tick, off this call.
        self.on_shard(at, |_, s| async move {
            let m = s.flush().await?;
            Ok(m.segments.iter().map(|f| f.id).collect())
        })
        .await
    }

    async fn search(&self, at: ShardRef, search: VectorSearch) -> ApiResult<Vec<Vec<Hit>>> {
        let deadline = search.scope.deadline;
        let work = self.on_delegator(at, |d| async move { d.search(search).await });
        within(deadline, "the shard's search", work).await
    }

    async fn query_rows(
        &self,
        at: ShardRef,
        scope: WireScope,
        limit: Option<u64>,
    ) -> ApiResult<Vec<(Pk, SegmentId, u32)>> {
        let deadline = scope.deadline;
        let work = self.on_delegator(at, |d| async move { d.query_rows(scope, limit).await });
        within(deadline, "the shard's query", work).await
    }

    async fn count(&self, at: ShardRef, scope: WireScope) -> ApiResult<u64> {
        let deadline = scope.deadline;
        let work = self.on_delegator(at, |d| async move { d.count(scope).await });
        within(deadline, "the shard's count", work).await
    }

    async fn fetch(&self, at: ShardRef, refs: Vec<(SegmentId, u32)>) -> ApiResult<Batch> {
        self.on_delegator(at, |d| async move { d.fetch(refs).await })
            .await
    }

    async fn index_state(&self, at: ShardRef, index: i64) -> ApiResult<IndexProgress> {
        self.on_delegator(at, |d| async move { Ok(d.index_state(index).await) })
            .await
    }
}
