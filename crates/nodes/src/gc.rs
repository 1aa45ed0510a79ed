//! Garbage collection of dropped collections.
//!
//! Segment binlogs, stats, delete logs and index files live under
//! `<kind>/<collection id>/...`; each shard has a manifest (`shard/<id>/<vchannel>/
//! manifest` in the meta store) and a checkpoint in its pchannel's log
//! (`walckpt/<pchannel>/<vchannel>`; a collection created before pchannels has a log of
//! its own per shard instead). Dropping a collection removes its catalog entry, then (in
//! a second step) its checkpoints (or own logs) and manifests; its records in a shared
//! log go when the log is truncated past them. Its objects are removed here, by a sweep
//! that deletes every object whose collection the catalog no longer has.
//! [`sweep_dropped_shards`] removes the manifests, checkpoints and logs a drop
//! interrupted between those two steps left behind (or a deposed node wrote late); the object sweep also finds a deposed streaming node's
//! late flush. (An object store's own staging files of an interrupted upload are not
//! listed, so not swept.)
//!
//! Why it is safe without locks: both sweeps list what exists *before* they read the
//! catalog (from the coordinator, which is authoritative). A collection's catalog entry
//! is committed before any of its objects or manifests is written, so every listed
//! collection that is still alive is in the catalog read after the listing; collection
//! ids are TSO timestamps and never reused, so an id missing from the catalog is gone
//! for good.

use std::collections::BTreeSet;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use quiver_core::ids::VChannel;
use quiver_core::meta::MetaStore;
use quiver_core::wal::pchannel::CHECKPOINT_PREFIX;

use crate::coordinator::CoordinatorApi;
use crate::error::{ApiError, ApiResult};
use crate::streaming::WalOpener;

/// The object kinds stored per collection (the first path component).
pub const OBJECT_KINDS: [&str; 4] = ["insert_log", "stats_log", "delta_log", "index_files"];

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Dropped collections whose objects were found.
    pub collections: BTreeSet<i64>,
    /// Objects deleted.
    pub objects: usize,
}

fn storage_error(e: object_store::Error) -> ApiError {
    ApiError::internal(format!("object storage: {e}"))
}

/// The collection ids that have objects of `kind`.
async fn collections_with(store: &dyn ObjectStore, kind: &str) -> ApiResult<BTreeSet<i64>> {
    let listed = store
        .list_with_delimiter(Some(&Path::from(kind)))
        .await
        .map_err(storage_error)?;
    Ok(listed
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().and_then(|id| id.parse().ok()))
        .collect())
}

/// Deletes the objects of every collection the catalog no longer has. Any failure
/// stops the sweep before it deletes more (the next sweep resumes).
#[tracing::instrument(skip_all)]
pub async fn sweep_dropped(
    store: &dyn ObjectStore,
    coord: &dyn CoordinatorApi,
) -> ApiResult<SweepReport> {
    let mut found = Vec::new();
    for kind in OBJECT_KINDS {
        for id in collections_with(store, kind).await? {
            found.push((kind, id));
        }
    }
    if found.is_empty() {
        return Ok(SweepReport::default());
    }
    // The catalog is read after the listing (see the module docs).
    let live: BTreeSet<i64> = coord.all().await?.iter().map(|c| c.id.0).collect();
    let mut report = SweepReport::default();
    for (kind, id) in found.into_iter().filter(|(_, id)| !live.contains(id)) {
        let prefix = Path::from(format!("{kind}/{id}"));
        let objects: Vec<Path> = store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(storage_error)?;
        for location in &objects {
            match store.delete(location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(storage_error(e)),
            }
        }
        report.objects += objects.len();
        report.collections.insert(id);
    }
    if report.objects > 0 {
        tracing::info!(collections = ?report.collections, objects = report.objects, "removed the objects of dropped collections");
    }
    Ok(report)
}

/// Where shard manifests live in the meta store.
const MANIFEST_PREFIX: &str = "shard/";

