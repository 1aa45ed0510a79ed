//! The streaming node: owns the shards (vchannels) the coordinator assigns it — their
//! WALs (on local disk, or in a WAL store in a cluster), growing segments, flushes to
//! object storage — and serves their reads as each shard's delegator. A background task
//! flushes shards whose growing data is large or idle; another heartbeats the
//! coordinator, which keeps the node's lease and tells it which vchannels it owns.
//!
//! Ownership is checked three ways: a shard opens only on the node the coordinator
//! names, under the epoch it names; the WAL refuses appends and time ticks under an
//! older epoch once a new owner claimed it; and a node whose lease ran out serves
//! nothing until a heartbeat renews it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use quiver_core::ids::{CollectionId, VChannel};
use quiver_core::meta::MetaStore;
use quiver_core::rt::{self, disk::Disk};
use quiver_core::shard::{Shard, ShardConfig, ShardDeps};
use quiver_core::tso::TimestampOracle;
use quiver_core::wal::{Epoch, LocalWal, LocalWalOptions, Wal, WalError};

use crate::channels::{ChannelAssignment, HEARTBEAT, LEASE};
use crate::coordinator::CoordinatorApi;
use crate::error::WAL_FAILURE;
use crate::walstore::{RemoteWal, WalRequest, WalStoreApi};

/// A node serves for this long after sending a heartbeat the coordinator answered:
/// a second less than the coordinator waits before giving its vchannels away.
const LEASE_MARGIN: Duration = LEASE.saturating_sub(Duration::from_secs(1));

use quiver_core::segment::SegmentView;

use crate::coordinator::CollectionInfo;
use crate::error::{code, ApiError, ApiResult};
use crate::rpc::wire::DataNodeRequest;
use crate::rpc::wire::{QueryNodeRequest, StreamRequest, StreamResponse, WireHit, WireScope};
use crate::rpc::{DataNodeApi, QueryNodeApi};
use quiver_core::ids::SegmentId;
use quiver_core::search::{reduce, Hit};
use quiver_core::segment::storage::SegmentFiles;
use quiver_core::segment::DeleteRecord;
use quiver_core::shard::{DeleteForwarder, RemoteError};

/// Which handed-off segments a read takes back before it trusts its local part.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TakeBack {
    /// Only stale ones (their query node failed): healthy ones are asked remotely.
    Stale,
    /// All of them: the query node just failed this read.
    All,
}

/// Runs a split read (local part here, remote segments named) until no segment it
/// touches needs taking back, taking back what does; returns the local answer with
/// the remaining (healthy) remote segments. Running the read again after each take-back
/// is what keeps a segment from being in neither part: one taken back, or handed off by
/// a concurrent tick, between two attempts is seen by the next.
async fn settled_read<T, F, Fut>(
    shard: &Shard,
    take_back: TakeBack,
    read: F,
) -> ApiResult<(T, Vec<SegmentId>)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (T, Vec<(SegmentId, bool)>)>,
{
    for _ in 0..5 {
        let (out, remote) = read().await;
        let back: Vec<SegmentId> = remote
            .iter()
            .filter(|(_, stale)| *stale || take_back == TakeBack::All)
            .map(|(id, _)| *id)
            .collect();
        if back.is_empty() {
            return Ok((out, remote.into_iter().map(|(id, _)| id).collect()));
        }
        shard.reclaim(&back).await?;
    }
    Err(ApiError::new(
        code::UNAVAILABLE,
        format!(
            "{}: handed-off segments keep changing under the read; retry it",
            shard.config().vchannel
        ),
    ))
}

/// A split read whose stale remote segments have been taken back.
async fn split_read<T, F, Fut>(shard: &Shard, read: F) -> ApiResult<(T, Vec<SegmentId>)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (T, Vec<(SegmentId, bool)>)>,
{
    settled_read(shard, TakeBack::Stale, read).await
}

/// The fallback when a query node fails a read: everything taken back, answered here.
async fn all_local<T, F, Fut>(shard: &Shard, read: F) -> ApiResult<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (T, Vec<(SegmentId, bool)>)>,
{
    Ok(settled_read(shard, TakeBack::All, read).await?.0)
}

/// The query node each shard copy hands its sealed segments to, as the coordinator
/// assigned it (see [`crate::querycoord`]).
///
/// The invariant that keeps reads whole: a shard copy's handed-off segments are all on
/// its current target. So the target changes only in `hand_off`, and only while none
/// of the copy's segments is remote; a failing target is marked suspect (its segments
/// are taken back by the read or delete that found it failing), and the next handoff
/// asks the coordinator for another. Entries are per (vchannel, epoch): a reopened copy
/// recovers every segment locally and chooses afresh.
struct QueryTargets {
    nodes: Vec<(String, Arc<dyn QueryNodeApi>)>,
    chosen: std::sync::Mutex<BTreeMap<(String, u64), (String, bool)>>,
}

impl QueryTargets {
    fn node(&self, id: &str) -> Option<Arc<dyn QueryNodeApi>> {
        self.nodes
            .iter()
            .find(|(n, _)| n == id)
            .map(|(_, q)| q.clone())
    }

    /// The current target of a shard copy; `None` before its first handoff (when none
    /// of its segments can be remote) or without query nodes.
    fn get(&self, vchannel: &str, epoch: u64) -> Option<Arc<dyn QueryNodeApi>> {
        let chosen = self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        let (id, _) = chosen.get(&(vchannel.to_string(), epoch))?;
        self.node(id)
    }

