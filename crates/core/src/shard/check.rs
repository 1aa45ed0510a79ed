//! Offline checks and repairs of a shard's durable description — its manifest in the
//! meta store and the segment objects it names — for `quiver inspect` and `quiver
//! repair` on a stopped server. Transient store errors are returned as errors, never
//! reported as damage.

use std::sync::Arc;

use object_store::ObjectStore;

use super::manifest::decode_manifest;
use super::{Manifest, ShardError};
use crate::ids::{CollectionId, SegmentId, VChannel};
use crate::meta::MetaStore;
use crate::schema::CollectionSchema;
use crate::segment::format::{self, ObjectKind};
use crate::segment::storage;

/// Where the manifest of shard `vchannel` of `collection` lives in the meta store.
pub fn manifest_key_of(collection: CollectionId, vchannel: &VChannel) -> String {
    format!("shard/{collection}/{vchannel}/manifest")
}

/// The shard's manifest and its bytes as stored (`None`: the shard never flushed or
/// opened). A manifest that does not decode is [`ShardError::Manifest`].
pub async fn read_manifest(
    meta: &dyn MetaStore,
    collection: CollectionId,
    vchannel: &VChannel,
) -> Result<Option<(Manifest, Vec<u8>)>, ShardError> {
    let key = manifest_key_of(collection, vchannel);
    match meta.get(&key).await? {
        Some(raw) => Ok(Some((decode_manifest(&key, &raw)?, raw))),
        None => Ok(None),
    }
}

/// A segment named by a manifest whose objects are missing or damaged.
#[derive(Debug)]
pub struct SegmentDamage {
    pub segment: SegmentId,
    pub rows: u64,
    pub error: ShardError,
}

/// Loads every segment the manifest names, as opening the shard would; returns the
/// damaged ones. A transient store error stops the check with that error.
pub async fn check_segments(
    store: &Arc<dyn ObjectStore>,
    schema: &CollectionSchema,
    manifest: &Manifest,
) -> Result<Vec<SegmentDamage>, ShardError> {
    let mut out = Vec::new();
    for files in &manifest.segments {
        if let Err(e) = storage::load_sealed(store, schema, files).await {
            let error = ShardError::from(e);
            if !error.is_damage() {
                return Err(error);
            }
            out.push(SegmentDamage {
                segment: files.id,
                rows: files.num_rows,
                error,
            });
        }
    }
    Ok(out)
}

/// Removes segments `drop` from the shard's manifest (as it was read: `raw`), keeping
/// its checkpoint — their rows are lost. Fails if the manifest changed meanwhile.
pub async fn drop_segments(
    meta: &dyn MetaStore,
    collection: CollectionId,
    vchannel: &VChannel,
    (manifest, raw): (&Manifest, &[u8]),
    drop: &[SegmentId],
) -> Result<Manifest, ShardError> {
    let mut kept = manifest.clone();
    kept.segments.retain(|f| !drop.contains(&f.id));
    let encoded = format::encode(ObjectKind::ShardManifest, &kept);
    let key = manifest_key_of(collection, vchannel);
    if !meta
        .compare_and_swap(&key, Some(raw), Some(encoded))
        .await?
    {
        return Err(ShardError::NotOwner {
            vchannel: vchannel.0.clone(),
            mine: manifest.owner_epoch,
            current: u64::MAX,
        });
    }
    Ok(kept)
}
