//! The proxy's route to each shard: the streaming node that owns the pchannel its
//! vchannel rides on, as the coordinator says. Owners are cached per shard; a node that
//! answers "not the owner" (the pchannel moved, or its lease ran out) makes the router ask again and retry — that
//! answer means the request did not run. A node that cannot be reached is forgotten
//! for the next call but the error goes back to the client: a write that timed out
//! may have happened, and only the client can decide what to do about it.
//!
//! Reads run until their client's deadline, which may be long; while one runs, the
//! router checks every [`OWNER_CHECK_PERIOD`] that its node still owns the shard, and
//! follows the shard to its new owner (a read changes nothing, so re-sending it is
//! safe). A read that runs out of time forgets the owner too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use quiver_core::rt;

use std::future::Future;

use quiver_core::batch::{Batch, Pk};
use quiver_core::ids::{PartitionId, SegmentId};
use quiver_core::search::Hit;
use quiver_core::shard::MutationAck;

use crate::coordinator::{CollectionInfo, CoordinatorApi};
use crate::error::{code, ApiError, ApiResult, ErrorKind};
use crate::rpc::{IndexProgress, ShardRef, StreamingApi, VectorSearch, WireScope};

/// Connects to a streaming node by its id.
pub type Connect = Box<dyn Fn(&str) -> ApiResult<Arc<dyn StreamingApi>> + Send + Sync>;

pub struct ShardRouter {
    coord: Arc<dyn CoordinatorApi>,
    connect: Connect,
    nodes: std::sync::Mutex<BTreeMap<String, Arc<dyn StreamingApi>>>,
    owners: std::sync::Mutex<BTreeMap<ShardRef, String>>,
}

/// How many times a request is re-routed after "not the owner" answers.
const ROUTE_ATTEMPTS: usize = 4;

/// How long a read waits on a node before checking it still owns the shard. A read
/// runs until its deadline (it may be long); a node that lost the vchannel meanwhile
/// (cut off, its lease taken over) must not hold it that long.
const OWNER_CHECK_PERIOD: Duration = Duration::from_secs(10);

/// Whether a call is a read (safe to abandon and re-send to a new owner) or not.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Read,
    Write,
}

impl ShardRouter {
    pub fn new(coord: Arc<dyn CoordinatorApi>, connect: Connect) -> Self {
        ShardRouter {
            coord,
            connect,
            nodes: Default::default(),
            owners: Default::default(),
        }
    }

    fn node(&self, id: &str) -> ApiResult<Arc<dyn StreamingApi>> {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = nodes.get(id) {
            return Ok(n.clone());
        }
        let n = (self.connect)(id)?;
        nodes.insert(id.to_string(), n.clone());
        Ok(n)
    }