    /// The target and whether it is suspect.
    fn entry(&self, vchannel: &str, epoch: u64) -> Option<(String, bool)> {
        let chosen = self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        chosen.get(&(vchannel.to_string(), epoch)).cloned()
    }

    fn set(&self, vchannel: &str, epoch: u64, id: String) {
        let mut chosen = self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        chosen.retain(|(v, e), _| v != vchannel || *e >= epoch);
        chosen.insert((vchannel.to_string(), epoch), (id, false));
    }

    /// A read, delete or load found the target failing.
    fn suspect(&self, vchannel: &str, epoch: u64) {
        self.mark(vchannel, epoch, true);
    }

    /// The target accepted a load.
    fn trust(&self, vchannel: &str, epoch: u64) {
        self.mark(vchannel, epoch, false);
    }

    fn mark(&self, vchannel: &str, epoch: u64, suspect: bool) {
        let mut chosen = self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = chosen.get_mut(&(vchannel.to_string(), epoch)) {
            e.1 = suspect;
        }
    }
}

/// A failed call to the query node, as the shard sees it.
fn remote_error(e: ApiError) -> RemoteError {
    if e.code == code::UNAVAILABLE {
        RemoteError::Unavailable(e.reason)
    } else {
        RemoteError::Refused(e.reason)
    }
}

/// Forwards a shard's deletes to the query node serving its handed-off segments.
struct Forwarder {
    targets: Arc<QueryTargets>,
    vchannel: String,
    collection: CollectionId,
    shard: u32,
    epoch: u64,
}

#[async_trait::async_trait]
impl DeleteForwarder for Forwarder {
    async fn forward(&self, deletes: &[(SegmentId, DeleteRecord)]) -> Result<(), RemoteError> {
        // Deletes reach here only for remote segments, which exist only on a target.
        let Some(qn) = self.targets.get(&self.vchannel, self.epoch) else {
            return Err(RemoteError::Unavailable(
                "no query node serves this shard's segments".into(),
            ));
        };
        let res = qn
            .call(QueryNodeRequest::Delete {
                collection: self.collection,
                shard: self.shard,
                deletes: deletes.to_vec(),
                epoch: self.epoch,
            })
            .await
            .map(|_| ())
            .map_err(remote_error);
        if res.is_err() {
            // The shard takes the segments back; the next handoff chooses again.
            self.targets.suspect(&self.vchannel, self.epoch);
        }
        res
    }
}

#[derive(Debug, Clone)]
pub struct StreamingConfig {
    /// This node's id in the vchannel assignments (its address, in a cluster).
    pub node_id: String,
    /// A growing segment is sealed (and the shard flushed) at this many rows.
    pub seal_rows: usize,
    /// A shard with growing data and no writes for this long is flushed.
    pub idle_flush: Duration,
}

/// Where a streaming node's WALs live: on its own disk (standalone) or in a WAL store
/// that other streaming nodes can reach too (a cluster, where vchannels move).
#[async_trait::async_trait]
pub trait WalOpener: Send + Sync {
    /// The log of `vchannel`, for the shard copy named `writer`.
    async fn open(&self, vchannel: &str, writer: &str) -> Result<Arc<dyn Wal>, WalError>;
    /// Deletes a dropped vchannel's log.
    async fn remove(&self, vchannel: &str) -> ApiResult<()>;
}

/// WALs on a local disk, one directory per vchannel under `<dir>/wal`. Each log is
/// opened once per process and shared by every incarnation of its shard here.
pub struct LocalWals {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    opts: LocalWalOptions,
    open: tokio::sync::Mutex<BTreeMap<String, Arc<LocalWal>>>,
}

impl LocalWals {
    pub fn new(disk: Arc<dyn Disk>, data_dir: &std::path::Path, opts: LocalWalOptions) -> Self {
        LocalWals {
            disk,
            dir: data_dir.join("wal"),
            opts,
            open: Default::default(),
        }
    }
}

#[async_trait::async_trait]
impl WalOpener for LocalWals {
    async fn open(&self, vchannel: &str, _writer: &str) -> Result<Arc<dyn Wal>, WalError> {
        let mut open = self.open.lock().await;
        if let Some(w) = open.get(vchannel) {
            return Ok(w.clone());
        }
        let w = Arc::new(LocalWal::open(
            self.disk.clone(),
            self.dir.join(vchannel),
            self.opts.clone(),
        )?);
        open.insert(vchannel.to_string(), w.clone());
        Ok(w)
    }

    async fn remove(&self, vchannel: &str) -> ApiResult<()> {
        self.open.lock().await.remove(vchannel);
        let dir = self.dir.join(vchannel);
        if let Ok(files) = self.disk.list(&dir) {
            for f in files {
                self.disk
                    .remove(&dir.join(f))
                    .map_err(|e| ApiError::internal(format!("removing WAL of {vchannel}: {e}")))?;
            }
        }
        Ok(())
    }
}

/// WALs in a [`WalStore`](crate::walstore::WalStore), reachable from every streaming node.
pub struct RemoteWals(pub Arc<dyn WalStoreApi>);

#[async_trait::async_trait]
impl WalOpener for RemoteWals {
    async fn open(&self, vchannel: &str, writer: &str) -> Result<Arc<dyn Wal>, WalError> {
        Ok(Arc::new(RemoteWal::new(self.0.clone(), vchannel, writer)))
    }

