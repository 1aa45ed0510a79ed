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

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::batch::{Batch, BatchError, Pk};
use crate::ids::{CollectionId, FieldId, PartitionId, SegmentId, VChannel};
use crate::message::{self, MessageError, WalMessage};
use crate::meta::{MetaError, MetaStore};
use crate::schema::CollectionSchema;
use crate::search::brute::RowFilter;
use crate::search::{reduce, search_segment, Hit, Metric, SearchRequest};
use crate::segment::format::{self, FormatError, ObjectKind};
use crate::segment::storage::{self, SegmentFiles, StorageError};
use crate::segment::{DeleteRecord, GrowingSegment, PkStats, SealedSegment, SegmentView};
use crate::tso::{Timestamp, TimestampOracle, TsoError};
use crate::wal::{Epoch, Offset, Wal, WalError};

#[derive(Debug, Error)]
pub enum ShardError {
    #[error(transparent)]
    Invalid(#[from] BatchError),
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    Tso(#[from] TsoError),
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("WAL record {offset}: {source}")]
    Message {
        offset: Offset,
        #[source]
        source: MessageError,
    },
    #[error("row {row} of segment {segment} is not served by this shard")]
    UnknownRow { segment: SegmentId, row: u32 },
    #[error("shard manifest at {key:?}: {source}")]
    Manifest {
        key: String,
        #[source]
        source: FormatError,
    },
    /// The meta store failed while committing a flush: the manifest may or may not
    /// have changed. This copy's state can no longer be trusted to match it; the
    /// shard must be reopened (under a new epoch) from what is durable.
    #[error("flush commit of shard {vchannel} has an unknown outcome: {source}")]
    CommitUnknown {
        vchannel: String,
        #[source]
        source: MetaError,
    },
    /// This copy of the shard was retired (a flush commit's outcome is unknown, or a
    /// newer owner claimed the manifest): nothing more runs on it; the operation did
    /// not happen.
    #[error("this copy of shard {vchannel} is retired; reopen the shard")]
    Retired { vchannel: String },
    /// Another owner (a newer epoch) has claimed the shard: this one must stop.
    #[error(
        "shard {vchannel} now belongs to a newer owner (epoch {current}; this one has {mine})"
    )]
    NotOwner {
        vchannel: String,
        mine: u64,
        current: u64,
    },
}

impl ShardError {
    /// Whether this copy of the shard must be closed and the shard reopened from what
    /// is durable: it lost ownership, its WAL failed, or a flush commit's outcome is
    /// unknown.
    pub fn needs_reopen(&self) -> bool {
        self.is_fenced()
            || matches!(self, ShardError::CommitUnknown { .. })
            || matches!(self, ShardError::Wal(w) if !matches!(w, WalError::TooLarge { .. }))
    }

    /// Whether the shard has a newer owner (this copy must be closed; the operation
    /// did not happen).
    pub fn is_fenced(&self) -> bool {
        matches!(
            self,
            ShardError::NotOwner { .. }
                | ShardError::Retired { .. }
                | ShardError::Wal(WalError::Fenced { .. })
        )
    }
}

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

/// What a read sees: a timestamp, optionally some partitions, optionally a row filter.
#[derive(Clone, Copy)]
pub struct ReadScope<'a> {
    pub read_ts: Timestamp,
    pub partitions: Option<&'a [PartitionId]>,
    pub filter: Option<RowFilter<'a>>,
    /// Range-search bounds on scores (searches only).
    pub range: crate::search::ScoreRange,
}

impl<'a> ReadScope<'a> {
    pub fn at(read_ts: Timestamp) -> Self {
        ReadScope {
            read_ts,
            partitions: None,
            filter: None,
            range: crate::search::ScoreRange::default(),
        }
    }

    fn admits_segment(&self, seg: &dyn SegmentView) -> bool {
        self.partitions
            .is_none_or(|ps| ps.contains(&seg.partition()))
    }

    fn admits_row(&self, seg: &dyn SegmentView, row: usize) -> bool {
        seg.is_visible(row, self.read_ts) && self.filter.is_none_or(|f| f(seg, row))
    }
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
}

/// Sends deletes to the node that serves a handed-off sealed segment.
#[async_trait::async_trait]
pub trait DeleteForwarder: Send + Sync {
    async fn forward(&self, deletes: &[(SegmentId, DeleteRecord)]) -> Result<(), String>;
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
}

