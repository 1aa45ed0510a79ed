//! The streaming node: owns the shards (vchannels) of every collection — their WALs on
//! local disk, growing segments, flushes to object storage — and serves their reads as
//! each shard's delegator. A background task flushes shards whose growing data is
//! large or idle.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use quiver_core::ids::CollectionId;
use quiver_core::meta::MetaStore;
use quiver_core::rt::{self, disk::Disk};
use quiver_core::shard::{Shard, ShardConfig, ShardDeps};
use quiver_core::tso::TimestampOracle;
use quiver_core::wal::{Epoch, LocalWal, LocalWalOptions};

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
use quiver_core::shard::DeleteForwarder;

/// Forwards a shard's deletes to the query node serving its handed-off segments.
struct Forwarder {
    qn: Arc<dyn QueryNodeApi>,
    collection: CollectionId,
    shard: u32,
}

#[async_trait::async_trait]
impl DeleteForwarder for Forwarder {
    async fn forward(&self, deletes: &[(SegmentId, DeleteRecord)]) -> Result<(), String> {
        self.qn
            .call(QueryNodeRequest::Delete {
                collection: self.collection,
                shard: self.shard,
                deletes: deletes.to_vec(),
            })
            .await
            .map(|_| ())
            .map_err(|e| e.reason)
    }
}

#[derive(Debug, Clone)]
pub struct StreamingConfig {
    pub data_dir: PathBuf,
    pub wal: LocalWalOptions,
    /// A growing segment is sealed (and the shard flushed) at this many rows.
    pub seal_rows: usize,
    /// A shard with growing data and no writes for this long is flushed.
    pub idle_flush: Duration,
}

pub struct StreamingNode {
    cfg: StreamingConfig,
    disk: Arc<dyn Disk>,
    meta: Arc<dyn MetaStore>,
    store: Arc<dyn ObjectStore>,
    tso: Arc<dyn TimestampOracle>,
    /// Where sealed segments are handed off; `None` keeps them here.
    query_node: Option<Arc<dyn QueryNodeApi>>,
    /// Who builds indexes for sealed segments; `None` leaves them to exact search.
    data_node: Option<Arc<dyn DataNodeApi>>,
    /// Indexes known to be built: (segment, index id).
    built: std::sync::Mutex<std::collections::BTreeSet<(SegmentId, i64)>>,
    /// Indexes the query node has for handed-off segments: (segment, index id).
    served_with: std::sync::Mutex<std::collections::BTreeSet<(SegmentId, i64)>>,
    epoch: Epoch,
    shards: tokio::sync::RwLock<BTreeMap<CollectionId, Opened>>,
}

/// An open collection: its catalog entry (for schemas and filters) and its shards.
#[derive(Clone)]
struct Opened {
    info: CollectionInfo,
    shards: Vec<Arc<Shard>>,
}

const EPOCH_KEY: &str = "streaming/epoch";

impl StreamingNode {
    /// Starts the node: takes a new fencing epoch (above every earlier incarnation's).
    pub async fn start(
        cfg: StreamingConfig,
        disk: Arc<dyn Disk>,
        meta: Arc<dyn MetaStore>,
        store: Arc<dyn ObjectStore>,
        tso: Arc<dyn TimestampOracle>,
        query_node: Option<Arc<dyn QueryNodeApi>>,
        data_node: Option<Arc<dyn DataNodeApi>>,
    ) -> ApiResult<Arc<Self>> {
        let epoch = loop {
            let cur = meta.get(EPOCH_KEY).await?;
            let n = match &cur {
                Some(v) if v.len() == 8 => u64::from_le_bytes(v[..].try_into().expect("8 bytes")),
                Some(_) => return Err(ApiError::internal("corrupt streaming epoch")),
                None => 0,
            } + 1;
            if meta
                .compare_and_swap(EPOCH_KEY, cur.as_deref(), Some(n.to_le_bytes().to_vec()))
                .await?
            {
                break Epoch(n);
            }
        };
        tracing::info!(epoch = epoch.0, "streaming node started");
        Ok(Arc::new(StreamingNode {
            cfg,
            disk,
            meta,
            store,
            tso,
            query_node,
            data_node,
            built: Default::default(),
            served_with: Default::default(),
            epoch,
            shards: tokio::sync::RwLock::new(BTreeMap::new()),
        }))
    }

    fn wal_dir(&self, info: &CollectionInfo, shard: usize) -> PathBuf {
        self.cfg
            .data_dir
            .join("wal")
            .join(info.vchannels()[shard].0.as_str())
    }

