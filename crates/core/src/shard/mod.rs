//! A shard's durable data path: the state of one vchannel — growing segments, sealed
//! segments and their deletes — kept in step with its WAL, flushed to object storage,
//! and rebuilt after a crash.
//!
//! Write path: validate, take a timestamp, append to the WAL, and only then apply to
//! memory and acknowledge. Flush: seal every growing segment, write its objects and
//! every pending delete log, then commit a new manifest (segments, delete logs, WAL
//! checkpoint) to the meta store in one put; only after that commit may the WAL drop
//! records before the checkpoint. Recovery: load the manifest's segments, then replay
//! the WAL from the checkpoint. An interrupted flush leaves only unreferenced objects.

//!
//! The modules: [`state`] (what is in memory and how a WAL message changes it),
//! [`manifest`] (what is durable and its commit), [`flush`], [`remote`] (segments
//! handed off to another node), [`read`] (split reads), [`tsafe`] (the safe timestamp
//! and time ticks), [`error`]. This file holds the shard itself: opening and recovery
//! and the write path.
//!
//! The shard's WAL is its vchannel's view of a pchannel log shared with other
//! vchannels ([`crate::wal::pchannel`]): its records' offsets are sparse, so the shard
//! checks that each record lies *after* the last one applied, not right after it. A
//! write whose append failed with an unknown outcome retires the copy instead (the
//! record may be durable), which is what a dense check would have caught.

pub mod check;
mod error;
mod flush;
mod manifest;
mod paced;
mod read;
mod remote;
mod state;
mod tsafe;

use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::batch::{Batch, Pk};
use crate::ids::{CollectionId, PartitionId, VChannel};
use crate::message::{self, WalMessage};
use crate::meta::MetaStore;
use crate::schema::CollectionSchema;
use crate::segment::storage;
use crate::segment::SegmentView;
use crate::tso::{Timestamp, TimestampOracle};
use crate::wal::{Epoch, FrameError, Offset, Wal, WalError};

pub use error::{RemoteError, ShardError};
pub use manifest::Manifest;
pub use read::{ReadScope, RemoteInScope};
pub use remote::DeleteForwarder;
use state::State;
pub use tsafe::TickRequests;

/// What a shard is.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    pub collection: CollectionId,
    pub vchannel: VChannel,
    pub schema: Arc<CollectionSchema>,
    /// A growing segment stops taking rows at this size; the next insert opens another.
    pub seal_rows: usize,
    /// Segment ids this shard hands out start here (shards of one collection use
    /// disjoint ranges, so object paths never collide).
    pub first_segment_id: i64,
}

/// Sizes and activity of a shard.
#[derive(Debug, Clone, Copy)]
pub struct ShardStats {
    pub growing_rows: usize,
    pub sealed_rows: usize,
    pub growing_segments: usize,
    pub sealed_segments: usize,
    /// When the last mutation was applied (monotonic clock).
    pub last_mutation: Option<crate::rt::Instant>,
    /// The committed WAL checkpoint, and the end of the (possibly shared) log: the
    /// records between them are replayed by a recovery, and pin the log.
    pub checkpoint: Offset,
    pub log_end: Offset,
    /// When this copy last committed a flush (or opened).
    pub last_flush: crate::rt::Instant,
}

/// What a shard stands on.
#[derive(Clone)]
pub struct ShardDeps {
    pub wal: Arc<dyn Wal>,
    pub epoch: Epoch,
    pub meta: Arc<dyn MetaStore>,
    pub store: Arc<dyn ObjectStore>,
    pub tso: Arc<dyn TimestampOracle>,
    /// Where deletes for handed-off segments go; `None` when segments never leave.
    pub forwarder: Option<Arc<dyn DeleteForwarder>>,
    /// The ticker of the shard's pchannel, asked for a tick when a read is ahead of
    /// tsafe; `None` where nothing ticks (a read ahead of tsafe then waits it out).
    pub ticks: Option<Arc<TickRequests>>,
}

/// A successful mutation: its timestamp and WAL position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutationAck {
    pub ts: Timestamp,
    pub offset: Offset,
}

/// One vchannel's data.
pub struct Shard {
    cfg: ShardConfig,
    deps: ShardDeps,
    state: tokio::sync::RwLock<State>,
    /// tsafe and retirement, for readers waiting on them (see [`tsafe`]).
    watch: tsafe::Watched,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("vchannel", &self.cfg.vchannel)
            .finish()
    }
}

