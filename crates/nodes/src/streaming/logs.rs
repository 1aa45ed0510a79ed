//! The streaming node's logs: one [`SharedLog`] per pchannel it serves (or per shard,
//! for a collection created before pchannels), each with a ticker.
//!
//! The ticker appends a time tick to its log every `tick_interval` (200 ms, as in
//! Milvus) under the epoch the node holds the pchannel by, and once the tick is durable
//! advances the safe timestamp of every shard of the pchannel open here under that
//! epoch (see [`quiver_core::shard::Shard::advance_tick`] for why that is safe). A read
//! whose guarantee is ahead of its shard's tsafe asks for a tick at once. A tick
//! refused because a newer owner fenced the log retires the shards it was for: they
//! are closed and waiting readers re-route.
//!
//! Ticks go into the log whether or not mutations were written: a mutation advances
//! only its own shard's tsafe, not its pchannel neighbours'.

use std::sync::Arc;

use quiver_core::rt;
use quiver_core::shard::{Shard, TickRequests};
use quiver_core::wal::{Epoch, SharedLog, WalError};

use super::StreamingNode;
use crate::coordinator::ShardLog;
use crate::error::{ApiError, ApiResult};
use crate::rpc::ShardRef;

/// An open log and its ticker's requests.
#[derive(Clone)]
pub(super) struct OpenLog {
    pub(super) shared: Arc<SharedLog>,
    pub(super) ticks: Arc<TickRequests>,
}

impl StreamingNode {
    /// The log `log`, opened (and its ticker started) on first use.
    pub(super) async fn log(&self, log: &ShardLog, writer: &str) -> Result<OpenLog, WalError> {
        let mut logs = self.logs.lock().await;
        if let Some(open) = logs.get(&log.name) {
            return Ok(open.clone());
        }
        let wal = self.wals.open(&log.name, writer).await?;
        let shared = if log.dedicated {
            SharedLog::dedicated(&log.name, wal, self.meta.clone())
        } else {
            SharedLog::shared(&log.name, wal, self.meta.clone())
        };
        let open = OpenLog {
            shared,
            ticks: TickRequests::new(),
        };
        logs.insert(log.name.clone(), open.clone());
        self.spawn_ticker(log.name.clone(), open.ticks.clone());
        Ok(open)
    }

    /// Forgets a dropped shard's own log (from before pchannels) so that it is opened
    /// afresh if ever needed again.
    pub(super) async fn forget_log(&self, name: &str) {
        self.logs.lock().await.remove(name);
    }

    fn spawn_ticker(&self, log: String, ticks: Arc<TickRequests>) {
        let weak = self.me.clone();
        let interval = self.cfg.tick_interval;
        rt::spawn(async move {
            loop {
                ticks.wait(interval).await;
                let Some(node) = weak.upgrade().filter(|n| !n.stopped()) else {
                    return;
                };
                if !node.logs.lock().await.contains_key(&log) {
                    return; // a dropped shard's own log
                }
                if let Err(e) = node.tick(&log).await {
                    tracing::debug!(log, error = %e.reason, "time tick failed; the next one retries");
                }
            }
        });
    }

    /// The open shard copies writing to `log`.
    async fn shards_on(&self, log: &str) -> Vec<(ShardRef, Arc<Shard>)> {
        let all = self.shards.read().await;
        let mut out = Vec::new();
        for o in all.values() {
            for (i, s) in &o.shards {
                if o.info.log_of(*i).name == log {
                    let at = ShardRef {
                        collection: o.info.id,
                        shard: *i,
                    };
                    out.push((at, s.clone()));
                }
            }
        }
        out
    }

    /// One time tick of `log` for the shards open on it under the newest epoch.
    async fn tick(&self, log: &str) -> ApiResult<()> {
        let shards = self.shards_on(log).await;
        let Some(epoch) = shards.iter().map(|(_, s)| s.epoch()).max() else {
            return Ok(());
        };
        self.check_lease(log)?;
        let Some(open) = self.logs.lock().await.get(log).cloned() else {
            return Ok(());
        };
        let ts = self.tso.next().await?;
        match open.shared.append_tick(Epoch(epoch), ts).await {
            Ok(_) => {
                // Together, not one after another: a shard whose lock a flush holds
                // must not hold up its neighbours' reads.
                let current = shards.iter().filter(|(_, s)| s.epoch() == epoch);
                // A retired copy is closed by whoever retired it.
                futures::future::join_all(current.map(|(_, s)| s.advance_tick(ts))).await;
                Ok(())
            }
            Err(e @ WalError::Fenced { .. }) => {
                for (at, s) in &shards {
                    self.close(*at, Some(s), "a newer owner fenced its pchannel")
                        .await;
                }
                Err(ApiError::from(quiver_core::shard::ShardError::from(e)))
            }
            Err(e) => Err(ApiError::from(quiver_core::shard::ShardError::from(e))),
        }
    }
}