    /// The collection's shards, opening (and recovering) them on first use.
    pub async fn shards(&self, info: &CollectionInfo) -> ApiResult<Vec<Arc<Shard>>> {
        if let Some(o) = self.shards.read().await.get(&info.id) {
            if o.info == *info {
                return Ok(o.shards.clone());
            }
        }
        let mut all = self.shards.write().await;
        if let Some(o) = all.get_mut(&info.id) {
            // A newer catalog entry (an index was created, a partition added).
            o.info = info.clone();
            return Ok(o.shards.clone());
        }
        let schema = Arc::new(info.schema.clone());
        let mut opened = Vec::new();
        for (i, vchannel) in info.vchannels().into_iter().enumerate() {
            let wal = LocalWal::open(
                self.disk.clone(),
                self.wal_dir(info, i),
                self.cfg.wal.clone(),
            )
            .map_err(|e| ApiError::internal(format!("WAL of {vchannel}: {e}")))?;
            let shard = Shard::open(
                ShardConfig {
                    collection: info.id,
                    vchannel,
                    schema: schema.clone(),
                    seal_rows: self.cfg.seal_rows,
                    first_segment_id: ((i as i64) << 40) + 1,
                },
                ShardDeps {
                    wal: Arc::new(wal),
                    epoch: self.epoch,
                    meta: self.meta.clone(),
                    store: self.store.clone(),
                    tso: self.tso.clone(),
                    forwarder: self.forwarder(info, i),
                },
            )
            .await?;
            opened.push(Arc::new(shard));
        }
        all.insert(
            info.id,
            Opened {
                info: info.clone(),
                shards: opened.clone(),
            },
        );
        Ok(opened)
    }