impl Shard {
    /// Opens the shard: claims its WAL under `deps.epoch`, loads the flushed
    /// segments named by the manifest and replays the WAL tail after the checkpoint.
    #[tracing::instrument(skip_all, fields(vchannel = %cfg.vchannel))]
    pub async fn open(cfg: ShardConfig, deps: ShardDeps) -> Result<Self, ShardError> {
        // Claim the WAL first: from here on the previous owner can append nothing, so
        // the manifest read below and the log replayed after it are final.
        deps.wal.fence(deps.epoch).await?;
        let (manifest, claimed) = manifest::claim(&cfg, &deps).await?;
        crate::invariant_cheap!(
            manifest.owner_epoch == deps.epoch.0,
            "opened shard {} under epoch {} but claimed the manifest for {}",
            cfg.vchannel,
            deps.epoch.0,
            manifest.owner_epoch
        );
        let mut state = State::recovering(manifest, claimed);
        for files in &state.manifest.segments {
            let seg = storage::load_sealed(&deps.store, &cfg.schema, files).await?;
            state.sealed.insert(files.id, seg);
        }
        let replayed = replay(&cfg, &deps, &mut state).await?;
        // Before the first append: a shared log must keep what this vchannel needs.
        deps.wal.pin(state.manifest.checkpoint).await?;
        // Everything replayed is applied; a fresh timestamp is safe from here on.
        state.advance_tsafe(deps.tso.next().await?);
        state.check_invariants();
        tracing::info!(
            sealed = state.sealed.len(),
            replayed,
            checkpoint = state.manifest.checkpoint,
            "shard recovered"
        );
        let shard = Shard {
            cfg,
            deps,
            state: tokio::sync::RwLock::new(state),
            watch: tsafe::Watched::default(),
        };
        shard.publish(&*shard.state.read().await);
        Ok(shard)
    }

    pub fn config(&self) -> &ShardConfig {
        &self.cfg
    }

    fn check_live(&self, st: &State) -> Result<(), ShardError> {
        if st.retired {
            return Err(ShardError::Retired {
                vchannel: self.cfg.vchannel.0.clone(),
            });
        }
        Ok(())
    }

    /// The owner epoch this copy of the shard writes under.
    pub fn epoch(&self) -> u64 {
        self.deps.epoch.0
    }

    /// Writes `msg` (built once the timestamp is known) to the WAL, then applies it.
    async fn mutate(
        &self,
        build: impl FnOnce(&mut State, Timestamp) -> WalMessage,
    ) -> Result<MutationAck, ShardError> {
        // One writer at a time: WAL order, timestamp order and apply order agree.
        let mut st = self.state.write().await;
        self.check_live(&st)?;
        let ts = self.deps.tso.next().await?;
        let msg = build(&mut st, ts);
        let payload = Bytes::from(message::encode(&msg));
        if crate::mutation::active("ack-before-wal") {
            return Ok(self.ack_before_wal(&mut st, msg, ts, payload));
        }
        let offset = match self.deps.wal.append(self.deps.epoch, payload).await {
            Ok(offset) => offset,
            Err(e) => {
                // A failed append may still have become durable (an object put whose
                // answer was lost), so this copy's state may already lag the log:
                // nothing more runs on it, not even a write waiting for the lock, and
                // the shard reopens from what is durable.
                if e.kind() == crate::error_kind::ErrorKind::NeedsReopen {
                    st.retired = true;
                    self.publish(&st);
                }
                return Err(e.into());
            }
        };
        // Recovery replays the WAL from the checkpoint into the same state: that is
        // only the state acknowledged if every record was applied, in offset order.
        crate::invariant!(
            offset >= st.applied,
            "WAL offsets and applied state diverged: appended at {offset}, applied up to {}",
            st.applied
        );
        st.apply(&self.cfg.schema, msg);
        st.applied = offset + 1;
        st.last_mutation = Some(crate::rt::now());
        st.advance_tsafe(ts);
        self.publish(&st);
        let outbox = std::mem::take(&mut st.outbox);
        if !outbox.is_empty() {
            // Acknowledge only once every segment that serves reads has the delete.
            self.forward_or_reclaim(&mut st, outbox)
                .await
                .map_err(|e| ShardError::Unacknowledged(Box::new(e)))?;
        }
        Ok(MutationAck { ts, offset })
    }