/// Removes the manifests, WAL checkpoints and own WALs of shards whose collection the
/// catalog no longer has; returns how many shards it removed.
#[tracing::instrument(skip_all)]
pub async fn sweep_dropped_shards(
    meta: &dyn MetaStore,
    wals: &dyn WalOpener,
    coord: &dyn CoordinatorApi,
) -> ApiResult<usize> {
    // `shard/<collection id>/<vchannel>/manifest`
    let found: Vec<(String, i64, String)> = meta
        .range(MANIFEST_PREFIX)
        .await?
        .into_iter()
        .filter_map(|(key, _)| {
            let mut parts = key.split('/');
            let (_, id, vchannel, leaf) =
                (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            (leaf == "manifest" && parts.next().is_none())
                .then(|| Some((key.clone(), id.parse().ok()?, vchannel.to_string())))
                .flatten()
        })
        .collect();
    // `walckpt/<pchannel>/<vchannel>`
    let checkpoints: Vec<(String, i64)> = meta
        .range(CHECKPOINT_PREFIX)
        .await?
        .into_iter()
        .filter_map(|(key, _)| {
            let vchannel = VChannel(key.rsplit('/').next()?.to_string());
            Some((key, vchannel.collection()?.0))
        })
        .collect();
    if found.is_empty() && checkpoints.is_empty() {
        return Ok(0);
    }
    // The catalog is read after the listing (see the module docs).
    let live: BTreeSet<i64> = coord.all().await?.iter().map(|c| c.id.0).collect();
    let mut removed = 0;
    for (key, _) in checkpoints.iter().filter(|(_, id)| !live.contains(id)) {
        meta.delete(key).await?;
    }
    for (key, _, vchannel) in found.iter().filter(|(_, id, _)| !live.contains(id)) {
        // A log of the shard's own, if it is from before pchannels (else none).
        wals.remove(vchannel).await?;
        meta.delete(key).await?;
        removed += 1;
    }
    if removed > 0 {
        tracing::info!(
            shards = removed,
            "removed the WALs and manifests of dropped collections"
        );
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};
    use quiver_core::meta::{MemMetaStore, MetaStore};
    use quiver_core::schema::{CollectionSchema, DataType, FieldSchema};
    use quiver_core::tso::TsoAllocator;

    use super::*;
    use crate::coordinator::{Coordinator, DEFAULT_DB};

    fn schema(name: &str) -> CollectionSchema {
        CollectionSchema::new(
            name,
            vec![
                FieldSchema::new("id", DataType::Int64).primary(false),
                FieldSchema::new("v", DataType::FloatVector { dim: 2 }),
            ],
            false,
        )
        .unwrap()
    }

    async fn put(store: &InMemory, path: String) {
        store
            .put(&Path::from(path), PutPayload::from_static(b"x"))
            .await
            .unwrap();
    }

    #[test]
    fn sweeps_only_collections_the_catalog_no_longer_has() {
        quiver_core::rt::block_on(async {
            let meta: Arc<dyn MetaStore> = Arc::new(MemMetaStore::new());
            let tso = Arc::new(TsoAllocator::open(meta.clone(), "tso").await.unwrap());
            let coord = Coordinator::open(meta, tso, 4).await.unwrap();
            coord.create_database("other", vec![]).await.unwrap();
            let kept = coord
                .create(DEFAULT_DB, schema("kept"), 1, 0, vec![])
                .await
                .unwrap();
            let elsewhere = coord
                .create("other", schema("kept"), 1, 0, vec![])
                .await
                .unwrap();
            let dropped = coord
                .create(DEFAULT_DB, schema("gone"), 1, 0, vec![])
                .await
                .unwrap();
            let store = InMemory::new();
            for c in [kept.id.0, elsewhere.id.0, dropped.id.0] {
                for kind in OBJECT_KINDS {
                    put(&store, format!("{kind}/{c}/1/2/e1/obj")).await;
                }
            }
            // Nothing is dropped yet: nothing goes.
            assert_eq!(
                sweep_dropped(&store, &coord).await.unwrap(),
                SweepReport::default()
            );
            coord.drop_collection(DEFAULT_DB, "gone").await.unwrap();
            let report = sweep_dropped(&store, &coord).await.unwrap();
            assert_eq!(report.objects, 4);
            assert_eq!(report.collections, BTreeSet::from([dropped.id.0]));
            for kind in OBJECT_KINDS {
                let left: Vec<_> = store
                    .list(Some(&Path::from(kind)))
                    .try_collect::<Vec<_>>()
                    .await
                    .unwrap();
                assert_eq!(left.len(), 2, "{kind}: {left:?}");
            }
            assert_eq!(sweep_dropped(&store, &coord).await.unwrap().objects, 0);
        });
    }

    /// Records which WALs were removed.
    #[derive(Default)]
    struct Removed(std::sync::Mutex<Vec<String>>);

    #[async_trait::async_trait]
    impl WalOpener for Removed {
        async fn open(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Arc<dyn quiver_core::wal::Wal>, quiver_core::wal::WalError> {
            Err(quiver_core::wal::WalError::Broken)
        }
        async fn remove(&self, vchannel: &str) -> ApiResult<()> {
            self.0.lock().unwrap().push(vchannel.to_string());
            Ok(())
        }
    }

    #[test]
    fn an_interrupted_drop_leaves_no_wal_or_manifest_behind() {
        quiver_core::rt::block_on(async {
            let meta: Arc<dyn MetaStore> = Arc::new(MemMetaStore::new());
            let tso = Arc::new(TsoAllocator::open(meta.clone(), "tso").await.unwrap());
            let coord = Coordinator::open(meta.clone(), tso, 4).await.unwrap();
            let kept = coord
                .create(DEFAULT_DB, schema("kept"), 2, 0, vec![])
                .await
                .unwrap();
            let gone = coord
                .create(DEFAULT_DB, schema("gone"), 2, 0, vec![])
                .await
                .unwrap();
            for info in [&kept, &gone] {
                for v in info.vchannels() {
                    let key = format!("shard/{}/{}/manifest", info.id, v);
                    meta.put(&key, b"m".to_vec()).await.unwrap();
                }
            }
            let wals = Removed::default();
            assert_eq!(
                sweep_dropped_shards(meta.as_ref(), &wals, &coord)
                    .await
                    .unwrap(),
                0
            );
            // The catalog entry goes; the process dies before the WALs and manifests do.
            coord.drop_collection(DEFAULT_DB, "gone").await.unwrap();
            assert_eq!(
                sweep_dropped_shards(meta.as_ref(), &wals, &coord)
                    .await
                    .unwrap(),
                2
            );
            let removed = wals.0.lock().unwrap().clone();
            let want: Vec<String> = gone.vchannels().iter().map(|v| v.0.clone()).collect();
            assert_eq!(removed, want);
            let left = meta.range("shard/").await.unwrap();
            assert_eq!(left.len(), 2);
            assert!(left.iter().all(|(k, _)| k.contains(&kept.id.to_string())));
        });
    }
}