    /// Closes a dropped collection's shards and deletes their WALs and manifests.
    /// (Its segment objects stay in object storage as garbage for a later sweep.)
    pub async fn drop_collection(&self, info: &CollectionInfo) -> ApiResult<()> {
        self.shards.write().await.remove(&info.id);
        for (i, vchannel) in info.vchannels().iter().enumerate() {
            let dir = self.wal_dir(info, i);
            if let Ok(files) = self.disk.list(&dir) {
                for f in files {
                    self.disk.remove(&dir.join(f)).map_err(|e| {
                        ApiError::internal(format!("removing WAL of {vchannel}: {e}"))
                    })?;
                }
            }
            self.meta
                .delete(&format!("shard/{}/{}/manifest", info.id, vchannel))
                .await?;
        }
        Ok(())
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
                    .enumerate()
                    .map(|(i, s)| (o.info.clone(), i as u32, s.clone()))
            })
            .collect();
        for (info, i, shard) in all {
            let st = shard.stats().await;
            let idle = st
                .last_mutation
                .is_some_and(|t| rt::now().duration_since(t) >= self.cfg.idle_flush);
            if st.growing_rows >= self.cfg.seal_rows || (st.growing_rows > 0 && idle) {
                if let Err(e) = shard.flush().await {
                    tracing::warn!(vchannel = %shard.config().vchannel, error = %e, "background flush failed; will retry");
                }
            }
            // Sealed segments still served here (new, recovered or taken back) move on.
            self.hand_off(&info, i, &shard).await;
        }
    }

    /// Hands the shard's local sealed segments to the query node, if there is one.
    /// A failure leaves them served here; the next tick tries again.
    async fn hand_off(&self, info: &CollectionInfo, shard_idx: u32, shard: &Shard) {
        let Some(qn) = &self.query_node else { return };
        self.build_indexes(info, shard_idx, shard).await;
        let res = shard
            .hand_off(|segments| async move {
                qn.call(QueryNodeRequest::Load {
                    info: info.clone(),
                    shard: shard_idx,
                    segments,
                })
                .await
                .map(|_| ())
                .map_err(|e| e.reason)
            })
            .await;
        match res {
            Ok(ids) if !ids.is_empty() => {
                // The query node loaded every index file that existed.
                let built = self.built.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let mut served = self.served_with.lock().unwrap_or_else(|e| e.into_inner());
                served.extend(built.into_iter().filter(|(seg, _)| ids.contains(seg)));
                drop(served);
                tracing::info!(vchannel = %shard.config().vchannel, segments = ?ids, "handed off to the query node")
            }
            Ok(_) => {}
            Err(e) => {
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
                if let (Some(qn), true, false) = (&self.query_node, remote.contains(&files), served)
                {
                    let req = QueryNodeRequest::LoadIndex {
                        info: Box::new(info.clone()),
                        shard: shard_idx,
                        files: Box::new(files.clone()),
                        index: Box::new(index.clone()),
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
    fn forwarder(&self, info: &CollectionInfo, shard: usize) -> Option<Arc<dyn DeleteForwarder>> {
        let qn = self.query_node.clone()?;
        Some(Arc::new(Forwarder {
            qn,
            collection: info.id,
            shard: shard as u32,
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

    /// Takes back stale handed-off segments, then returns the healthy remote ids.
    async fn usable_remote(
        &self,
        shard: &Shard,
        remote: Vec<(SegmentId, bool)>,
    ) -> ApiResult<Vec<SegmentId>> {
        let stale: Vec<SegmentId> = remote
            .iter()
            .filter(|(_, s)| *s)
            .map(|(id, _)| *id)
            .collect();
        if !stale.is_empty() {
            shard.reclaim(&stale).await?;
        }
        Ok(remote
            .into_iter()
            .filter(|(_, s)| !s)
            .map(|(id, _)| id)
            .collect())
    }

    async fn opened(
        &self,
        collection: CollectionId,
        shard: u32,
    ) -> ApiResult<(CollectionInfo, Arc<Shard>)> {
        let all = self.shards.read().await;
        let o = all.get(&collection).ok_or_else(|| {
            ApiError::new(
                code::NOT_OPEN,
                format!("collection {collection} is not open on this streaming node"),
            )
        })?;
        let s = o.shards.get(shard as usize).ok_or_else(|| {
            ApiError::invalid(format!("collection {collection} has no shard {shard}"))
        })?;
        Ok((o.info.clone(), s.clone()))
    }

    /// Serves one internal request.
    #[tracing::instrument(skip_all, fields(op = req.name()))]
    pub async fn handle(&self, req: StreamRequest) -> ApiResult<StreamResponse> {
        match req {
            StreamRequest::Open { info } => {
                self.shards(&info).await?;
                Ok(StreamResponse::Done)
            }
            StreamRequest::Drop { info } => {
                self.drop_collection(&info).await?;
                if let Some(qn) = &self.query_node {
                    if let Err(e) = qn
                        .call(QueryNodeRequest::DropCollection {
                            collection: info.id,
                        })
                        .await
                    {
                        tracing::warn!(error = %e.reason, "query node did not drop the collection; its copies are orphaned");
                    }
                }
                Ok(StreamResponse::Done)
            }
            StreamRequest::Insert {
                collection,
                shard,
                partition,
                batch,
                upsert,
            } => {
                let (_, s) = self.opened(collection, shard).await?;
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
                let (_, s) = self.opened(collection, shard).await?;
                Ok(StreamResponse::Ack(s.delete(pks).await?))
            }
            StreamRequest::Flush { collection, shard } => {
                let (_, s) = self.opened(collection, shard).await?;
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
                let (info, s) = self.opened(collection, shard).await?;
                let scope = Self::snapshot(&s, scope).await?;
                let pred = scope.compile(&info)?;
                let f = |seg: &dyn SegmentView, row: usize| pred.eval(seg.data(), row);
                let rs = quiver_core::shard::ReadScope {
                    range: crate::rpc::wire::score_range(&params)?,
                    ..scope.read_scope(&pred, &f)
                };
                let k = k as usize;
                let (mut local, remote) = s.search_split(field, &queries, k, metric, rs).await;
                let remote = self.usable_remote(&s, remote).await?;
                if let (Some(qn), false) = (&self.query_node, remote.is_empty()) {
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
                    match qn.call(req).await {
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
                            local = s.search_scoped(field, &queries, k, metric, rs).await;
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
                let (info, s) = self.opened(collection, shard).await?;
                let scope = Self::snapshot(&s, scope).await?;
                let pred = scope.compile(&info)?;
                let f = |seg: &dyn SegmentView, row: usize| pred.eval(seg.data(), row);
                let rs = scope.read_scope(&pred, &f);
                let limit_us = limit.map(|l| l as usize);
                let (mut rows, remote) = s.query_rows_split(rs, limit_us).await;
                let remote = self.usable_remote(&s, remote).await?;
                if let (Some(qn), false) = (&self.query_node, remote.is_empty()) {
                    let req = QueryNodeRequest::QueryRows {
                        collection,
                        shard,
                        segments: remote.clone(),
                        scope: scope.clone(),
                        limit,
                    };
                    match qn.call(req).await {
                        Ok(StreamResponse::Rows(r)) => {
                            rows.extend(r);
                            rows.sort();
                            if let Some(l) = limit_us {
                                rows.truncate(l);
                            }
                        }
                        other => {
                            tracing::warn!(error = ?other.err(), "query node query failed; serving its segments here");
                            s.reclaim(&remote).await?;
                            rows = s.query_rows(rs, limit_us).await;
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
                let (info, s) = self.opened(collection, shard).await?;
                let scope = Self::snapshot(&s, scope).await?;
                let pred = scope.compile(&info)?;
                let f = |seg: &dyn SegmentView, row: usize| pred.eval(seg.data(), row);
                let rs = scope.read_scope(&pred, &f);
                let (mut n, remote) = s.count_split(rs).await;
                let remote = self.usable_remote(&s, remote).await?;
                if let (Some(qn), false) = (&self.query_node, remote.is_empty()) {
                    let req = QueryNodeRequest::Count {
                        collection,
                        shard,
                        segments: remote.clone(),
                        scope: scope.clone(),
                    };
                    match qn.call(req).await {
                        Ok(StreamResponse::Count(m)) => n += m as usize,
                        other => {
                            tracing::warn!(error = ?other.err(), "query node count failed; serving its segments here");
                            s.reclaim(&remote).await?;
                            n = s.count(rs).await;
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
                let (_, s) = self.opened(collection, shard).await?;
                let (near, far_pos) = s.fetch_split(&refs).await?;
                if far_pos.is_empty() {
                    return Ok(StreamResponse::Fetched(near));
                }
                let far: Vec<(SegmentId, u32)> = far_pos.iter().map(|&p| refs[p]).collect();
                let qn = self
                    .query_node
                    .as_ref()
                    .ok_or_else(|| ApiError::internal("remote segments without a query node"))?;
                let far_batch = match qn
                    .call(QueryNodeRequest::Fetch {
                        collection,
                        shard,
                        refs: far.clone(),
                    })
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
