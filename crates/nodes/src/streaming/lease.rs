//! The streaming node's lease: heartbeats to the coordinator renew it and tell the
//! node which pchannels it owns; the node serves only while the lease holds, and
//! takes over the shards of newly assigned pchannels at once (recovering and fencing
//! them) rather than at their first request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use quiver_core::ids::CollectionId;
use quiver_core::rt;
use quiver_core::shard::Shard;

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

    /// One heartbeat: renews the lease, closes shards whose pchannel moved elsewhere
    /// (or took a new epoch) and takes over (in the background) the shards of
    /// pchannels newly assigned here, so they are recovered and fenced at once, not at
    /// their first request.
    pub async fn heartbeat(self: &Arc<Self>) -> ApiResult<()> {
        let sent = rt::now();
        let owned = self.coord.heartbeat(&self.cfg.node_id, false).await?;
        *self.lease_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(sent + LEASE_MARGIN);
        let owned: BTreeMap<String, u64> =
            owned.into_iter().map(|a| (a.pchannel, a.epoch)).collect();
        self.take_over(&owned).await;
        for (at, copy) in self.moved_away(&owned).await {
            self.close(at, Some(&copy), "the pchannel has a new owner or epoch")
                .await;
        }
        Ok(())
    }

    /// The open shard copies whose pchannel is no longer owned here under their epoch.
    async fn moved_away(&self, owned: &BTreeMap<String, u64>) -> Vec<(ShardRef, Arc<Shard>)> {
        let all = self.shards.read().await;
        let mut gone = Vec::new();
        for o in all.values() {
            for (i, s) in &o.shards {
                if owned.get(&o.info.pchannel(*i).0).copied() != Some(s.epoch()) {
                    gone.push((shard_ref(o.info.id, *i as usize), s.clone()));
                }
            }
        }
        gone
    }

    /// Opens the shards of owned pchannels that are not open here yet (each in its own
    /// task). The catalog is fetched when a pchannel (or epoch) is new here or a known
    /// shard of an owned pchannel is not open: collections this node never served may
    /// ride on a pchannel it just took over.
    async fn take_over(self: &Arc<Self>, owned: &BTreeMap<String, u64>) {
        let mut known = self.known_shards().await;
        let changed = {
            let mut last = self.last_owned.lock().unwrap_or_else(|e| e.into_inner());
            let changed = *last != *owned;
            *last = owned.clone();
            changed
        };
        let idle = |k: &[(ShardRef, String, bool)]| {
            k.iter().any(|(_, p, open)| !open && owned.contains_key(p))
        };
        if changed || idle(&known) {
            if let Ok(all) = self.coord.all().await {
                for info in all {
                    let mine = (0..info.shards).any(|i| owned.contains_key(&info.pchannel(i).0));
                    if !mine {
                        continue;
                    }
                    // Registering refreshes an entry this node may hold stale.
                    self.register(&info).await;
                    if !known.iter().any(|(at, _, _)| at.collection == info.id) {
                        for i in 0..info.shards {
                            known.push((shard_ref(info.id, i as usize), info.pchannel(i).0, false));
                        }
                    }
                }
            }
        }
        for (at, pchannel, open) in known {
            if open || !owned.contains_key(&pchannel) {
                continue;
            }
            let node = self.clone();
            rt::spawn(async move {
                if let Err(e) = node.shard(at).await {
                    tracing::debug!(error = %e.reason, "taking over a shard failed; will retry");
                }
            });
        }
    }

    /// Every shard of the registered collections: its pchannel and whether it is open
    /// (or known to be damaged).
    async fn known_shards(&self) -> Vec<(ShardRef, String, bool)> {
        let mut known = Vec::new();
        for o in self.shards.read().await.values() {
            for i in 0..o.info.shards {
                // A damaged shard counts as handled: reopening cannot fix it, and a
                // take-over attempt every heartbeat would only refetch the catalog.
                let open = o.shards.contains_key(&i) || o.damaged.contains_key(&i);
                known.push((shard_ref(o.info.id, i as usize), o.info.pchannel(i).0, open));
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
