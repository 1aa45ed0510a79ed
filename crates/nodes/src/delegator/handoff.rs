//! Handoff: a shard's sealed segments move to the query node the coordinator assigns
//! the vchannel, with their indexes built first by the data node. The target switches
//! only while none of the copy's segments is remote (see [`super::targets`]).

use quiver_core::ids::SegmentId;
use quiver_core::rt;
use quiver_core::segment::storage::SegmentFiles;
use std::sync::Arc;

use super::ShardDelegator;
use crate::coordinator::IndexInfo;
use crate::rpc::QueryNodeApi;

impl ShardDelegator<'_> {
    /// Hands the shard's local sealed segments to its query node, if there is one. A
    /// failure leaves them served here; the next tick tries again.
    pub async fn hand_off(&self) {
        let Some(qn) = self.handoff_target().await else {
            return;
        };
        self.build_indexes().await;
        let (info, at, epoch) = (&self.info, self.at, self.shard.epoch());
        let res = self
            .shard
            .hand_off(|segments| async move {
                qn.load(info.clone(), at, segments, epoch)
                    .await
                    .map_err(super::forward::remote_error)
            })
            .await;
        match res {
            Ok(ids) if !ids.is_empty() => {
                self.d.targets.trust(self.vchannel(), epoch);
                // The query node loaded every index file that existed.
                self.d.note_served(&ids);
                tracing::info!(vchannel = self.vchannel(), segments = ?ids, "handed off to the query node")
            }
            Ok(_) => {}
            Err(e) => {
                self.suspect();
                tracing::warn!(vchannel = self.vchannel(), error = %e, "handoff failed; segments stay here")
            }
        }
    }

    /// The query node to hand the copy's segments to: its current target, or, when it
    /// has none or found it failing and none of its segments is remote any more, the
    /// coordinator's choice. A suspect target that still serves segments is kept (it
    /// cannot be left yet); a load it accepts clears the suspicion, so a passing fault
    /// does not stop handoffs. `None` means not now (the next tick asks again).
    async fn handoff_target(&self) -> Option<Arc<dyn QueryNodeApi>> {
        let targets = &self.d.targets;
        if !targets.any() {
            return None;
        }
        let (vchannel, epoch) = (self.vchannel(), self.shard.epoch());
        let current = targets.entry(vchannel, epoch);
        match &current {
            Some((id, false)) => return targets.node(id),
            // Segments still served by a suspect node: stay with it until reads take
            // them back (or a load succeeds).
            Some((id, true))
                if !self.shard.remote_files().await.is_empty()
                    && !quiver_core::mutation::active("qn-switch-while-remote") =>
            {
                return targets.node(id)
            }
            _ => {}
        }
        let avoid = current.map(|(id, _)| id);
        match self
            .d
            .coord
            .assign_query_node(vchannel, targets.ids(), avoid)
            .await
        {
            Ok(id) => {
                self.check_no_remote().await;
                targets.set(vchannel, epoch, id.clone());
                targets.node(&id)
            }
            Err(e) => {
                tracing::debug!(%vchannel, error = %e.reason, "no query node assignment yet; segments stay here");
                None
            }
        }
    }

    /// The query-target rule: a copy's target changes only while none of its segments
    /// is remote, so every remote segment is always on the one current target.
    async fn check_no_remote(&self) {
        if !quiver_core::invariant::CHECKED || quiver_core::mutation::any_active() {
            return;
        }
        let remote = self.shard.remote_files().await;
        quiver_core::invariant!(
            remote.is_empty(),
            "{}: the query target would change while {} segments are remote",
            self.vchannel(),
            remote.len()
        );
    }

    /// Has the data node build every index of the collection for the shard's sealed
    /// segments, and the query node load those built after their segment was handed
    /// off. A failure is retried with backoff, or never when it is final (see
    /// [`super::builds`]); meanwhile the segment is searched exactly, unless the
    /// failure is final, which searches report.
    async fn build_indexes(&self) {
        if self.d.data_node.is_none() {
            return;
        }
        let remote: Vec<SegmentFiles> = self.shard.remote_files().await;
        let mut all = self.shard.local_sealed_files().await;
        all.extend(remote.iter().cloned());
        for files in all {
            for index in self
                .info
                .indexes
                .iter()
                .filter(|i| crate::datanode::needs_build(i))
            {
                if self.build_index(&files, index).await {
                    self.load_late_index(&files, index, remote.contains(&files))
                        .await;
                }
            }
        }
    }

    /// Builds one index of one segment unless it is known to be built (or failed and
    /// is not due again); whether it is built.
    async fn build_index(&self, files: &SegmentFiles, index: &IndexInfo) -> bool {
        let Some(dn) = &self.d.data_node else {
            return false;
        };
        let key = (files.id, index.id);
        if self.d.built().contains(&key) {
            return true;
        }
        if !self.d.failures().may_try(key, rt::now()) {
            return false;
        }
        match dn
            .build_index(self.info.clone(), files.clone(), index.clone())
            .await
        {
            Ok(()) => {
                self.d.failures().clear(key);
                self.d.built().insert(key);
                true
            }
            Err(e) => {
                let retry_at = self.d.failures().record(key, &e, rt::now());
                match retry_at {
                    Some(at) => {
                        tracing::warn!(segment = files.id.0, index = %index.name, error = %e.reason, retry_in = ?at.duration_since(rt::now()), "index build failed; retrying later, the segment is searched exactly")
                    }
                    None => {
                        tracing::error!(segment = files.id.0, index = %index.name, error = %e.reason, "index build failed for good; describe_index reports it and searches of the field are refused until the index is dropped")
                    }
                }
                false
            }
        }
    }

    /// The final build failure of `index` on one of this shard's sealed segments: the
    /// segment and the reason.
    pub async fn fatal_build_failure(&self, index: &IndexInfo) -> Option<(SegmentId, String)> {
        let mut segments: Vec<SegmentId> = self
            .shard
            .local_sealed_files()
            .await
            .iter()
            .map(|f| f.id)
            .collect();
        segments.extend(self.shard.remote_files().await.iter().map(|f| f.id));
        self.d.failures().fatal_of(index.id, segments.into_iter())
    }

    /// A segment handed off before this index existed: the query node loads the index
    /// beside the segment it already serves.
    async fn load_late_index(&self, files: &SegmentFiles, index: &IndexInfo, remote: bool) {
        let key = (files.id, index.id);
        let served = self.d.served_with().contains(&key);
        let (Some(qn), true, false) = (self.target(), remote, served) else {
            return;
        };
        let res = qn
            .load_index(
                Box::new(self.info.clone()),
                self.at,
                Box::new(files.clone()),
                Box::new(index.clone()),
                self.shard.epoch(),
            )
            .await;
        match res {
            Ok(()) => {
                self.d.served_with().insert(key);
            }
            Err(e) => {
                tracing::warn!(segment = files.id.0, error = %e.reason, "query node could not load a new index")
            }
        }
    }
}
