//! The shard's durable description in the meta store — its flushed segments, delete
//! logs, WAL checkpoint and owner epoch — and the compare-and-swap that commits it.

use serde::{Deserialize, Serialize};

use super::{Shard, ShardConfig, ShardError, State};
use crate::segment::format::{self, ObjectKind};
use crate::segment::storage::SegmentFiles;
use crate::wal::Offset;

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

impl Manifest {
    /// The files of segment `id`, if the manifest names it.
    pub(super) fn files(&self, id: crate::ids::SegmentId) -> Option<&SegmentFiles> {
        self.segments.iter().find(|f| f.id == id)
    }
}

/// The manifest as the first release wrote it (no owner epoch); read, never written.
#[derive(Deserialize)]
struct ManifestV1 {
    checkpoint: Offset,
    segments: Vec<SegmentFiles>,
    next_segment: i64,
    next_log_id: u64,
}

pub(super) fn decode_manifest(key: &str, bytes: &[u8]) -> Result<Manifest, ShardError> {
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

pub(super) fn manifest_key(cfg: &ShardConfig) -> String {
    super::check::manifest_key_of(cfg.collection, &cfg.vchannel)
}

impl Shard {
    fn not_owner(&self, current: u64) -> ShardError {
        ShardError::NotOwner {
            vchannel: self.cfg.vchannel.0.clone(),
            mine: self.deps.epoch.0,
            current,
        }
    }

    /// Commits `manifest` over the one this owner last saw — the commit point of a
    /// flush. Only if no newer owner has claimed the shard since; if the outcome is
    /// unknown or a newer owner won, this copy is retired.
    pub(super) async fn commit_manifest(
        &self,
        st: &mut State,
        manifest: &mut Manifest,
    ) -> Result<(), ShardError> {
        // The compare-and-swap is against the manifest this owner claimed (or last
        // committed): it must carry this owner's epoch, or the swap could succeed
        // over a manifest some other owner wrote.
        crate::invariant_cheap!(
            st.manifest.owner_epoch == self.deps.epoch.0,
            "shard {} commits under epoch {} over a manifest of epoch {}",
            self.cfg.vchannel,
            self.deps.epoch.0,
            st.manifest.owner_epoch
        );
        manifest.owner_epoch = self.deps.epoch.0;
        let encoded = format::encode(ObjectKind::ShardManifest, &*manifest);
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
            return Err(self.not_owner(u64::MAX));
        }
        st.manifest_raw = Some(encoded);
        Ok(())
    }
}

/// Claims the manifest at `key` for `epoch` when a shard opens: the previous owner's
/// commits (compare-and-swap against what it saw) fail from now on. Returns the
/// manifest and its bytes as claimed.
pub(super) async fn claim(
    cfg: &ShardConfig,
    deps: &super::ShardDeps,
) -> Result<(Manifest, Vec<u8>), ShardError> {
    let key = manifest_key(cfg);
    let not_owner = |current| ShardError::NotOwner {
        vchannel: cfg.vchannel.0.clone(),
        mine: deps.epoch.0,
        current,
    };
    let raw = deps.meta.get(&key).await?;
    let mut manifest = match &raw {
        Some(bytes) => decode_manifest(&key, bytes)?,
        // A vchannel new to a shared log starts where the log ends now: nothing before
        // that is its own (the log is fenced, so nothing more can land before it).
        None => Manifest {
            next_segment: cfg.first_segment_id.max(1),
            checkpoint: deps.wal.fresh_checkpoint().await?,
            ..Manifest::default()
        },
    };
    if manifest.owner_epoch > deps.epoch.0 {
        return Err(not_owner(manifest.owner_epoch));
    }
    manifest.owner_epoch = deps.epoch.0;
    let claimed = format::encode(ObjectKind::ShardManifest, &manifest);
    if !deps
        .meta
        .compare_and_swap(&key, raw.as_deref(), Some(claimed.clone()))
        .await?
    {
        return Err(not_owner(u64::MAX));
    }
    Ok((manifest, claimed))
}
