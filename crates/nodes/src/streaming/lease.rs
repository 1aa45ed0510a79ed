//! The streaming node's lease: heartbeats to the coordinator renew it and tell the
//! node which vchannels it owns; the node serves only while the lease holds, and
//! takes over newly assigned vchannels at once (recovering and fencing them) rather
//! than at their first request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use quiver_core::ids::CollectionId;
use quiver_core::rt;

use super::{not_owner, StreamingNode};
use crate::channels::{HEARTBEAT, LEASE};
use crate::error::ApiResult;
use crate::rpc::ShardRef;

/// A node serves for this long after sending a heartbeat the coordinator answered:
/// a second less than the coordinator waits before giving its vchannels away.
pub(super) const LEASE_MARGIN: Duration = LEASE.saturating_sub(Duration::from_secs(1));

impl StreamingNode {
    /// Refuses to serve once the lease has run out.
    pub(super) fn check_lease(&self, vchannel: &str) -> ApiResult<()> {
        if self.stopped() {
            return Err(not_owner(vchannel, "this start of the node failed"));
        }
        let until = *self.lease_until.lock().unwrap_or_else(|e| e.into_inner());
        match until {
            Some(t) if rt::now() < t => Ok(()),
            _ => Err(not_owner(vchannel, "the node's lease ran out")),
        }
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
        for at in self.moved_away(&owned).await {
            self.close(at, "the vchannel has a new owner or epoch")
                .await;
        }
        Ok(())
    }

    /// The open shard copies whose vchannel is no longer owned here under their epoch.
    async fn moved_away(&self, owned: &BTreeMap<String, u64>) -> Vec<ShardRef> {
        let all = self.shards.read().await;
        let mut gone = Vec::new();
        for o in all.values() {
            for (i, s) in &o.shards {
                if owned.get(&s.config().vchannel.0).copied() != Some(s.epoch()) {
                    gone.push(ShardRef {
                        collection: o.info.id,
                        shard: *i,
                    });
                }
            }
        }
        gone
    }

    /// Opens the owned vchannels that are not open here yet (each in its own task).
    async fn take_over(self: &Arc<Self>, owned: &BTreeMap<String, u64>) {
        let mut known = self.known_vchannels().await;
        if owned
            .keys()
            .any(|v| known.get(v).is_none_or(|&(_, open)| !open))
        {
            // A vchannel to take over: its collection's catalog entry may be unknown
            // here, or stale (this node may have missed changes while it owned no
            // vchannel of the collection), so fetch it fresh.
            if let Ok(all) = self.coord.all().await {
                for info in all {
                    if info.vchannels().iter().any(|v| owned.contains_key(&v.0)) {
                        self.register(&info).await;
                        for (i, v) in info.vchannels().into_iter().enumerate() {
                            known.insert(v.0, (shard_ref(info.id, i), false));
                        }
                    }
                }
            }
        }
        for v in owned.keys() {
            let Some(&(at, false)) = known.get(v) else {
                continue;
            };
            let node = self.clone();
            rt::spawn(async move {
                if let Err(e) = node.shard(at).await {
                    tracing::debug!(error = %e.reason, "taking over a vchannel failed; will retry");
                }
            });
        }
    }

    /// Every vchannel of the registered collections: its shard and whether it is open
    /// (or known to be damaged).
    async fn known_vchannels(&self) -> BTreeMap<String, (ShardRef, bool)> {
        let mut known = BTreeMap::new();
        for o in self.shards.read().await.values() {
            for (i, v) in o.info.vchannels().into_iter().enumerate() {
                // A damaged shard counts as handled: reopening cannot fix it, and a
                // take-over attempt every heartbeat would only refetch the catalog.
                let open =
                    o.shards.contains_key(&(i as u32)) || o.damaged.contains_key(&(i as u32));
                known.insert(v.0, (shard_ref(o.info.id, i), open));
            }
        }
        known
    }

    /// Runs [`StreamingNode::heartbeat`] every [`HEARTBEAT`] until the node is dropped.
    pub(super) fn spawn_heartbeat_loop(self: &Arc<Self>) -> rt::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        rt::spawn(async move {
            loop {
                rt::sleep(HEARTBEAT).await;
                let Some(node) = weak.upgrade().filter(|n| !n.stopped()) else {
                    return;
                };
                if let Err(e) = node.heartbeat().await {
                    tracing::warn!(error = %e.reason, "heartbeat failed");
                }
            }
        })
    }
}

fn shard_ref(collection: CollectionId, i: usize) -> ShardRef {
    ShardRef {
        collection,
        shard: i as u32,
    }
}
