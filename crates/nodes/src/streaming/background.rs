//! The streaming node's background work: flushing shards whose growing data is large
//! or idle and handing their sealed segments off (every second), and sweeping dropped
//! collections out of the meta store, the WALs and object storage.

use std::sync::Arc;
use std::time::Duration;

use quiver_core::rt;
use quiver_core::shard::Shard;

use super::StreamingNode;
use crate::coordinator::CollectionInfo;
use crate::error::ApiResult;
use crate::rpc::ShardRef;

impl StreamingNode {
    /// Every open shard copy with the catalog entry it serves under.
    async fn open_shards(&self) -> Vec<(CollectionInfo, ShardRef, Arc<Shard>)> {
        let all = self.shards.read().await;
        let mut out = Vec::new();
        for o in all.values() {
            for (i, s) in &o.shards {
                let at = ShardRef {
                    collection: o.info.id,
                    shard: *i,
                };
                out.push((o.info.clone(), at, s.clone()));
            }
        }
        out
    }

    /// Flushes every open shard that has growing data past the size or idle bounds,
    /// then hands off its sealed segments.
    pub async fn flush_due(&self) {
        for (info, at, shard) in self.open_shards().await {
            if self.check_lease(&shard.config().vchannel.0).is_err() {
                return;
            }
            let st = shard.stats().await;
            let now = rt::now();
            let idle = st
                .last_mutation
                .is_some_and(|t| now.duration_since(t) >= self.cfg.idle_flush);
            // Nothing to flush, but the checkpoint lags the shared log's end: moving it
            // up (a manifest-only flush) lets the pchannel's log be truncated.
            let lagging = st.growing_rows == 0
                && st.log_end > st.checkpoint
                && now.duration_since(st.last_flush) >= self.cfg.checkpoint_every;
            if st.growing_rows >= self.cfg.seal_rows || (st.growing_rows > 0 && idle) || lagging {
                if let Err(e) = shard.flush().await {
                    tracing::warn!(vchannel = %shard.config().vchannel, error = %e, "background flush failed; will retry");
                    if e.needs_reopen() {
                        self.close(at, Some(&shard), "a flush left the shard's state uncertain")
                            .await;
                        continue;
                    }
                }
            }
            // Sealed segments still served here (new, recovered or taken back) move on.
            self.delegation.of(info, at, shard).hand_off().await;
        }
    }

    /// Runs [`StreamingNode::flush_due`] every second until the node is dropped.
    pub(super) fn spawn_flush_loop(self: &Arc<Self>) -> rt::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        rt::spawn(async move {
            loop {
                rt::sleep(Duration::from_secs(1)).await;
                let Some(node) = weak.upgrade() else { return };
                node.flush_due().await;
            }
        })
    }

    /// Sweeps dropped collections out of the meta store, the WALs and object storage
    /// now, after every drop this node serves, and every `every` (see [`crate::gc`]).
    pub(super) fn spawn_gc_loop(self: &Arc<Self>, every: Duration) -> rt::JoinHandle<()> {
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
        let owner = self.removing.lock().await;
        crate::gc::sweep_dropped_shards(
            self.meta.as_ref(),
            self.wals.as_ref(),
            self.coord.as_ref(),
        )
        .await?;
        drop(owner);
        crate::gc::sweep_dropped(self.store.as_ref(), self.coord.as_ref()).await?;
        Ok(())
    }
}