    async fn remove(&self, vchannel: &str) -> ApiResult<()> {
        self.0
            .call(WalRequest::Remove {
                log: vchannel.to_string(),
            })
            .await
            .map(|_| ())
    }
}

/// What a streaming node is started with.
pub struct StreamingDeps {
    pub meta: Arc<dyn MetaStore>,
    pub store: Arc<dyn ObjectStore>,
    pub tso: Arc<dyn TimestampOracle>,
    pub coord: Arc<dyn CoordinatorApi>,
    pub wals: Arc<dyn WalOpener>,
    /// Where sealed segments can be handed off, by query node id (the coordinator picks
    /// one per vchannel); none keeps them here.
    pub query_nodes: Vec<(String, Arc<dyn QueryNodeApi>)>,
    /// Who builds indexes for sealed segments; `None` leaves them to exact search.
    pub data_node: Option<Arc<dyn DataNodeApi>>,
}

pub struct StreamingNode {
    cfg: StreamingConfig,
    meta: Arc<dyn MetaStore>,
    store: Arc<dyn ObjectStore>,
    tso: Arc<dyn TimestampOracle>,
    coord: Arc<dyn CoordinatorApi>,
    wals: Arc<dyn WalOpener>,
    targets: Arc<QueryTargets>,
    data_node: Option<Arc<dyn DataNodeApi>>,
    /// Indexes known to be built: (segment, index id).
    built: std::sync::Mutex<std::collections::BTreeSet<(SegmentId, i64)>>,
    /// Indexes the query node has for handed-off segments: (segment, index id).
    served_with: std::sync::Mutex<std::collections::BTreeSet<(SegmentId, i64)>>,
    /// This node may serve until then: the send time of its last acknowledged
    /// heartbeat plus a lease a little shorter than the coordinator's. After that the
    /// coordinator may have given its vchannels away.
    lease_until: std::sync::Mutex<Option<rt::Instant>>,
    /// The epoch each vchannel was last opened under in this process.
    incarnations: std::sync::Mutex<BTreeMap<String, u64>>,
    opening: tokio::sync::Mutex<()>,
    /// A random id of this process's life and a counter of shard copies opened: the
    /// name each copy appends under (for audits).
    incarnation: u64,
    copies: std::sync::atomic::AtomicU64,
    shards: tokio::sync::RwLock<BTreeMap<CollectionId, Opened>>,
    /// Wakes the garbage-collection loop (after a collection is dropped).
    gc_wake: Arc<tokio::sync::Notify>,
}

/// An open collection: its catalog entry (for schemas and filters) and the shards of
/// it this node owns and has opened.
#[derive(Clone)]
struct Opened {
    info: CollectionInfo,
    shards: BTreeMap<u32, Arc<Shard>>,
}

fn not_open(collection: CollectionId, why: &str) -> ApiError {
    ApiError::new(code::NOT_OPEN, format!("collection {collection} {why}"))
}

/// The open copy of shard `idx`, with the catalog entry it serves under.
fn open_copy(o: &Opened, idx: u32) -> Option<(CollectionInfo, Arc<Shard>)> {
    o.shards.get(&idx).map(|s| (o.info.clone(), s.clone()))
}

fn not_owner(vchannel: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        code::NOT_OWNER,
        format!("vchannel {vchannel} is not served here: {why}"),
    )
}

impl StreamingNode {
    /// Starts the node: its first heartbeat tells the coordinator this is a new
    /// incarnation, which takes new epochs for every vchannel the node owned.
    pub async fn start(cfg: StreamingConfig, deps: StreamingDeps) -> ApiResult<Arc<Self>> {
        let sent = rt::now();
        let owned = deps.coord.heartbeat(&cfg.node_id, true).await?;
        tracing::info!(node = %cfg.node_id, vchannels = owned.len(), "streaming node started");
        Ok(Arc::new(StreamingNode {
            cfg,
            meta: deps.meta,
            store: deps.store,
            tso: deps.tso,
            coord: deps.coord,
            wals: deps.wals,
            targets: Arc::new(QueryTargets {
                nodes: deps.query_nodes,
                chosen: std::sync::Mutex::new(BTreeMap::new()),
            }),
            gc_wake: Arc::new(tokio::sync::Notify::new()),
            data_node: deps.data_node,
            built: Default::default(),
            served_with: Default::default(),
            lease_until: std::sync::Mutex::new(Some(sent + LEASE_MARGIN)),
            incarnations: Default::default(),
            opening: Default::default(),
            incarnation: rt::Rng::from_entropy().next_u64(),
            copies: Default::default(),

            shards: tokio::sync::RwLock::new(BTreeMap::new()),
        }))
    }

    pub fn node_id(&self) -> &str {
        &self.cfg.node_id
    }

    /// Refuses an assignment naming another node.
    fn check_assigned(&self, a: &ChannelAssignment) -> ApiResult<()> {
        if a.node == self.cfg.node_id {
            Ok(())
        } else {
            Err(not_owner(&a.vchannel, format_args!("owned by {}", a.node)))
        }
    }

    /// Refuses to serve once the lease has run out.
    fn check_lease(&self, vchannel: &str) -> ApiResult<()> {
        let until = *self.lease_until.lock().unwrap_or_else(|e| e.into_inner());
        match until {
            Some(t) if rt::now() < t => Ok(()),
            _ => Err(not_owner(vchannel, "the node's lease ran out")),
        }
    }

