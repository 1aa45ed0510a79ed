//! A shard's in-memory state — growing, sealed and handed-off segments, the manifest
//! as last committed, the applied WAL position and the safe timestamp — and how a WAL
//! message changes it.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::manifest::Manifest;
use super::remote::RemoteStub;
use crate::batch::{Batch, Pk};
use crate::ids::{PartitionId, SegmentId};
use crate::message::WalMessage;
use crate::schema::CollectionSchema;
use crate::segment::{DeleteRecord, GrowingSegment, SealedSegment, SegmentView};
use crate::tso::Timestamp;
use crate::wal::Offset;

#[derive(Debug)]
pub(super) struct State {
    pub(super) growing: BTreeMap<SegmentId, GrowingSegment>,
    /// The growing segment taking inserts, per partition.
    pub(super) active: BTreeMap<PartitionId, SegmentId>,
    pub(super) sealed: BTreeMap<SegmentId, SealedSegment>,
    /// Sealed segments handed off to a query node.
    pub(super) remote: BTreeMap<SegmentId, RemoteStub>,
    /// Deletes that hit remote segments during the current mutation.
    pub(super) outbox: Vec<(SegmentId, DeleteRecord)>,
    pub(super) manifest: Manifest,
    /// The manifest's bytes in the meta store as this owner last saw them.
    pub(super) manifest_raw: Option<Vec<u8>>,
    /// Set when this copy can no longer trust its state to match what is durable (a
    /// flush commit with an unknown outcome, or a lost manifest race). A write that
    /// waited for the lock behind that flush must not run: it would target a growing
    /// segment the committed manifest may already have sealed.
    pub(super) retired: bool,
    pub(super) next_segment: i64,
    /// The next WAL offset to apply.
    pub(super) applied: Offset,
    pub(super) last_mutation: Option<crate::rt::Instant>,
    /// When this copy last committed a flush, or opened.
    pub(super) last_flush: crate::rt::Instant,
    /// The safe timestamp: every mutation with a timestamp at or below it is applied,
    /// and none will ever be applied below it (the TSO only moves forward). Set only
    /// through [`State::advance_tsafe`].
    tsafe: Timestamp,
}

impl State {
    /// The state of a shard just opened from `manifest` (claimed as `manifest_raw`),
    /// before its segments are loaded and its WAL tail replayed.
    pub(super) fn recovering(manifest: Manifest, manifest_raw: Vec<u8>) -> State {
        State {
            next_segment: manifest.next_segment,
            applied: manifest.checkpoint,
            manifest_raw: Some(manifest_raw),
            manifest,
            last_flush: crate::rt::now(),
            growing: Default::default(),
            active: Default::default(),
            sealed: Default::default(),
            remote: Default::default(),
            outbox: Default::default(),
            retired: false,
            last_mutation: None,
            tsafe: Timestamp::default(),
        }
    }

    pub(super) fn apply(&mut self, schema: &Arc<CollectionSchema>, msg: WalMessage) {
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
    pub(super) fn target_segment(&mut self, partition: PartitionId, seal_rows: usize) -> SegmentId {
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

    /// Every segment served here: sealed, then growing.
    pub(super) fn segments(&self) -> impl Iterator<Item = &dyn SegmentView> {
        self.sealed
            .values()
            .map(|s| s as &dyn SegmentView)
            .chain(self.growing.values().map(|g| g as &dyn SegmentView))
    }

    pub(super) fn tsafe(&self) -> Timestamp {
        self.tsafe
    }

    /// Moves the safe timestamp to `ts`. Reads at tsafe are repeatable only if it
    /// never goes back: a read at an earlier tsafe must not see a later mutation.
    pub(super) fn advance_tsafe(&mut self, ts: Timestamp) {
        crate::invariant_cheap!(ts >= self.tsafe, "tsafe went back: {} -> {ts}", self.tsafe);
        self.tsafe = ts;
    }

    /// Each segment is in exactly one place — growing, sealed (served here) or remote
    /// (served elsewhere) — so no read counts it twice or misses it, and every sealed
    /// or remote segment is in the manifest, so recovery and reclaim can find its
    /// files.
    pub(super) fn check_invariants(&self) {
        if !crate::invariant::CHECKED {
            return;
        }
        for id in self.growing.keys() {
            crate::invariant!(
                !self.sealed.contains_key(id) && !self.remote.contains_key(id),
                "growing segment {id} is also sealed or remote"
            );
        }
        for id in self.sealed.keys() {
            crate::invariant!(
                !self.remote.contains_key(id),
                "segment {id} is both sealed here and remote"
            );
        }
        for id in self.sealed.keys().chain(self.remote.keys()) {
            crate::invariant!(
                self.manifest.files(*id).is_some(),
                "segment {id} is sealed or remote but not in the manifest"
            );
        }
    }
}