    async fn owner(&self, at: ShardRef) -> ApiResult<String> {
        let cached = self
            .owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&at)
            .cloned();
        if let Some(n) = cached {
            return Ok(n);
        }
        let a = self.coord.locate(at).await?;
        self.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(at, a.node.clone());
        Ok(a.node)
    }

    fn forget(&self, at: ShardRef) {
        self.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&at);
    }

    /// Runs a read on `node`, the shard's owner when it started; a read still running
    /// after [`OWNER_CHECK_PERIOD`] goes on only while the coordinator still names
    /// `node` the owner (a read changes nothing, so abandoning it is safe).
    async fn read_on<T>(
        &self,
        at: ShardRef,
        node: &str,
        call: impl Future<Output = ApiResult<T>>,
    ) -> ApiResult<T> {
        futures::pin_mut!(call);
        loop {
            if let Ok(r) = rt::timeout(OWNER_CHECK_PERIOD, &mut call).await {
                return r;
            }
            match self.coord.locate(at).await {
                Ok(a) if a.node != node => {
                    return Err(ApiError::new(
                        code::NOT_OWNER,
                        format!("{node} lost {} to {} during the read", a.pchannel, a.node),
                    ))
                }
                // Still the owner, or the coordinator cannot say: keep waiting.
                _ => continue,
            }
        }
    }

    /// Runs `op` on the node that owns the shard's vchannel, re-routing after "not the
    /// owner" answers (the request did not run there).
    async fn to_shard<T, F, Fut>(&self, at: ShardRef, op: F) -> ApiResult<T>
    where
        F: Fn(Arc<dyn StreamingApi>) -> Fut + Send + Sync,
        Fut: Future<Output = ApiResult<T>> + Send,
        T: Send,
    {
        self.route(at, Call::Write, op).await
    }

    /// [`Self::to_shard`] for a read, which follows the shard to a new owner.
    async fn read_shard<T, F, Fut>(&self, at: ShardRef, op: F) -> ApiResult<T>
    where
        F: Fn(Arc<dyn StreamingApi>) -> Fut + Send + Sync,
        Fut: Future<Output = ApiResult<T>> + Send,
        T: Send,
    {
        self.route(at, Call::Read, op).await
    }

    async fn route<T, F, Fut>(&self, at: ShardRef, kind: Call, op: F) -> ApiResult<T>
    where
        F: Fn(Arc<dyn StreamingApi>) -> Fut + Send + Sync,
        Fut: Future<Output = ApiResult<T>> + Send,
        T: Send,
    {
        let mut last = None;
        for attempt in 0..ROUTE_ATTEMPTS {
            if attempt > 0 {
                rt::sleep(Duration::from_millis(100 << attempt)).await;
            }
            let node = self.owner(at).await?;
            let call = op(self.node(&node)?);
            let answer = match kind {
                Call::Read => self.read_on(at, &node, call).await,
                Call::Write => call.await,
            };
            match answer {
                Err(e) if e.kind == ErrorKind::NotOwner => {
                    tracing::debug!(?at, node, reason = %e.reason, "not the owner; re-routing");
                    self.forget(at);
                    last = Some(e);
                }
                // A node that did not answer (in time) may no longer be the owner.
                Err(e) if e.code == code::UNAVAILABLE || e.is_deadline() => {
                    self.forget(at);
                    return Err(e);
                }
                r => return r,
            }
        }
        Err(last.unwrap_or_else(|| ApiError::new(code::NOT_OWNER, "no owner")))
    }

    /// Refuses to open a collection the catalog no longer has (dropped, or dropped and
    /// re-created under a new id while a read was on its way): opening it would bring
    /// back an empty copy of a dropped collection and answer from it.
    async fn check_exists(&self, info: &CollectionInfo) -> ApiResult<()> {
        let not_found = || ApiError::collection_not_found(&info.db, info.name());
        match self.coord.get(&info.db, info.name()).await {
            Ok(now) if now.id == info.id => Ok(()),
            Ok(_) => Err(not_found()),
            Err(e)
                if matches!(
                    e.code,
                    code::COLLECTION_NOT_FOUND | code::DATABASE_NOT_FOUND
                ) =>
            {
                Err(not_found())
            }
            Err(e) => Err(e),
        }
    }

    /// Runs `op` once on every node owning one of the collection's vchannels.
    async fn to_owners<F, Fut>(&self, info: &CollectionInfo, op: F) -> ApiResult<()>
    where
        F: Fn(Arc<dyn StreamingApi>) -> Fut + Send + Sync,
        Fut: Future<Output = ApiResult<()>> + Send,
    {
        let mut owners = std::collections::BTreeSet::new();
        for shard in 0..info.shards {
            let at = ShardRef {
                collection: info.id,
                shard,
            };
            owners.insert(self.owner(at).await?);
        }
        for node in owners {
            op(self.node(&node)?).await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl StreamingApi for ShardRouter {
    async fn open(&self, info: CollectionInfo) -> ApiResult<()> {
        self.check_exists(&info).await?;
        self.to_owners(&info, |n| {
            let info = info.clone();
            async move { n.open(info).await }
        })
        .await
    }

    async fn drop_collection(&self, info: CollectionInfo) -> ApiResult<()> {
        self.to_owners(&info, |n| {
            let info = info.clone();
            async move { n.drop_collection(info).await }
        })
        .await
    }

    async fn insert(
        &self,
        at: ShardRef,
        partition: PartitionId,
        batch: Batch,
        upsert: bool,
    ) -> ApiResult<MutationAck> {
        self.to_shard(at, |n| {
            let batch = batch.clone();
            async move { n.insert(at, partition, batch, upsert).await }
        })
        .await
    }

    async fn delete(&self, at: ShardRef, pks: Vec<Pk>) -> ApiResult<MutationAck> {
        self.to_shard(at, |n| {
            let pks = pks.clone();
            async move { n.delete(at, pks).await }
        })
        .await
    }

    async fn flush(&self, at: ShardRef) -> ApiResult<Vec<SegmentId>> {
        self.to_shard(at, |n| async move { n.flush(at).await })
            .await
    }

    async fn search(&self, at: ShardRef, search: VectorSearch) -> ApiResult<Vec<Vec<Hit>>> {
        self.read_shard(at, |n| {
            let search = search.clone();
            async move { n.search(at, search).await }
        })
        .await
    }

    async fn query_rows(
        &self,
        at: ShardRef,
        scope: WireScope,
        limit: Option<u64>,
    ) -> ApiResult<Vec<(Pk, SegmentId, u32)>> {
        self.read_shard(at, |n| {
            let scope = scope.clone();
            async move { n.query_rows(at, scope, limit).await }
        })
        .await
    }

    async fn count(&self, at: ShardRef, scope: WireScope) -> ApiResult<u64> {
        self.read_shard(at, |n| {
            let scope = scope.clone();
            async move { n.count(at, scope).await }
        })
        .await
    }

    async fn fetch(&self, at: ShardRef, refs: Vec<(SegmentId, u32)>) -> ApiResult<Batch> {
        self.to_shard(at, |n| {
            let refs = refs.clone();
            async move { n.fetch(at, refs).await }
        })
        .await
    }

    async fn index_state(&self, at: ShardRef, index: i64) -> ApiResult<IndexProgress> {
        self.to_shard(at, |n| async move { n.index_state(at, index).await })
            .await
    }
}