    /// The query node serving a shard copy's handed-off segments.
    fn query_node_for(&self, shard: &Shard) -> Option<Arc<dyn QueryNodeApi>> {
        self.targets.get(&shard.config().vchannel.0, shard.epoch())
    }

    /// Asks the query node serving a shard copy's remote segments. A failure marks it
    /// suspect; the caller takes the segments back and answers here.
    async fn remote_call(&self, shard: &Shard, req: QueryNodeRequest) -> ApiResult<StreamResponse> {
        let res = match self.query_node_for(shard) {
            Some(qn) => qn.call(req).await,
            None => Err(ApiError::new(
                code::UNAVAILABLE,
                "no query node serves this shard's handed-off segments",
            )),
        };
        if res.is_err() {
            self.targets
                .suspect(&shard.config().vchannel.0, shard.epoch());
        }
        res
    }

    /// The query node to hand a shard copy's segments to: its current target, or, when
    /// it has none or found it failing and none of its segments is remote any more, the
    /// coordinator's choice. A suspect target that still serves segments is kept (it
    /// cannot be left yet); a load it accepts clears the suspicion, so a passing fault
    /// does not stop handoffs. `None` means not now (the next tick asks again).
    async fn handoff_target(&self, shard: &Shard) -> Option<Arc<dyn QueryNodeApi>> {
        if self.targets.nodes.is_empty() {
            return None;
        }
        let (vchannel, epoch) = (&shard.config().vchannel.0, shard.epoch());
        let current = self.targets.entry(vchannel, epoch);
        match &current {
            Some((id, false)) => return self.targets.node(id),
            // Segments still served by a suspect node: stay with it until reads take
            // them back (or a load succeeds).
            Some((id, true))
                if !shard.remote_files().await.is_empty()
                    && !quiver_core::mutation::active("qn-switch-while-remote") =>
            {
                return self.targets.node(id)
            }
            _ => {}
        }
        let avoid = current.map(|(id, _)| id);
        let candidates = self
            .targets
            .nodes
            .iter()
            .map(|(id, _)| id.clone())
            .collect();
        match self
            .coord
            .assign_query_node(vchannel, candidates, avoid)
            .await
        {
            Ok(id) => {
                self.targets.set(vchannel, epoch, id.clone());
                self.targets.node(&id)
            }
            Err(e) => {
                tracing::debug!(%vchannel, error = %e.reason, "no query node assignment yet; segments stay here");
                None
            }
        }
    }

    /// Records (or refreshes) a collection's catalog entry; opens nothing.
    pub async fn register(&self, info: &CollectionInfo) {
        let mut all = self.shards.write().await;
        match all.get_mut(&info.id) {
            Some(o) => {
                if o.info != *info {
                    o.info = info.clone();
                }
            }
            None => {
                all.insert(
                    info.id,
                    Opened {
                        info: info.clone(),
                        shards: BTreeMap::new(),
                    },
                );
            }
        }
    }

