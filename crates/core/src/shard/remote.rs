//! Sealed segments another node serves: handing them off, routing deletes to them,
//! and taking them back when that node fails.

use super::state::State;
use super::{RemoteError, Shard, ShardError};
use crate::ids::{PartitionId, SegmentId};
use crate::segment::storage::{self, SegmentFiles};
use crate::segment::{DeleteRecord, PkStats};

/// Sends deletes to the node that serves a handed-off sealed segment.
#[async_trait::async_trait]
pub trait DeleteForwarder: Send + Sync {
    async fn forward(&self, deletes: &[(SegmentId, DeleteRecord)]) -> Result<(), RemoteError>;
}

/// A sealed segment that another node serves. The shard keeps what it needs to route
/// deletes to it (its key statistics) and the deletes not yet in a delete log.
#[derive(Debug, Clone)]
pub(super) struct RemoteStub {
    pub(super) stats: PkStats,
    pub(super) unflushed_deletes: Vec<DeleteRecord>,
    /// A delete could not be forwarded and the segment could not be taken back: reads
    /// must not use the remote copy until [`Shard::reclaim`] succeeds.
    pub(super) stale: bool,
}

impl State {
    /// Handed-off segments in the given partitions, with whether each is stale.
    pub(super) fn remote_in(&self, partitions: Option<&[PartitionId]>) -> Vec<(SegmentId, bool)> {
        self.remote
            .iter()
            .filter(|(id, _)| {
                partitions.is_none_or(|ps| {
                    self.manifest
                        .files(**id)
                        .is_some_and(|f| ps.contains(&f.partition))
                })
            })
            .map(|(id, stub)| (*id, stub.stale))
            .collect()
    }

    /// The manifest's files of the segments `keep` selects.
    fn files_where(&self, keep: impl Fn(SegmentId) -> bool) -> Vec<SegmentFiles> {
        self.manifest
            .segments
            .iter()
            .filter(|f| keep(f.id))
            .cloned()
            .collect()
    }

    /// Every local sealed segment with the deletes not yet in a delete log: what a
    /// handoff sends.
    fn handoff_batch(&self) -> Vec<(SegmentFiles, Vec<DeleteRecord>)> {
        self.sealed
            .values()
            .filter_map(|s| {
                let files = self.manifest.files(s.id)?;
                Some((files.clone(), s.unflushed_deletes().to_vec()))
            })
            .collect()
    }

    /// Releases the local copies of `ids`, keeping what routes deletes to them.
    fn release(&mut self, ids: &[SegmentId]) {
        for id in ids {
            if let Some(seg) = self.sealed.remove(id) {
                self.remote.insert(
                    *id,
                    RemoteStub {
                        stats: seg.stats().clone(),
                        unflushed_deletes: seg.unflushed_deletes().to_vec(),
                        stale: false,
                    },
                );
            }
        }
    }
}

impl Shard {
    /// Forwards deletes to the node serving their segments; if that fails, takes the
    /// segments back (loads them here) so no read can miss the delete.
    pub(super) async fn forward_or_reclaim(
        &self,
        st: &mut State,
        outbox: Vec<(SegmentId, DeleteRecord)>,
    ) -> Result<(), ShardError> {
        let forwarded = match &self.deps.forwarder {
            Some(f) => f.forward(&outbox).await,
            None => Err(RemoteError::Unavailable("no forwarder".to_string())),
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
                .files(*id)
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
        st.check_invariants();
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// The files of the sealed segments served here (not handed off).
    pub async fn local_sealed_files(&self) -> Vec<SegmentFiles> {
        let st = self.state.read().await;
        st.files_where(|id| st.sealed.contains_key(&id))
    }

    /// The files of the sealed segments handed off to another node.
    pub async fn remote_files(&self) -> Vec<SegmentFiles> {
        let st = self.state.read().await;
        st.files_where(|id| st.remote.contains_key(&id))
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
    pub async fn hand_off<F, Fut>(&self, load: F) -> Result<Vec<SegmentId>, RemoteError>
    where
        F: FnOnce(Vec<(SegmentFiles, Vec<DeleteRecord>)>) -> Fut + Send,
        Fut: std::future::Future<Output = Result<(), RemoteError>> + Send,
    {
        let mut st = self.state.write().await;
        let batch = st.handoff_batch();
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<SegmentId> = batch.iter().map(|(f, _)| f.id).collect();
        load(batch).await?;
        st.release(&ids);
        st.check_invariants();
        Ok(ids)
    }

    /// Handed-off segments in the given partitions, with whether each is stale.
    pub async fn remote_segments(
        &self,
        partitions: Option<&[PartitionId]>,
    ) -> Vec<(SegmentId, bool)> {
        self.state.read().await.remote_in(partitions)
    }
}
