//! A streaming node's shard copies: registering collections, opening (recovering) the
//! shards of the pchannels it owns under the epoch the coordinator names, closing
//! copies that moved away or failed, and dropping collections.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use quiver_core::ids::VChannel;
use quiver_core::shard::{Shard, ShardConfig, ShardDeps};
use quiver_core::wal::{Epoch, SharedLog};

use super::{damage, not_open, not_owner, Opened, StreamingNode};
use crate::channels::ChannelAssignment;
use crate::coordinator::CollectionInfo;
use crate::error::{code, ApiError, ApiResult, ErrorKind};
use crate::rpc::ShardRef;

/// Why a shard copy could not be opened.
enum Failed {
    Log(quiver_core::wal::WalError),
    Shard(quiver_core::shard::ShardError),
}

/// The open copy of shard `idx`, with the catalog entry it serves under.
fn open_copy(o: &Opened, idx: u32) -> Option<(CollectionInfo, Arc<Shard>)> {
    o.shards.get(&idx).map(|s| (o.info.clone(), s.clone()))
}

impl StreamingNode {
    /// Refuses an assignment naming another node.
    fn check_assigned(&self, a: &ChannelAssignment) -> ApiResult<()> {
        if a.node == self.cfg.node_id {
            Ok(())
        } else {
            Err(not_owner(&a.pchannel, format_args!("owned by {}", a.node)))
        }
    }