/// A sealed segment that another node serves. The shard keeps what it needs to route
/// deletes to it (its key statistics) and the deletes not yet in a delete log.
#[derive(Debug, Clone)]
struct RemoteStub {
    stats: PkStats,
    unflushed_deletes: Vec<DeleteRecord>,
    /// A delete could not be forwarded and the segment could not be taken back: reads
    /// must not use the remote copy until [`Shard::reclaim`] succeeds.
    stale: bool,
}

/// The shard's durable description in the meta store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// WAL records before this offset are reflected in `segments`.
    pub checkpoint: Offset,
    pub segments: Vec<SegmentFiles>,
    pub next_segment: i64,
    pub next_log_id: u64,
    /// The epoch of the owner that wrote it. A new owner claims the manifest when it
    /// opens the shard; every commit is a compare-and-swap against the manifest its
    /// writer last saw, so an owner that lost the shard cannot commit over the new one.
    pub owner_epoch: u64,
}

/// The manifest as the first release wrote it (no owner epoch); read, never written.
#[derive(Deserialize)]
struct ManifestV1 {
    checkpoint: Offset,
    segments: Vec<SegmentFiles>,
    next_segment: i64,
    next_log_id: u64,
}

fn decode_manifest(key: &str, bytes: &[u8]) -> Result<Manifest, ShardError> {
    match format::decode::<Manifest>(ObjectKind::ShardManifest, bytes) {
        Ok(m) => Ok(m),
        Err(source) => match format::decode::<ManifestV1>(ObjectKind::ShardManifest, bytes) {
            Ok(v1) => Ok(Manifest {
                checkpoint: v1.checkpoint,
                segments: v1.segments,
                next_segment: v1.next_segment,
                next_log_id: v1.next_log_id,
                owner_epoch: 0,
            }),
            Err(_) => Err(ShardError::Manifest {
                key: key.to_string(),
                source,
            }),
        },
    }
}

/// A successful mutation: its timestamp and WAL position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutationAck {
    pub ts: Timestamp,
    pub offset: Offset,
}

#[derive(Debug, Default)]
struct State {
    growing: BTreeMap<SegmentId, GrowingSegment>,
    /// The growing segment taking inserts, per partition.
    active: BTreeMap<PartitionId, SegmentId>,
    sealed: BTreeMap<SegmentId, SealedSegment>,
    /// Sealed segments handed off to a query node.
    remote: BTreeMap<SegmentId, RemoteStub>,
    /// Deletes that hit remote segments during the current mutation.
    outbox: Vec<(SegmentId, DeleteRecord)>,
    manifest: Manifest,
    /// The manifest's bytes in the meta store as this owner last saw them.
    manifest_raw: Option<Vec<u8>>,
    /// Set when this copy can no longer trust its state to match what is durable (a
    /// flush commit with an unknown outcome, or a lost manifest race). A write that
    /// waited for the lock behind that flush must not run: it would target a growing
    /// segment the committed manifest may already have sealed.
    retired: bool,
    next_segment: i64,
    /// The next WAL offset to apply.
    applied: Offset,
    last_mutation: Option<crate::rt::Instant>,
    /// The safe timestamp: every mutation with a timestamp at or below it is applied,
    /// and none will ever be applied below it (the TSO only moves forward).
    tsafe: Timestamp,
}

impl State {
    fn apply(&mut self, schema: &Arc<CollectionSchema>, msg: WalMessage) {
        match msg {
            WalMessage::Insert {
                ts,
                partition,
                segment,
                batch,
            } => self.apply_insert(schema, ts, partition, segment, &batch),
            WalMessage::Delete { ts, pks } => {
                for pk in &pks {
                    self.apply_delete(pk, ts);
                }
            }
            WalMessage::Upsert {
                ts,
                partition,
                segment,
                batch,
            } => {
                for pk in batch.pks(schema) {
                    self.apply_delete(&pk, ts);
                }
                self.apply_insert(schema, ts, partition, segment, &batch);
            }
        }
    }

    fn apply_insert(
        &mut self,
        schema: &Arc<CollectionSchema>,
        ts: Timestamp,
        partition: PartitionId,
        segment: SegmentId,
        batch: &Batch,
    ) {
        self.next_segment = self.next_segment.max(segment.0 + 1);
        self.active.insert(partition, segment);
        self.growing
            .entry(segment)
            .or_insert_with(|| GrowingSegment::new(segment, partition, schema.clone()))
            .insert(batch, ts);
    }