    /// The planted bug `ack-before-wal`: apply and acknowledge at once, append to the
    /// WAL a little later. A crash in between loses an acknowledged write.
    fn ack_before_wal(
        &self,
        st: &mut State,
        msg: WalMessage,
        ts: Timestamp,
        payload: Bytes,
    ) -> MutationAck {
        let offset = st.applied;
        st.apply(&self.cfg.schema, msg);
        st.applied = offset + 1;
        st.last_mutation = Some(crate::rt::now());
        st.advance_tsafe(ts);
        self.publish(st);
        let (wal, epoch) = (self.deps.wal.clone(), self.deps.epoch);
        crate::rt::spawn(async move {
            crate::rt::sleep(std::time::Duration::from_millis(300)).await;
            let _ = wal.append(epoch, payload).await;
        });
        MutationAck { ts, offset }
    }

    #[tracing::instrument(skip_all, fields(vchannel = %self.cfg.vchannel, rows = batch.num_rows))]
    pub async fn insert(
        &self,
        partition: PartitionId,
        batch: Batch,
    ) -> Result<MutationAck, ShardError> {
        batch.validate(&self.cfg.schema)?;
        let seal_rows = self.cfg.seal_rows;
        self.mutate(move |st, ts| WalMessage::Insert {
            ts,
            partition,
            segment: st.target_segment(partition, seal_rows),
            batch,
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(vchannel = %self.cfg.vchannel, rows = batch.num_rows))]
    pub async fn upsert(
        &self,
        partition: PartitionId,
        batch: Batch,
    ) -> Result<MutationAck, ShardError> {
        batch.validate(&self.cfg.schema)?;
        batch.check_unique_pks(&self.cfg.schema)?;
        let seal_rows = self.cfg.seal_rows;
        self.mutate(move |st, ts| WalMessage::Upsert {
            ts,
            partition,
            segment: st.target_segment(partition, seal_rows),
            batch,
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(vchannel = %self.cfg.vchannel, keys = pks.len()))]
    pub async fn delete(&self, pks: Vec<Pk>) -> Result<MutationAck, ShardError> {
        self.mutate(move |_, ts| WalMessage::Delete { ts, pks })
            .await
    }

    /// Sizes and activity, for flush policies and statistics.
    pub async fn stats(&self) -> ShardStats {
        let st = self.state.read().await;
        ShardStats {
            growing_rows: st.growing.values().map(|g| g.num_rows()).sum(),
            sealed_rows: st.sealed.values().map(|s| s.num_rows()).sum(),
            growing_segments: st.growing.len(),
            sealed_segments: st.sealed.len(),
            last_mutation: st.last_mutation,
            checkpoint: st.manifest.checkpoint,
            log_end: self.deps.wal.next_offset().await,
            last_flush: st.last_flush,
        }
    }

    /// (growing, sealed) segment counts.
    pub async fn segment_counts(&self) -> (usize, usize) {
        let st = self.state.read().await;
        (st.growing.len(), st.sealed.len())
    }
}

/// Replays the WAL from the state's applied offset to its end; returns how many
/// records it applied.
async fn replay(
    cfg: &ShardConfig,
    deps: &ShardDeps,
    state: &mut State,
) -> Result<usize, ShardError> {
    let mut replayed = 0usize;
    loop {
        let records = match deps.wal.read_from(state.applied, 1024).await {
            Ok(records) => records,
            Err(WalError::Truncated { requested, first }) if replayed == 0 => {
                // A newer owner may have moved the log on (flushed and truncated) while
                // this copy recovered: then this copy is merely deposed.
                deps.wal.fence(deps.epoch).await?;
                // Otherwise a log only drops records before a committed checkpoint, so
                // one that starts after it lost its head file: the records in between
                // are gone.
                return Err(ShardError::Wal(WalError::Corrupt {
                    location: deps.wal.location(),
                    source: FrameError::Missing {
                        needed: requested,
                        first,
                        next: deps.wal.next_offset().await,
                    },
                }));
            }
            Err(e) => return Err(e.into()),
        };
        if records.is_empty() {
            return Ok(replayed);
        }
        for r in records {
            crate::invariant!(
                r.offset >= state.applied,
                "WAL replay went back from {} to {}",
                state.applied,
                r.offset
            );
            let msg = message::decode(&r.payload).map_err(|source| ShardError::Message {
                offset: r.offset,
                source,
            })?;
            state.apply(&cfg.schema, msg);
            state.applied = r.offset + 1;
            replayed += 1;
        }
    }
}
