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
use quiver_core::shard::ReadScope;

use crate::coordinator::CollectionInfo;
use crate::error::{code, ApiError, ApiResult};
use crate::rpc::wire::{StreamRequest, StreamResponse, WireHit, WireScope};

/// Compiles a wire scope's filter against the collection's schema.
fn compile_scope(
    info: &CollectionInfo,
    scope: &WireScope,
) -> ApiResult<quiver_core::expr::Predicate> {
    let params = crate::proxy::params_from_json(&scope.params_json)?;
    quiver_core::expr::compile(&scope.filter, &info.schema, &params)
        .map_err(|e| ApiError::invalid(format!("failed to create query plan: {e}")))
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
            return Ok(o.shards.clone());
        }
        let mut all = self.shards.write().await;
        if let Some(o) = all.get(&info.id) {
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
        let all: Vec<Arc<Shard>> = self
            .shards
            .read()
            .await
            .values()
            .flat_map(|o| o.shards.iter().cloned())
            .collect();
        for shard in all {
            let st = shard.stats().await;
            let idle = st
                .last_mutation
                .is_some_and(|t| rt::now().duration_since(t) >= self.cfg.idle_flush);
            if st.growing_rows >= self.cfg.seal_rows || (st.growing_rows > 0 && idle) {
                if let Err(e) = shard.flush().await {
                    tracing::warn!(vchannel = %shard.config().vchannel, error = %e, "background flush failed; will retry");
                }
            }
        }
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
            } => {
                let (info, s) = self.opened(collection, shard).await?;
                let pred = compile_scope(&info, &scope)?;
                let f = |seg: &dyn SegmentView, row: usize| pred.eval(seg.data(), row);
                let rs = ReadScope {
                    read_ts: scope.read_ts,
                    partitions: Some(&scope.partitions),
                    filter: if pred.matches_all() { None } else { Some(&f) },
                };
                let hits = s
                    .search_scoped(field, &queries, k as usize, metric, rs)
                    .await;
                Ok(StreamResponse::Hits(
                    hits.into_iter()
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
                let pred = compile_scope(&info, &scope)?;
                let f = |seg: &dyn SegmentView, row: usize| pred.eval(seg.data(), row);
                let rs = ReadScope {
                    read_ts: scope.read_ts,
                    partitions: Some(&scope.partitions),
                    filter: if pred.matches_all() { None } else { Some(&f) },
                };
                Ok(StreamResponse::Rows(
                    s.query_rows(rs, limit.map(|l| l as usize)).await,
                ))
            }
            StreamRequest::Count {
                collection,
                shard,
                scope,
            } => {
                let (info, s) = self.opened(collection, shard).await?;
                let pred = compile_scope(&info, &scope)?;
                let f = |seg: &dyn SegmentView, row: usize| pred.eval(seg.data(), row);
                let rs = ReadScope {
                    read_ts: scope.read_ts,
                    partitions: Some(&scope.partitions),
                    filter: if pred.matches_all() { None } else { Some(&f) },
                };
                Ok(StreamResponse::Count(s.count(rs).await as u64))
            }
            StreamRequest::Fetch {
                collection,
                shard,
                refs,
            } => {
                let (_, s) = self.opened(collection, shard).await?;
                Ok(StreamResponse::Fetched(s.fetch(&refs).await))
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
