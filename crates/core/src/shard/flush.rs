//! Flush: seal every growing segment, write its objects and every pending delete log
//! to object storage, commit the new manifest, and only then let the WAL drop what the
//! manifest's checkpoint covers. Until the commit nothing in memory changes, so an
//! interrupted flush leaves only unreferenced objects.

use super::manifest::Manifest;
use super::state::State;
use super::{Shard, ShardError};
use crate::ids::{PartitionId, SegmentId};
use crate::segment::storage::{self, StorageError};
use crate::segment::{DeleteRecord, SealedSegment, SegmentView};

/// What a flush wrote, to be applied to memory once the manifest naming it commits.
#[derive(Default)]
struct Written {
    /// The growing segments, sealed; each with its deletes now in a delete log.
    new_sealed: Vec<SealedSegment>,
    /// How many leading unflushed deletes of each local sealed segment went to a log.
    sealed_deletes: Vec<(SegmentId, usize)>,
    /// The same for each handed-off segment.
    remote_deletes: Vec<(SegmentId, usize)>,
}

impl Shard {
    /// Seals every growing segment, writes it and every pending delete log to object
    /// storage, commits the manifest, and lets the WAL drop what is checkpointed.
    #[tracing::instrument(skip_all, fields(vchannel = %self.cfg.vchannel))]
    pub async fn flush(&self) -> Result<Manifest, ShardError> {
        let mut st = self.state.write().await;
        self.check_live(&st)?;
        // Under the write lock nothing of this vchannel is in flight, so what lies
        // between its last record and the log's end belongs to other vchannels of the
        // pchannel: the checkpoint moves past it, or an idle vchannel would pin the
        // shared log for ever.
        let end = self.deps.wal.next_offset().await;
        // The log must reach the checkpoint durably before the checkpoint is committed
        // (under a relaxed fsync policy it may not yet): a log that ends before its
        // committed checkpoint can then only be a lost file, and recovery refuses it.
        // (The end is read first: what neighbours append meanwhile is not covered.)
        self.deps.wal.sync().await?;
        st.applied = st.applied.max(end);
        let mut manifest = st.manifest.clone();
        manifest.checkpoint = st.applied;
        manifest.next_segment = st.next_segment;
        let written = Written {
            new_sealed: self.write_growing(&st, &mut manifest).await?,
            sealed_deletes: self.write_sealed_deletes(&st, &mut manifest).await?,
            remote_deletes: self.write_remote_deletes(&st, &mut manifest).await?,
        };
        tracing::info!(
            checkpoint = manifest.checkpoint,
            segments = ?manifest.segments.iter().map(|f| (f.id.0, f.num_rows)).collect::<Vec<_>>(),
            "committing flush"
        );
        let committed = self.commit_manifest(&mut st, &mut manifest).await;
        if committed.is_err() {
            self.publish(&st);
        }
        committed?;
        st.install(written, manifest.clone());
        st.check_invariants();
        drop(st);
        if let Err(e) = self.deps.wal.truncate_before(manifest.checkpoint).await {
            // Harmless: replay starts at the checkpoint either way.
            tracing::warn!(error = %e, "WAL truncation after flush failed");
        }
        Ok(manifest)
    }

    /// Writes a delete log of `deletes` for segment `id` under the next log id.
    async fn write_log(
        &self,
        manifest: &mut Manifest,
        partition: PartitionId,
        id: SegmentId,
        deletes: &[DeleteRecord],
    ) -> Result<String, StorageError> {
        manifest.next_log_id += 1;
        storage::write_deltalog(
            &self.deps.store,
            self.cfg.collection,
            partition,
            id,
            manifest.next_log_id,
            deletes,
            self.deps.epoch.0,
        )
        .await
    }

    /// Seals and writes every non-empty growing segment (with a delete log of its
    /// deletes) and adds it to `manifest`.
    async fn write_growing(
        &self,
        st: &State,
        manifest: &mut Manifest,
    ) -> Result<Vec<SealedSegment>, ShardError> {
        let mut new_sealed = Vec::new();
        for g in st.growing.values().filter(|g| g.num_rows() > 0) {
            let sealed = g.clone().seal();
            let mut files = storage::write_sealed(
                &self.deps.store,
                self.cfg.collection,
                &sealed,
                self.deps.epoch.0,
            )
            .await?;
            if !sealed.unflushed_deletes().is_empty() {
                let log = self
                    .write_log(
                        manifest,
                        sealed.partition,
                        sealed.id,
                        sealed.unflushed_deletes(),
                    )
                    .await?;
                files.deltalogs.push(log);
            }
            manifest.segments.push(files);
            new_sealed.push(sealed);
        }
        Ok(new_sealed)
    }

    /// Writes a delete log for every local sealed segment with pending deletes.
    async fn write_sealed_deletes(
        &self,
        st: &State,
        manifest: &mut Manifest,
    ) -> Result<Vec<(SegmentId, usize)>, ShardError> {
        let mut flushed = Vec::new();
        for s in st.sealed.values() {
            let pending = s.unflushed_deletes();
            if pending.is_empty() {
                continue;
            }
            let log = self.write_log(manifest, s.partition, s.id, pending).await?;
            manifest_files(manifest, s.id, "sealed").deltalogs.push(log);
            flushed.push((s.id, pending.len()));
        }
        Ok(flushed)
    }

    /// Writes a delete log for every handed-off segment with pending deletes.
    async fn write_remote_deletes(
        &self,
        st: &State,
        manifest: &mut Manifest,
    ) -> Result<Vec<(SegmentId, usize)>, ShardError> {
        let mut flushed = Vec::new();
        for (id, stub) in &st.remote {
            if stub.unflushed_deletes.is_empty() {
                continue;
            }
            let partition = manifest_files(manifest, *id, "remote").partition;
            let log = self
                .write_log(manifest, partition, *id, &stub.unflushed_deletes)
                .await?;
            manifest_files(manifest, *id, "remote").deltalogs.push(log);
            flushed.push((*id, stub.unflushed_deletes.len()));
        }
        Ok(flushed)
    }
}

/// The manifest entry of a sealed or remote segment, which must exist.
fn manifest_files<'m>(
    manifest: &'m mut Manifest,
    id: SegmentId,
    what: &str,
) -> &'m mut crate::segment::storage::SegmentFiles {
    let found = manifest.segments.iter_mut().find(|f| f.id == id);
    match found {
        Some(files) => files,
        None => {
            crate::invariant::violated(format_args!("{what} segment {id} is not in the manifest"))
        }
    }
}

impl State {
    /// Makes memory match a committed flush: the growing segments are now sealed, and
    /// the deletes written to logs are no longer pending.
    fn install(&mut self, written: Written, manifest: Manifest) {
        self.growing.clear();
        self.active.clear();
        for mut s in written.new_sealed {
            let n = s.unflushed_deletes().len();
            s.mark_deletes_flushed(n);
            self.sealed.insert(s.id, s);
        }
        for (id, n) in written.remote_deletes {
            if let Some(stub) = self.remote.get_mut(&id) {
                stub.unflushed_deletes.drain(..n);
            }
        }
        for (id, n) in written.sealed_deletes {
            if let Some(s) = self.sealed.get_mut(&id) {
                s.mark_deletes_flushed(n);
            }
        }
        self.manifest = manifest;
        self.last_flush = crate::rt::now();
    }
}
