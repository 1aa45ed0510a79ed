//! Operator commands on a stopped standalone server's data directory: [`inspect`]
//! checks every collection's shards — WAL, manifest and segment objects — and reports
//! what is damaged and where; [`repair`] reports the same and, only when asked
//! explicitly, repairs a collection by cutting its WAL at the damage or dropping its
//! damaged segments, saying exactly what that gave up.
//!
//! Both hold the meta store's file lock while they run (redb takes it on open): a
//! running server holds it, so they refuse to touch a live data directory, and a server
//! cannot start on the directory while they run.

mod inspect;
mod repair;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use quiver_core::meta::{MetaError, MetaStore, RedbMetaStore};
use quiver_core::rt::disk::{Disk, StdDisk};

use crate::coordinator::catalog::{decode_collection, CATALOG_PREFIX};
use crate::coordinator::CollectionInfo;

pub use inspect::{inspect, CollectionReport, Inspection, ManifestState, ShardReport};
pub use repair::{repair, RepairOptions, RepairReport};

/// Why an operator command could not run (as opposed to damage it found and reports).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("{0} is not a Quiver data directory: it has no meta.redb")]
    NotADataDir(String),
    #[error("{0}")]
    Meta(#[from] MetaError),
    #[error("{0}")]
    Failed(String),
}

/// A stopped server's data directory, opened with its lock held.
pub struct DataDir {
    pub path: PathBuf,
    pub meta: Arc<dyn MetaStore>,
    pub store: Arc<dyn ObjectStore>,
    pub disk: Arc<dyn Disk>,
}

impl DataDir {
    /// Opens the data directory at `path`, taking the meta store's lock (fails while a
    /// server runs on it). A damaged meta store fails here, naming the file.
    pub fn open(path: &Path) -> Result<DataDir, OpsError> {
        let meta_path = path.join("meta.redb");
        if !meta_path.exists() {
            return Err(OpsError::NotADataDir(path.display().to_string()));
        }
        let meta = RedbMetaStore::open(&meta_path).map_err(|e| match e {
            MetaError::Damaged { .. } => OpsError::Failed(format!(
                "{e}. It holds every collection's catalog and manifests and cannot be \
                 repaired here (redb's own repair ran on open and could not fix it): \
                 restore meta.redb from a backup"
            )),
            e => OpsError::Meta(e),
        })?;
        let objects = path.join("objects");
        let failed =
            |e: &dyn std::fmt::Display| OpsError::Failed(format!("{}: {e}", objects.display()));
        std::fs::create_dir_all(&objects).map_err(|e| failed(&e))?;
        let store = LocalFileSystem::new_with_prefix(&objects).map_err(|e| failed(&e))?;
        Ok(DataDir {
            path: path.to_path_buf(),
            meta: Arc::new(meta),
            store: Arc::new(store.with_fsync(true)),
            disk: Arc::new(StdDisk),
        })
    }

    /// The directory of a vchannel's WAL.
    pub fn wal_dir(&self, vchannel: &str) -> PathBuf {
        self.path.join("wal").join(vchannel)
    }

    /// Whether this data directory keeps its WALs in the object store (`--wal
    /// object`) rather than in local files. Decided for the whole directory, as the
    /// server decides it, so one shard whose log is gone is not taken for the other
    /// backend.
    pub fn uses_object_wal(&self) -> bool {
        let dir = self
            .path
            .join("objects")
            .join(crate::streaming::OBJECT_WAL_ROOT);
        std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
    }

    /// Every collection in the catalog, in id order.
    pub async fn collections(&self) -> Result<Vec<CollectionInfo>, OpsError> {
        let mut out = Vec::new();
        for (k, v) in self.meta.range(CATALOG_PREFIX).await? {
            out.push(decode_collection(&k, &v).map_err(|e| OpsError::Failed(e.reason))?);
        }
        out.sort_by_key(|c| c.id);
        Ok(out)
    }
}

// Real directories, real tokio and the loopback services of standalone.
#[cfg(all(test, not(madsim)))]
mod tests;