    fn was_dropped(&self, info: &CollectionInfo) -> bool {
        self.dropped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&info.id)
    }

    /// Records (or refreshes) a collection's catalog entry; opens nothing.
    pub async fn register(&self, info: &CollectionInfo) {
        let mut all = self.shards.write().await;
        if self.was_dropped(info) {
            return; // its requests keep getting "not open", which the proxy reports
        }
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
                        damaged: BTreeMap::new(),
                    },
                );
            }
        }
    }

    /// Registers the collection and opens (recovering) every shard of it this node
    /// owns; returns them. A damaged shard does not stop the others from opening; its
    /// error is returned once they are open.
    pub async fn open_owned(&self, info: &CollectionInfo) -> ApiResult<Vec<Arc<Shard>>> {
        self.register(info).await;
        let mut out = Vec::new();
        let mut damaged = None;
        for i in 0..info.shards {
            let at = ShardRef {
                collection: info.id,
                shard: i,
            };
            match self.shard(at).await {
                Ok((_, s)) => out.push(s),
                Err(e) if e.kind == ErrorKind::NotOwner => {}
                Err(e) if e.code == code::SEGMENT_LOAD_FAILED => damaged = damaged.or(Some(e)),
                Err(e) => return Err(e),
            }
        }
        damaged.map_or(Ok(out), Err)
    }

    /// The shard, opening (and recovering) it if this node owns its vchannel.
    pub(super) async fn shard(&self, at: ShardRef) -> ApiResult<(CollectionInfo, Arc<Shard>)> {
        let info = {
            let all = self.shards.read().await;
            let o = all
                .get(&at.collection)
                .ok_or_else(|| not_open(at.collection, "is not open on this streaming node"))?;
            damage::check(o, at.shard)?;
            if let Some(found) = open_copy(o, at.shard) {
                self.check_lease(&found.1.config().vchannel.0)?;
                return Ok(found);
            }
            o.info.clone()
        };
        let vchannel = info
            .vchannels()
            .get(at.shard as usize)
            .cloned()
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "collection {} has no shard {}",
                    at.collection, at.shard
                ))
            })?;
        self.check_lease(&vchannel.0)?;
        // One open at a time: two racing opens of one vchannel would otherwise each
        // take an epoch, and the loser's would close the winner's copy.
        let _opening = self.opening.lock().await;
        if let Some(found) = self.open_copy_of(at).await {
            return Ok(found);
        }
        let a = self.claim(at, &vchannel).await?;
        self.open_shard(&info, at, &vchannel, a.epoch).await
    }

    async fn open_copy_of(&self, at: ShardRef) -> Option<(CollectionInfo, Arc<Shard>)> {
        let all = self.shards.read().await;
        open_copy(all.get(&at.collection)?, at.shard)
    }

    /// The assignment of its pchannel to open `vchannel` under: the coordinator's, or a
    /// new epoch if this process had the shard open under it before (it was closed
    /// after a lapsed lease or a WAL failure). Its old copy may still have a write in
    /// flight; a new epoch makes the WAL refuse it, so nothing can be appended behind
    /// the new copy's replay. (The pchannel's other shards open here then reopen under
    /// the new epoch too.)
    async fn claim(&self, at: ShardRef, vchannel: &VChannel) -> ApiResult<ChannelAssignment> {
        let mut a = self.coord.locate(at).await?;
        self.check_assigned(&a)?;
        let opened_before = self
            .incarnations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&vchannel.0)
            .copied();
        if opened_before.is_some_and(|e| e >= a.epoch) {
            a = self
                .coord
                .reassign(&a.pchannel, Some(&self.cfg.node_id))
                .await?;
            self.check_assigned(&a)?;
        }
        Ok(a)
    }

    /// Opens the shard copy (recovering it from the manifest and the WAL) under
    /// `epoch` and records it. The recovery runs outside the shard table's lock (opens
    /// take turns under `opening`), so reads, ticks and heartbeats of every other shard
    /// go on meanwhile; a collection dropped during it is not recorded.
    async fn open_shard(
        &self,
        info: &CollectionInfo,
        at: ShardRef,
        vchannel: &VChannel,
        epoch: u64,
    ) -> ApiResult<(CollectionInfo, Arc<Shard>)> {
        {
            let all = self.shards.read().await;
            let o = all
                .get(&at.collection)
                .ok_or_else(|| not_open(at.collection, "was dropped"))?;
            if let Some(found) = open_copy(o, at.shard) {
                return Ok(found);
            }
            damage::check(o, at.shard)?;
        }
        let opened = self.recover_copy(info, at, vchannel, epoch).await;
        let mut all = self.shards.write().await;
        let o = all
            .get_mut(&at.collection)
            .ok_or_else(|| not_open(at.collection, "was dropped"))?;
        let shard = match opened {
            Ok(shard) => Arc::new(shard),
            Err(Failed::Log(e)) => return Err(damage::wal_open_failed(o, at.shard, e)),
            Err(Failed::Shard(e)) => return Err(damage::open_failed(o, at.shard, e)),
        };
        tracing::info!(%vchannel, epoch, "shard opened");
        let mut incarnations = self.incarnations.lock().unwrap_or_else(|e| e.into_inner());
        let before = incarnations.insert(vchannel.0.clone(), epoch);
        quiver_core::invariant!(
            before.is_none_or(|b| b < epoch),
            "vchannel {vchannel} reopened here under epoch {epoch}, not above {before:?}"
        );
        drop(incarnations);
        o.shards.insert(at.shard, shard.clone());
        Ok((o.info.clone(), shard))
    }

    /// Opens the shard's log (once per process) and recovers a copy of the shard on it.
    async fn recover_copy(
        &self,
        info: &CollectionInfo,
        at: ShardRef,
        vchannel: &VChannel,
        epoch: u64,
    ) -> Result<Shard, Failed> {
        let copy = self.copies.fetch_add(1, Ordering::Relaxed);
        let writer = format!("{}/{:x}#{copy}", self.cfg.node_id, self.incarnation);
        let log = self
            .log(&info.log_of(at.shard), &writer)
            .await
            .map_err(Failed::Log)?;
        Shard::open(
            ShardConfig {
                collection: info.id,
                vchannel: vchannel.clone(),
                schema: Arc::new(info.schema.clone()),
                seal_rows: self.cfg.seal_rows,
                first_segment_id: ((at.shard as i64) << 40) + 1,
            },
            ShardDeps {
                wal: Arc::new(log.shared.vchannel(vchannel)),
                ticks: Some(log.ticks),
                epoch: Epoch(epoch),
                meta: self.meta.clone(),
                store: self.store.clone(),
                tso: self.tso.clone(),
                forwarder: self.delegation.forwarder(at, &vchannel.0, epoch),
            },
        )
        .await
        .map_err(Failed::Shard)
    }

    /// Forgets an open shard copy — `copy` if given (a newer copy opened meanwhile
    /// stays), else whichever is open — because it moved or its WAL failed, and retires
    /// it, so a read waiting on it is told at once. The next request reopens the shard
    /// from the manifest and the WAL, or finds its new owner.
    pub(super) async fn close(&self, at: ShardRef, copy: Option<&Arc<Shard>>, why: &str) {
        let removed = {
            let mut all = self.shards.write().await;
            let Some(o) = all.get_mut(&at.collection) else {
                return;
            };
            match (o.shards.get(&at.shard), copy) {
                (Some(open), Some(c)) if !Arc::ptr_eq(open, c) => None,
                _ => o.shards.remove(&at.shard),
            }
        };
        // Retired outside the table's lock: retiring waits for the copy's own lock.
        if let Some(s) = removed {
            tracing::warn!(vchannel = %s.config().vchannel, why, "shard closed");
            s.retire().await;
        }
    }

    /// Closes a dropped collection's shards and deletes their WAL checkpoints (or own
    /// logs) and manifests. (Its segment objects are removed by the next
    /// garbage-collection sweep, its records in shared logs by their truncation.)
    pub async fn drop_collection(&self, info: &CollectionInfo) -> ApiResult<()> {
        let _owner = self.removing.lock().await;
        {
            // Under the shards lock, so no register can slip between the two.
            let mut all = self.shards.write().await;
            self.dropped
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(info.id);
            all.remove(&info.id);
        }
        for (i, vchannel) in info.vchannels().iter().enumerate() {
            let log = info.log_of(i as u32);
            if log.dedicated {
                self.forget_log(&log.name).await;
                self.wals.remove(&log.name).await?;
            } else {
                SharedLog::forget(self.meta.as_ref(), &log.name, &vchannel.0).await?;
            }
            self.meta
                .delete(&format!("shard/{}/{}/manifest", info.id, vchannel))
                .await?;
        }
        Ok(())
    }
}