    fn apply_delete(&mut self, pk: &Pk, ts: Timestamp) {
        for g in self.growing.values_mut() {
            g.delete(pk, ts);
        }
        for s in self.sealed.values_mut() {
            s.delete(pk, ts);
        }
        let (remote, outbox) = (&mut self.remote, &mut self.outbox);
        for (id, stub) in remote.iter_mut() {
            if stub.stats.may_contain(pk) {
                let rec = DeleteRecord { pk: pk.clone(), ts };
                stub.unflushed_deletes.push(rec.clone());
                outbox.push((*id, rec));
            }
        }
    }

    /// The segment the next insert into `partition` goes to.
    fn target_segment(&mut self, partition: PartitionId, seal_rows: usize) -> SegmentId {
        if let Some(id) = self.active.get(&partition) {
            if self
                .growing
                .get(id)
                .is_some_and(|g| g.num_rows() < seal_rows)
            {
                return *id;
            }
        }
        let id = SegmentId(self.next_segment);
        self.next_segment += 1;
        id
    }

    fn segments(&self) -> impl Iterator<Item = &dyn SegmentView> {
        self.sealed
            .values()
            .map(|s| s as &dyn SegmentView)
            .chain(self.growing.values().map(|g| g as &dyn SegmentView))
    }
}

/// One vchannel's data.
pub struct Shard {
    cfg: ShardConfig,
    deps: ShardDeps,
    state: tokio::sync::RwLock<State>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("vchannel", &self.cfg.vchannel)
            .finish()
    }
}

fn manifest_key(cfg: &ShardConfig) -> String {
    format!("shard/{}/{}/manifest", cfg.collection, cfg.vchannel)
}

