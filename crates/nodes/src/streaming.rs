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
use quiver_core::tso::TsoAllocator;
use quiver_core::wal::{Epoch, LocalWal, LocalWalOptions};

use crate::coordinator::CollectionInfo;
use crate::error::{ApiError, ApiResult};

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
    tso: Arc<TsoAllocator>,
    epoch: Epoch,
    shards: tokio::sync::RwLock<BTreeMap<CollectionId, Vec<Arc<Shard>>>>,
}

const EPOCH_KEY: &str = "streaming/epoch";

impl StreamingNode {
    /// Starts the node: takes a new fencing epoch (above every earlier incarnation's).
    pub async fn start(
        cfg: StreamingConfig,
        disk: Arc<dyn Disk>,
        meta: Arc<dyn MetaStore>,
        store: Arc<dyn ObjectStore>,
        tso: Arc<TsoAllocator>,
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
        if let Some(s) = self.shards.read().await.get(&info.id) {
            return Ok(s.clone());
        }
        let mut all = self.shards.write().await;
        if let Some(s) = all.get(&info.id) {
            return Ok(s.clone());
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
        all.insert(info.id, opened.clone());
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
            .flatten()
            .cloned()
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