    /// Registers the collection and opens (recovering) every shard of it this node
    /// owns; returns them.
    pub async fn open_owned(&self, info: &CollectionInfo) -> ApiResult<Vec<Arc<Shard>>> {
        self.register(info).await;
        let mut out = Vec::new();
        for i in 0..info.shards {
            match self.shard(info.id, i).await {
                Ok((_, s)) => out.push(s),
                Err(e) if e.code == code::NOT_OWNER => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The shard, opening (and recovering) it if this node owns its vchannel.
    async fn shard(
        &self,
        collection: CollectionId,
        idx: u32,
    ) -> ApiResult<(CollectionInfo, Arc<Shard>)> {
        let info = {
            let all = self.shards.read().await;
            let o = all
                .get(&collection)
                .ok_or_else(|| not_open(collection, "is not open on this streaming node"))?;
            if let Some(found) = open_copy(o, idx) {
                self.check_lease(&found.1.config().vchannel.0)?;
                return Ok(found);
            }
            o.info.clone()
        };
        let vchannel = info.vchannels().get(idx as usize).cloned().ok_or_else(|| {
            ApiError::invalid(format!("collection {collection} has no shard {idx}"))
        })?;
        self.check_lease(&vchannel.0)?;
        // One open at a time: two racing opens of one vchannel would otherwise each
        // take an epoch, and the loser's would close the winner's copy.
        let _opening = self.opening.lock().await;
        if let Some(found) = self
            .shards
            .read()
            .await
            .get(&collection)
            .and_then(|o| open_copy(o, idx))
        {
            return Ok(found);
        }
        let mut a = self.coord.locate(&vchannel.0).await?;
        self.check_assigned(&a)?;
        let opened_before = self
            .incarnations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&vchannel.0)
            .copied();
        if opened_before.is_some_and(|e| e >= a.epoch) {
            // This process already had the shard open under this epoch (it was closed
            // after a lapsed lease or a WAL failure). Its old copy may still have a
            // write in flight; a new epoch makes the WAL refuse it, so nothing can be
            // appended behind the new copy's replay.
            a = self
                .coord
                .reassign(&vchannel.0, Some(&self.cfg.node_id))
                .await?;
            self.check_assigned(&a)?;
        }
        let mut all = self.shards.write().await;
        let o = all
            .get_mut(&collection)
            .ok_or_else(|| not_open(collection, "was dropped"))?;
        if let Some(found) = open_copy(o, idx) {
            return Ok(found);
        }
        let writer = format!(
            "{}/{:x}#{}",
            self.cfg.node_id,
            self.incarnation,
            self.copies
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let wal = self
            .wals
            .open(&vchannel.0, &writer)
            .await
            .map_err(|e| ApiError::internal(format!("WAL of {vchannel}: {e}")))?;
        let shard = Shard::open(
            ShardConfig {
                collection: info.id,
                vchannel: vchannel.clone(),
                schema: Arc::new(info.schema.clone()),
                seal_rows: self.cfg.seal_rows,
                first_segment_id: ((idx as i64) << 40) + 1,
            },
            ShardDeps {
                wal,
                epoch: Epoch(a.epoch),
                meta: self.meta.clone(),
                store: self.store.clone(),
                tso: self.tso.clone(),
                forwarder: self.forwarder(&info, idx, &vchannel, a.epoch),
            },
        )
        .await?;
        tracing::info!(%vchannel, epoch = a.epoch, "shard opened");
        self.incarnations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(vchannel.0.clone(), a.epoch);
        let shard = Arc::new(shard);
        o.shards.insert(idx, shard.clone());
        Ok((o.info.clone(), shard))
    }

    /// Forgets an open shard (it moved, or its WAL failed): the next request reopens
    /// it from the manifest and the WAL, or finds its new owner.
    async fn close(&self, collection: CollectionId, idx: u32, why: &str) {
        let mut all = self.shards.write().await;
        if let Some(s) = all.get_mut(&collection).and_then(|o| o.shards.remove(&idx)) {
            tracing::warn!(vchannel = %s.config().vchannel, why, "shard closed");
        }
    }

    /// Closes a dropped collection's shards and deletes their WALs and manifests.
    /// (Its segment objects are removed by the next garbage-collection sweep.)
    pub async fn drop_collection(&self, info: &CollectionInfo) -> ApiResult<()> {
        self.shards.write().await.remove(&info.id);
        for vchannel in info.vchannels().iter() {
            self.wals.remove(&vchannel.0).await?;
            self.meta
                .delete(&format!("shard/{}/{}/manifest", info.id, vchannel))
                .await?;
        }
        Ok(())
    }

    /// One heartbeat: renews the lease, closes shards that moved elsewhere and takes
    /// over (in the background) the vchannels newly assigned here, so a moved or
    /// orphaned vchannel is recovered and fenced at once, not at its first request.
    pub async fn heartbeat(self: &Arc<Self>) -> ApiResult<()> {
        let sent = rt::now();
        let owned = self.coord.heartbeat(&self.cfg.node_id, false).await?;
        *self.lease_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(sent + LEASE_MARGIN);
        let owned: BTreeMap<String, u64> =
            owned.into_iter().map(|a| (a.vchannel, a.epoch)).collect();
        self.take_over(&owned).await;
        let gone: Vec<(CollectionId, u32)> = self
            .shards
            .read()
            .await
            .values()
            .flat_map(|o| {
                o.shards
                    .iter()
                    .filter(|(_, s)| owned.get(&s.config().vchannel.0).copied() != Some(s.epoch()))
                    .map(|(i, _)| (o.info.id, *i))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (c, i) in gone {
            self.close(c, i, "the vchannel has a new owner or epoch")
                .await;
        }
        Ok(())
    }

    /// Opens the owned vchannels that are not open here yet (each in its own task).
    async fn take_over(self: &Arc<Self>, owned: &BTreeMap<String, u64>) {
        let mut known: BTreeMap<String, (CollectionId, u32, bool)> = BTreeMap::new();
        for o in self.shards.read().await.values() {
            for (i, v) in o.info.vchannels().into_iter().enumerate() {
                let open = o.shards.contains_key(&(i as u32));
                known.insert(v.0, (o.info.id, i as u32, open));
            }
        }
        if owned
            .keys()
            .any(|v| known.get(v).is_none_or(|&(_, _, open)| !open))
        {
            // A vchannel to take over: its collection's catalog entry may be unknown
            // here, or stale (this node may have missed changes while it owned no
            // vchannel of the collection), so fetch it fresh.

            if let Ok(all) = self.coord.all().await {
                for info in all {
                    if info.vchannels().iter().any(|v| owned.contains_key(&v.0)) {
                        self.register(&info).await;
                        for (i, v) in info.vchannels().into_iter().enumerate() {
                            known.insert(v.0, (info.id, i as u32, false));
                        }
                    }
                }
            }
        }
        for v in owned.keys() {
            let Some(&(c, i, false)) = known.get(v) else {
                continue;
            };
            let node = self.clone();
            rt::spawn(async move {
                if let Err(e) = node.shard(c, i).await {
                    tracing::debug!(error = %e.reason, "taking over a vchannel failed; will retry");
                }
            });
        }
    }

    /// Runs [`StreamingNode::heartbeat`] every [`HEARTBEAT`] until the node is dropped.
    pub fn spawn_heartbeat_loop(self: &Arc<Self>) -> rt::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        rt::spawn(async move {
            loop {
                rt::sleep(HEARTBEAT).await;
                let Some(node) = weak.upgrade() else { return };
                if let Err(e) = node.heartbeat().await {
                    tracing::warn!(error = %e.reason, "heartbeat failed");
                }
            }
        })
    }

    /// Flushes every open shard that has growing data past the size or idle bounds.
    pub async fn flush_due(&self) {
        let all: Vec<(CollectionInfo, u32, Arc<Shard>)> = self
            .shards
            .read()
            .await
            .values()
            .flat_map(|o| {
                o.shards
                    .iter()
                    .map(|(i, s)| (o.info.clone(), *i, s.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (info, i, shard) in all {
            if self.check_lease(&shard.config().vchannel.0).is_err() {
                return;
            }
            let st = shard.stats().await;
            let idle = st
                .last_mutation
                .is_some_and(|t| rt::now().duration_since(t) >= self.cfg.idle_flush);
            if st.growing_rows >= self.cfg.seal_rows || (st.growing_rows > 0 && idle) {
                if let Err(e) = shard.flush().await {
                    tracing::warn!(vchannel = %shard.config().vchannel, error = %e, "background flush failed; will retry");
                    if e.needs_reopen() {
                        self.close(info.id, i, "a flush left the shard's state uncertain")
                            .await;
                        continue;
                    }
                }
            }
            // Sealed segments still served here (new, recovered or taken back) move on.
            self.hand_off(&info, i, &shard).await;
        }
    }

    /// Hands the shard's local sealed segments to the query node, if there is one.
    /// A failure leaves them served here; the next tick tries again.
    async fn hand_off(&self, info: &CollectionInfo, shard_idx: u32, shard: &Shard) {
        let Some(qn) = self.handoff_target(shard).await else {
            return;
        };
        self.build_indexes(info, shard_idx, shard).await;
        let res = shard
            .hand_off(|segments| async move {
                qn.call(QueryNodeRequest::Load {
                    info: info.clone(),
                    shard: shard_idx,
                    segments,
                    epoch: shard.epoch(),
                })
                .await
                .map(|_| ())
                .map_err(remote_error)
            })
            .await;
        match res {
            Ok(ids) if !ids.is_empty() => {
                self.targets
                    .trust(&shard.config().vchannel.0, shard.epoch());
                // The query node loaded every index file that existed.
                let built = self.built.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let mut served = self.served_with.lock().unwrap_or_else(|e| e.into_inner());
                served.extend(built.into_iter().filter(|(seg, _)| ids.contains(seg)));
                drop(served);
                tracing::info!(vchannel = %shard.config().vchannel, segments = ?ids, "handed off to the query node")
            }
            Ok(_) => {}
            Err(e) => {
                self.targets
                    .suspect(&shard.config().vchannel.0, shard.epoch());
                tracing::warn!(vchannel = %shard.config().vchannel, error = %e, "handoff failed; segments stay here")
            }
        }
    }

    /// Has the data node build every index of the collection for the shard's local
    /// sealed segments. A failure is logged and retried at the next tick; meanwhile
    /// the segment is searched exactly, which is slower but never wrong.
    async fn build_indexes(&self, info: &CollectionInfo, shard_idx: u32, shard: &Shard) {
        let Some(dn) = &self.data_node else { return };
        // The catalog entry this node holds may be newer than the caller's.
        let info = match self.shards.read().await.get(&info.id) {
            Some(o) => o.info.clone(),
            None => return,
        };
        let remote: Vec<SegmentFiles> = shard.remote_files().await;
        let mut all = shard.local_sealed_files().await;
        all.extend(remote.iter().cloned());
        for files in all {
            for index in info
                .indexes
                .iter()
                .filter(|i| crate::datanode::needs_build(i))
            {
                let key = (files.id, index.id);
                let built = self
                    .built
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(&key);
                if !built {
                    let req = DataNodeRequest::BuildIndex {
                        info: info.clone(),
                        files: files.clone(),
                        index: index.clone(),
                    };
                    if let Err(e) = dn.call(req).await {
                        tracing::warn!(segment = files.id.0, error = %e.reason, "index build failed; the segment is searched exactly");
                        continue;
                    }
                    self.built
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(key);
                }
                // A segment handed off before this index existed: the query node loads
                // the index beside the segment it already serves.
                let served = self
                    .served_with
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(&key);
                if let (Some(qn), true, false) =
                    (self.query_node_for(shard), remote.contains(&files), served)
                {
                    let req = QueryNodeRequest::LoadIndex {
                        info: Box::new(info.clone()),
                        shard: shard_idx,
                        files: Box::new(files.clone()),
                        index: Box::new(index.clone()),
                        epoch: shard.epoch(),
                    };
                    match qn.call(req).await {
                        Ok(_) => {
                            self.served_with
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(key);
                        }
                        Err(e) => {
                            tracing::warn!(segment = files.id.0, error = %e.reason, "query node could not load a new index")
                        }
                    }
                }
            }
        }
    }

    /// The delete forwarder of a shard, when segments can be handed off.
    fn forwarder(
        &self,
        info: &CollectionInfo,
        shard: u32,
        vchannel: &VChannel,
        epoch: u64,
    ) -> Option<Arc<dyn DeleteForwarder>> {
        if self.targets.nodes.is_empty() {
            return None;
        }
        Some(Arc::new(Forwarder {
            targets: self.targets.clone(),
            vchannel: vchannel.0.clone(),
            collection: info.id,
            shard,
            epoch,
        }))
    }

    /// Picks the snapshot a read executes at: the shard's safe timestamp once it has
    /// reached the read's guarantee. Writes are applied before they are acknowledged,
    /// so instead of waiting for a time tick the delegator takes one.
    async fn snapshot(shard: &Shard, mut scope: WireScope) -> ApiResult<WireScope> {
        let tsafe = shard.tsafe().await;
        scope.read_ts = if tsafe >= scope.guarantee_ts {
            tsafe
        } else {
            shard.tick().await?
        };
        Ok(scope)
    }

    /// Serves one internal request.
    #[tracing::instrument(skip_all, fields(op = req.name()))]
    pub async fn handle(&self, req: StreamRequest) -> ApiResult<StreamResponse> {
        let target = req.target();
        let res = self.dispatch(req).await;
        if let (Err(e), Some((c, i))) = (&res, target) {
            // A shard whose vchannel moved on, or whose WAL failed (its state may no
            // longer match the log), is closed: the next request reopens it from the
            // manifest and the WAL, or learns the new owner.
            if e.code == code::NOT_OWNER || e.reason.starts_with(WAL_FAILURE) {
                self.close(c, i, &e.reason).await;
            }
        }
        res
    }

    async fn dispatch(&self, req: StreamRequest) -> ApiResult<StreamResponse> {
        match req {
            StreamRequest::Open { info } => {
                self.register(&info).await;
                Ok(StreamResponse::Done)
            }
            StreamRequest::Drop { info } => {
                self.drop_collection(&info).await?;
                for (_, qn) in &self.targets.nodes {
                    if let Err(e) = qn
                        .call(QueryNodeRequest::DropCollection {
                            collection: info.id,
                        })
                        .await
                    {
                        tracing::warn!(error = %e.reason, "query node did not drop the collection; its copies are orphaned");
                    }
                }
                self.gc_wake.notify_one();
                Ok(StreamResponse::Done)
            }
            StreamRequest::Insert {
                collection,
                shard,
                partition,
                batch,
                upsert,
            } => {
                let (_, s) = self.shard(collection, shard).await?;
                let ack = if upsert {
                    s.upsert(partition, batch).await?
                } else {
                    s.insert(partition, batch).await?
                };
                Ok(StreamResponse::Ack(ack))
            }
            StreamRequest::Delete {
                collection,
                shard,
                pks,
            } => {
                let (_, s) = self.shard(collection, shard).await?;
                Ok(StreamResponse::Ack(s.delete(pks).await?))
            }
            StreamRequest::Flush { collection, shard } => {
                let (_, s) = self.shard(collection, shard).await?;
                // Index builds and the handoff happen on the next tick, off this call.
                let m = s.flush().await?;
                Ok(StreamResponse::Flushed {
                    segments: m.segments.iter().map(|f| f.id).collect(),
                })
            }
            StreamRequest::Search {
                collection,
                shard,
                field,
                queries,
                k,
                metric,
                scope,
                params,
            } => {
                let (info, s) = self.shard(collection, shard).await?;
                let scope = Self::snapshot(&s, scope).await?;
                let pred = scope.compile(&info)?;
                let f = |seg: &dyn SegmentView, row: usize| pred.eval(seg.data(), row);
                let rs = quiver_core::shard::ReadScope {
                    range: crate::rpc::wire::score_range(&params)?,
                    ..scope.read_scope(&pred, &f)
                };
                let k = k as usize;
                let (mut local, remote) =
                    split_read(&s, || s.search_split(field, &queries, k, metric, rs)).await?;
                if !remote.is_empty() {
                    let req = QueryNodeRequest::Search {
                        collection,
                        shard,
                        segments: remote.clone(),
                        field,
                        queries: queries.clone(),
                        k: k as u32,
                        metric,
                        scope: scope.clone(),
                        params: params.clone(),
                    };
                    match self.remote_call(&s, req).await {
                        Ok(StreamResponse::Hits(h)) => {
                            for (q, hits) in h.into_iter().enumerate() {
                                let mut merged = std::mem::take(&mut local[q]);
                                merged.extend(hits.into_iter().map(|w| Hit {
                                    pk: w.pk,
                                    score: w.score,
                                    distance: w.distance,
                                    segment: w.segment,
                                    row: w.row,
                                }));
                                local[q] = reduce(vec![merged], k);
                            }
                        }
                        other => {
                            tracing::warn!(error = ?other.err(), "query node search failed; serving its segments here");
                            s.reclaim(&remote).await?;
                            local =
                                all_local(&s, || s.search_split(field, &queries, k, metric, rs))
                                    .await?;
                        }
                    }
                }
                Ok(StreamResponse::Hits(
                    local
                        .into_iter()
                        .map(|q| {
                            q.into_iter()
                                .map(|h| WireHit {
                                    pk: h.pk,
                                    score: h.score,
                                    distance: h.distance,
                                    segment: h.segment,
                                    row: h.row,
                                })
                                .collect()
                        })
                        .collect(),
                ))
            }
            StreamRequest::QueryRows {
                collection,
                shard,
                scope,
                limit,
            } => {
                let (info, s) = self.shard(collection, shard).await?;
                let scope = Self::snapshot(&s, scope).await?;
                let pred = scope.compile(&info)?;
                let f = |seg: &dyn SegmentView, row: usize| pred.eval(seg.data(), row);
                let rs = scope.read_scope(&pred, &f);
                let limit_us = limit.map(|l| l as usize);
                let (mut rows, remote) =
                    split_read(&s, || s.query_rows_split(rs, limit_us)).await?;
                tracing::debug!(
                    vchannel = %s.config().vchannel,
                    guarantee = scope.guarantee_ts.0,
                    read_ts = scope.read_ts.0,
                    local = rows.len(),
                    remote = ?remote,
                    "query split"
                );

                if !remote.is_empty() {
                    let req = QueryNodeRequest::QueryRows {
                        collection,
                        shard,
                        segments: remote.clone(),
                        scope: scope.clone(),
                        limit,
                    };
                    match self.remote_call(&s, req).await {
                        Ok(StreamResponse::Rows(r)) => {
                            tracing::debug!(remote_rows = r.len(), "query node answered");
                            rows.extend(r);

                            rows.sort();
                            if let Some(l) = limit_us {
                                rows.truncate(l);
                            }
                        }
                        other => {
                            tracing::warn!(error = ?other.err(), "query node query failed; serving its segments here");
                            s.reclaim(&remote).await?;
                            rows = all_local(&s, || s.query_rows_split(rs, limit_us)).await?;
                        }
                    }
                }
                Ok(StreamResponse::Rows(rows))
            }
            StreamRequest::Count {
                collection,
                shard,
                scope,
            } => {
                let (info, s) = self.shard(collection, shard).await?;
                let scope = Self::snapshot(&s, scope).await?;
                let pred = scope.compile(&info)?;
                let f = |seg: &dyn SegmentView, row: usize| pred.eval(seg.data(), row);
                let rs = scope.read_scope(&pred, &f);
                let (mut n, remote) = split_read(&s, || s.count_split(rs)).await?;
                if !remote.is_empty() {
                    let req = QueryNodeRequest::Count {
                        collection,
                        shard,
                        segments: remote.clone(),
                        scope: scope.clone(),
                    };
                    match self.remote_call(&s, req).await {
                        Ok(StreamResponse::Count(m)) => n += m as usize,
                        other => {
                            tracing::warn!(error = ?other.err(), "query node count failed; serving its segments here");
                            s.reclaim(&remote).await?;
                            n = all_local(&s, || s.count_split(rs)).await?;
                        }
                    }
                }
                Ok(StreamResponse::Count(n as u64))
            }
            StreamRequest::Fetch {
                collection,
                shard,
                refs,
            } => {
                let (_, s) = self.shard(collection, shard).await?;
                let (near, far_pos) = s.fetch_split(&refs).await?;
                if far_pos.is_empty() {
                    return Ok(StreamResponse::Fetched(near));
                }
                let far: Vec<(SegmentId, u32)> = far_pos.iter().map(|&p| refs[p]).collect();
                let far_batch = match self
                    .remote_call(
                        &s,
                        QueryNodeRequest::Fetch {
                            collection,
                            shard,
                            refs: far.clone(),
                        },
                    )
                    .await
                {
                    Ok(StreamResponse::Fetched(b)) if b.num_rows == far.len() => b,
                    other => {
                        tracing::warn!(error = ?other.err(), "query node fetch failed; serving its segments here");
                        let ids: Vec<SegmentId> = far.iter().map(|(id, _)| *id).collect();
                        s.reclaim(&ids).await?;
                        let (all, still_far) = s.fetch_split(&refs).await?;
                        if !still_far.is_empty() {
                            return Err(ApiError::internal(
                                "rows of handed-off segments could not be fetched",
                            ));
                        }
                        return Ok(StreamResponse::Fetched(all));
                    }
                };
                // Reassemble in the order asked: exactly one row per reference.
                let (mut ni, mut fi) = (0usize, 0usize);
                let mut out = quiver_core::batch::Batch::empty(&s.config().schema);
                let mut far_iter = far_pos.iter().peekable();
                for pos in 0..refs.len() {
                    if far_iter.peek() == Some(&&pos) {
                        far_iter.next();
                        out.push_row(&far_batch, fi);
                        fi += 1;
                    } else {
                        out.push_row(&near, ni);
                        ni += 1;
                    }
                }
                Ok(StreamResponse::Fetched(out))
            }
        }
    }

    /// Sweeps dropped collections out of the meta store, the WALs and object storage
    /// now, after every drop this node serves, and every `every` (see [`crate::gc`]).
    pub fn spawn_gc_loop(self: &Arc<Self>, every: Duration) -> rt::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        rt::spawn(async move {
            loop {
                let Some(node) = weak.upgrade() else { return };
                if let Err(e) = node.collect_garbage().await {
                    tracing::warn!(error = %e, "garbage collection failed; the next sweep retries");
                }
                let wake = node.gc_wake.clone();
                drop(node);
                let _ = rt::timeout(every, wake.notified()).await;
            }
        })
    }

    async fn collect_garbage(&self) -> ApiResult<()> {
        crate::gc::sweep_dropped_shards(
            self.meta.as_ref(),
            self.wals.as_ref(),
            self.coord.as_ref(),
        )
        .await?;
        crate::gc::sweep_dropped(self.store.as_ref(), self.coord.as_ref()).await?;
        Ok(())
    }

    /// Runs [`StreamingNode::flush_due`] every second until the node is dropped.
    pub fn spawn_flush_loop(self: &Arc<Self>) -> rt::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        rt::spawn(async move {
            loop {
                rt::sleep(Duration::from_secs(1)).await;
                let Some(node) = weak.upgrade() else { return };
                node.flush_due().await;
            }
        })
    }
}