impl Shard {
    /// Opens the shard: claims its WAL under `deps.epoch`, loads the flushed
    /// segments named by the manifest and replays the WAL tail after the checkpoint.
    #[tracing::instrument(skip_all, fields(vchannel = %cfg.vchannel))]
    pub async fn open(cfg: ShardConfig, deps: ShardDeps) -> Result<Self, ShardError> {
        let key = manifest_key(&cfg);
        // Claim the WAL first: from here on the previous owner can append nothing, so
        // the manifest read below and the log replayed after it are final.
        deps.wal.fence(deps.epoch).await?;
        let raw = deps.meta.get(&key).await?;
        let mut manifest = match &raw {
            Some(bytes) => decode_manifest(&key, bytes)?,
            None => Manifest {
                next_segment: cfg.first_segment_id.max(1),
                ..Manifest::default()
            },
        };
        if manifest.owner_epoch > deps.epoch.0 {
            return Err(ShardError::NotOwner {
                vchannel: cfg.vchannel.0.clone(),
                mine: deps.epoch.0,
                current: manifest.owner_epoch,
            });
        }
        // Claim the manifest: the previous owner's commits (compare-and-swap against
        // what it saw) fail from now on.
        manifest.owner_epoch = deps.epoch.0;
        let claimed = format::encode(ObjectKind::ShardManifest, &manifest);
        if !deps
            .meta
            .compare_and_swap(&key, raw.as_deref(), Some(claimed.clone()))
            .await?
        {
            return Err(ShardError::NotOwner {
                vchannel: cfg.vchannel.0.clone(),
                mine: deps.epoch.0,
                current: u64::MAX,
            });
        }
        let mut state = State {
            next_segment: manifest.next_segment,
            applied: manifest.checkpoint,
            manifest_raw: Some(claimed),
            ..State::default()
        };
        for files in &manifest.segments {
            let seg = storage::load_sealed(&deps.store, &cfg.schema, files).await?;
            state.sealed.insert(files.id, seg);
        }
        state.manifest = manifest;
        let mut replayed = 0usize;
        loop {
            let records = deps.wal.read_from(state.applied, 1024).await?;
            if records.is_empty() {
                break;
            }
            for r in records {
                let msg = message::decode(&r.payload).map_err(|source| ShardError::Message {
                    offset: r.offset,
                    source,
                })?;
                state.apply(&cfg.schema, msg);
                state.applied = r.offset + 1;
                replayed += 1;
            }
        }
        // Everything replayed is applied; a fresh timestamp is safe from here on.
        state.tsafe = deps.tso.next().await?;
        tracing::info!(
            sealed = state.sealed.len(),
            replayed,
            checkpoint = state.manifest.checkpoint,
            "shard recovered"
        );
        Ok(Shard {
            cfg,
            deps,
            state: tokio::sync::RwLock::new(state),
        })
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
        let offset = self.deps.wal.append(self.deps.epoch, payload).await?;
        debug_assert_eq!(offset, st.applied, "WAL offsets and applied state diverged");
        st.apply(&self.cfg.schema, msg);
        st.applied = offset + 1;
        st.last_mutation = Some(crate::rt::now());
        st.tsafe = ts;
        let outbox = std::mem::take(&mut st.outbox);
        if !outbox.is_empty() {
            // Acknowledge only once every segment that serves reads has the delete.
            self.forward_or_reclaim(&mut st, outbox).await?;
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
        st.tsafe = ts;
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

    /// Seals every growing segment, writes it and every pending delete log to object
    /// storage, commits the manifest, and lets the WAL drop what is checkpointed.
    #[tracing::instrument(skip_all, fields(vchannel = %self.cfg.vchannel))]
    pub async fn flush(&self) -> Result<Manifest, ShardError> {
        let mut st = self.state.write().await;
        self.check_live(&st)?;
        let c = self.cfg.collection;
        let mut manifest = st.manifest.clone();
        manifest.checkpoint = st.applied;
        manifest.next_segment = st.next_segment;

        let mut new_sealed = Vec::new();
        for g in st.growing.values().filter(|g| g.num_rows() > 0) {
            let sealed = g.clone().seal();
            let mut files =
                storage::write_sealed(&self.deps.store, c, &sealed, self.deps.epoch.0).await?;
            if !sealed.unflushed_deletes().is_empty() {
                manifest.next_log_id += 1;
                let log = storage::write_deltalog(
                    &self.deps.store,
                    c,
                    sealed.partition,
                    sealed.id,
                    manifest.next_log_id,
                    sealed.unflushed_deletes(),
                    self.deps.epoch.0,
                )
                .await?;
                files.deltalogs.push(log);
            }
            manifest.segments.push(files);
            new_sealed.push(sealed);
        }
        let mut flushed_deletes = Vec::new();
        for s in st.sealed.values() {
            let pending = s.unflushed_deletes();
            if pending.is_empty() {
                continue;
            }
            manifest.next_log_id += 1;
            let log = storage::write_deltalog(
                &self.deps.store,
                c,
                s.partition,
                s.id,
                manifest.next_log_id,
                pending,
                self.deps.epoch.0,
            )
            .await?;
            let files = manifest
                .segments
                .iter_mut()
                .find(|f| f.id == s.id)
                .expect("every sealed segment is in the manifest");
            files.deltalogs.push(log);
            flushed_deletes.push((s.id, pending.len()));
        }

        let mut flushed_remote = Vec::new();
        for (id, stub) in &st.remote {
            if stub.unflushed_deletes.is_empty() {
                continue;
            }
            let files = manifest
                .segments
                .iter_mut()
                .find(|f| f.id == *id)
                .expect("every remote segment is in the manifest");
            manifest.next_log_id += 1;
            let log = storage::write_deltalog(
                &self.deps.store,
                c,
                files.partition,
                *id,
                manifest.next_log_id,
                &stub.unflushed_deletes,
                self.deps.epoch.0,
            )
            .await?;
            files.deltalogs.push(log);
            flushed_remote.push((*id, stub.unflushed_deletes.len()));
        }

        tracing::info!(
            checkpoint = manifest.checkpoint,
            segments = ?manifest.segments.iter().map(|f| (f.id.0, f.num_rows)).collect::<Vec<_>>(),
            "committing flush"
        );
        // The commit point: only if no newer owner has claimed the shard since.
        manifest.owner_epoch = self.deps.epoch.0;
        let encoded = format::encode(ObjectKind::ShardManifest, &manifest);
        let committed = self
            .deps
            .meta
            .compare_and_swap(
                &manifest_key(&self.cfg),
                st.manifest_raw.as_deref(),
                Some(encoded.clone()),
            )
            .await;
        let committed = match committed {
            Ok(c) => c,
            Err(source) => {
                st.retired = true;
                return Err(ShardError::CommitUnknown {
                    vchannel: self.cfg.vchannel.0.clone(),
                    source,
                });
            }
        };
        if !committed {
            st.retired = true;
            return Err(ShardError::NotOwner {
                vchannel: self.cfg.vchannel.0.clone(),
                mine: self.deps.epoch.0,
                current: u64::MAX,
            });
        }
        st.manifest_raw = Some(encoded);

        st.growing.clear();
        st.active.clear();
        for mut s in new_sealed {
            let n = s.unflushed_deletes().len();
            s.mark_deletes_flushed(n);
            st.sealed.insert(s.id, s);
        }
        for (id, n) in flushed_remote {
            if let Some(stub) = st.remote.get_mut(&id) {
                stub.unflushed_deletes.drain(..n);
            }
        }
        for (id, n) in flushed_deletes {
            if let Some(s) = st.sealed.get_mut(&id) {
                s.mark_deletes_flushed(n);
            }
        }
        st.manifest = manifest.clone();
        drop(st);
        if let Err(e) = self.deps.wal.truncate_before(manifest.checkpoint).await {
            // Harmless: replay starts at the checkpoint either way.
            tracing::warn!(error = %e, "WAL truncation after flush failed");
        }
        Ok(manifest)
    }

    /// Every row visible at `read_ts`, sorted by primary key.
    pub async fn query_all(&self, read_ts: Timestamp) -> Batch {
        let refs: Vec<(SegmentId, u32)> = self
            .query_rows(ReadScope::at(read_ts), None)
            .await
            .into_iter()
            .map(|(_, s, r)| (s, r))
            .collect();
        self.fetch(&refs).await
    }

    /// The rows in scope, sorted by primary key (ties by segment and row), at most
    /// `limit` of them.
    pub async fn query_rows(
        &self,
        scope: ReadScope<'_>,
        limit: Option<usize>,
    ) -> Vec<(Pk, SegmentId, u32)> {
        self.query_rows_split(scope, limit).await.0
    }

    /// How many rows are in scope.
    pub async fn count(&self, scope: ReadScope<'_>) -> usize {
        self.count_split(scope).await.0
    }

    /// The given rows (by segment and row number), in that order, all fields. Row
    /// references stay valid across a flush: sealing keeps a segment's id and rows.
    /// A reference to a segment that no longer exists is skipped.
    pub async fn fetch(&self, refs: &[(SegmentId, u32)]) -> Batch {
        let st = self.state.read().await;
        let mut out = Batch::empty(&self.cfg.schema);
        for &(sid, row) in refs {
            let seg: &dyn SegmentView = match (st.sealed.get(&sid), st.growing.get(&sid)) {
                (Some(s), _) => s,
                (None, Some(g)) => g,
                (None, None) => continue,
            };
            if row as usize >= seg.num_rows() {
                continue;
            }
            out.push_row(&seg.data().take(&[row as usize]), 0);
        }
        out
    }

    /// Exact top-`k` over every segment, as of `read_ts`.
    pub async fn search(
        &self,
        field: FieldId,
        queries: &[Vec<f32>],
        k: usize,
        metric: Metric,
        read_ts: Timestamp,
    ) -> Vec<Vec<Hit>> {
        self.search_scoped(field, queries, k, metric, ReadScope::at(read_ts))
            .await
    }

    /// The rows at `refs` served here, in order, and the positions in `refs` of the
    /// rows whose segments were handed off — taken under one lock, so a concurrent
    /// handoff cannot make a row disappear between the two. A reference to a segment
    /// this shard does not know is an error, never a silently missing row.
    pub async fn fetch_split(
        &self,
        refs: &[(SegmentId, u32)],
    ) -> Result<(Batch, Vec<usize>), ShardError> {
        let st = self.state.read().await;
        let mut out = Batch::empty(&self.cfg.schema);
        let mut remote = Vec::new();
        for (pos, &(sid, row)) in refs.iter().enumerate() {
            let seg: &dyn SegmentView = match (st.sealed.get(&sid), st.growing.get(&sid)) {
                (Some(s), _) => s,
                (None, Some(g)) => g,
                (None, None) if st.remote.contains_key(&sid) => {
                    remote.push(pos);
                    continue;
                }
                (None, None) => return Err(ShardError::UnknownRow { segment: sid, row }),
            };
            if row as usize >= seg.num_rows() {
                return Err(ShardError::UnknownRow { segment: sid, row });
            }
            out.push_row(&seg.data().take(&[row as usize]), 0);
        }
        Ok((out, remote))
    }

    /// Exact top-`k` over the local segments and rows in scope.
    pub async fn search_scoped(
        &self,
        field: FieldId,
        queries: &[Vec<f32>],
        k: usize,
        metric: Metric,
        scope: ReadScope<'_>,
    ) -> Vec<Vec<Hit>> {
        self.search_split(field, queries, k, metric, scope).await.0
    }

    /// Forwards deletes to the node serving their segments; if that fails, takes the
    /// segments back (loads them here) so no read can miss the delete.
    async fn forward_or_reclaim(
        &self,
        st: &mut State,
        outbox: Vec<(SegmentId, DeleteRecord)>,
    ) -> Result<(), ShardError> {
        let forwarded = match &self.deps.forwarder {
            Some(f) => f.forward(&outbox).await,
            None => Err("no forwarder".to_string()),
        };
        if let Err(e) = forwarded {
            let ids: Vec<SegmentId> = outbox.iter().map(|(id, _)| *id).collect();
            tracing::warn!(error = %e, segments = ?ids, "delete forwarding failed; taking the segments back");
            self.reclaim_locked(st, &ids).await?;
        }
        Ok(())
    }

    /// Takes the named remote segments back. Every one of them is marked stale first,
    /// so one that cannot be loaded now is never read from its query node again (its
    /// copy there may lack deletes); the first load error is returned after trying
    /// them all.
    async fn reclaim_locked(&self, st: &mut State, ids: &[SegmentId]) -> Result<(), ShardError> {
        for id in ids {
            if let Some(stub) = st.remote.get_mut(id) {
                stub.stale = true;
            }
        }
        let mut first_error = None;
        for id in ids {
            let Some(stub) = st.remote.get(id) else {
                continue;
            };
            let files = st
                .manifest
                .segments
                .iter()
                .find(|f| f.id == *id)
                .expect("every remote segment is in the manifest")
                .clone();
            match storage::load_sealed(&self.deps.store, &self.cfg.schema, &files).await {
                Ok(mut seg) => {
                    // The stub's deletes are exactly those not in a delete log yet.
                    for d in &stub.unflushed_deletes {
                        seg.delete(&d.pk, d.ts);
                    }
                    st.remote.remove(id);
                    st.sealed.insert(*id, seg);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// The files of the sealed segments served here (not handed off).
    pub async fn local_sealed_files(&self) -> Vec<SegmentFiles> {
        let st = self.state.read().await;
        st.manifest
            .segments
            .iter()
            .filter(|f| st.sealed.contains_key(&f.id))
            .cloned()
            .collect()
    }

    /// The files of the sealed segments handed off to another node.
    pub async fn remote_files(&self) -> Vec<SegmentFiles> {
        let st = self.state.read().await;
        st.manifest
            .segments
            .iter()
            .filter(|f| st.remote.contains_key(&f.id))
            .cloned()
            .collect()
    }

    /// Takes handed-off segments back into this shard (after their server failed).
    pub async fn reclaim(&self, ids: &[SegmentId]) -> Result<(), ShardError> {
        let mut st = self.state.write().await;
        self.reclaim_locked(&mut st, ids).await
    }

    /// Hands every local sealed segment to another node: `load` must make the node
    /// serve them (each with its files and the deletes not yet in a delete log). Only
    /// when it succeeds are the local copies released. Writes wait meanwhile, so no
    /// delete can slip between the load and the release.
    pub async fn hand_off<F, Fut>(&self, load: F) -> Result<Vec<SegmentId>, String>
    where
        F: FnOnce(Vec<(SegmentFiles, Vec<DeleteRecord>)>) -> Fut + Send,
        Fut: std::future::Future<Output = Result<(), String>> + Send,
    {
        let mut st = self.state.write().await;
        let batch: Vec<(SegmentFiles, Vec<DeleteRecord>)> = st
            .sealed
            .values()
            .filter_map(|s| {
                let files = st.manifest.segments.iter().find(|f| f.id == s.id)?;
                Some((files.clone(), s.unflushed_deletes().to_vec()))
            })
            .collect();
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<SegmentId> = batch.iter().map(|(f, _)| f.id).collect();
        load(batch).await?;
        for id in &ids {
            if let Some(seg) = st.sealed.remove(id) {
                st.remote.insert(
                    *id,
                    RemoteStub {
                        stats: seg.stats().clone(),
                        unflushed_deletes: seg.unflushed_deletes().to_vec(),
                        stale: false,
                    },
                );
            }
        }
        Ok(ids)
    }

    /// Handed-off segments in the given partitions, with whether each is stale.
    pub async fn remote_segments(
        &self,
        partitions: Option<&[PartitionId]>,
    ) -> Vec<(SegmentId, bool)> {
        let st = self.state.read().await;
        Self::remote_of(&st, partitions)
    }

    fn remote_of(st: &State, partitions: Option<&[PartitionId]>) -> Vec<(SegmentId, bool)> {
        st.remote
            .iter()
            .filter(|(id, _)| {
                partitions.is_none_or(|ps| {
                    st.manifest
                        .segments
                        .iter()
                        .any(|f| f.id == **id && ps.contains(&f.partition))
                })
            })
            .map(|(id, stub)| (*id, stub.stale))
            .collect()
    }

    /// [`Shard::search_scoped`] over the local segments, plus the handed-off segments
    /// in scope, taken under one lock so no segment is counted twice or missed.
    pub async fn search_split(
        &self,
        field: FieldId,
        queries: &[Vec<f32>],
        k: usize,
        metric: Metric,
        scope: ReadScope<'_>,
    ) -> (Vec<Vec<Hit>>, Vec<(SegmentId, bool)>) {
        let prepared: Vec<Vec<f32>> = queries.iter().map(|q| metric.prepare_query(q)).collect();
        let req = SearchRequest {
            field,
            queries: &prepared,
            k,
            metric,
            read_ts: scope.read_ts,
            filter: scope.filter,
            range: scope.range,
        };
        let st = self.state.read().await;
        let per_segment: Vec<Vec<Vec<Hit>>> = st
            .segments()
            .filter(|s| scope.admits_segment(*s))
            .map(|s| search_segment(s, &req))
            .collect();
        let hits = (0..queries.len())
            .map(|q| reduce(per_segment.iter().map(|r| r[q].clone()).collect(), k))
            .collect();
        (hits, Self::remote_of(&st, scope.partitions))
    }

    /// [`Shard::query_rows`] plus the handed-off segments in scope, under one lock.
    pub async fn query_rows_split(
        &self,
        scope: ReadScope<'_>,
        limit: Option<usize>,
    ) -> (Vec<(Pk, SegmentId, u32)>, Vec<(SegmentId, bool)>) {
        let st = self.state.read().await;
        let mut rows = Vec::new();
        for seg in st.segments().filter(|s| scope.admits_segment(*s)) {
            for i in 0..seg.num_rows() {
                if scope.admits_row(seg, i) {
                    rows.push((seg.pk(i).clone(), seg.id(), i as u32));
                }
            }
        }
        rows.sort();
        if let Some(l) = limit {
            rows.truncate(l);
        }
        (rows, Self::remote_of(&st, scope.partitions))
    }

    /// [`Shard::count`] plus the handed-off segments in scope, under one lock.
    pub async fn count_split(&self, scope: ReadScope<'_>) -> (usize, Vec<(SegmentId, bool)>) {
        let st = self.state.read().await;
        let n = st
            .segments()
            .filter(|s| scope.admits_segment(*s))
            .map(|seg| {
                (0..seg.num_rows())
                    .filter(|&i| scope.admits_row(seg, i))
                    .count()
            })
            .sum();
        (n, Self::remote_of(&st, scope.partitions))
    }

    /// The shard's safe timestamp (see [`Shard::tick`]).
    pub async fn tsafe(&self) -> Timestamp {
        self.state.read().await.tsafe
    }

    /// A time tick: takes a fresh timestamp as the new safe timestamp. Taken under the
    /// write lock, so every mutation with a smaller timestamp has been applied: a read
    /// at the returned timestamp sees everything acknowledged before the tick.
    pub async fn tick(&self) -> Result<Timestamp, ShardError> {
        let mut st = self.state.write().await;
        self.check_live(&st)?;
        // Only the owner may declare time safe: a copy whose vchannel moved on would
        // otherwise serve a "strong" read without the new owner's writes.
        self.deps.wal.fence(self.deps.epoch).await?;
        let ts = self.deps.tso.next().await?;

        st.tsafe = ts;
        Ok(ts)
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
        }
    }

    /// (growing, sealed) segment counts.
    pub async fn segment_counts(&self) -> (usize, usize) {
        let st = self.state.read().await;
        (st.growing.len(), st.sealed.len())
    }
}
