//! Where a streaming node's WALs live: on its own disk, or in object storage that
//! every streaming node can reach (so vchannels can move between them).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use quiver_core::rt::disk::Disk;
use quiver_core::wal::{
    object, LocalWal, LocalWalOptions, ObjectWal, ObjectWalOptions, Wal, WalError,
};

use crate::error::{ApiError, ApiResult};

/// Where a streaming node's WALs live: on its own disk (standalone's default) or in
/// object storage that every streaming node reaches (a cluster, where vchannels move).
#[async_trait::async_trait]
pub trait WalOpener: Send + Sync {
    /// The log of `vchannel`, for the shard copy named `writer`.
    async fn open(&self, vchannel: &str, writer: &str) -> Result<Arc<dyn Wal>, WalError>;
    /// Deletes a dropped vchannel's log.
    async fn remove(&self, vchannel: &str) -> ApiResult<()>;
}

/// WALs on a local disk, one directory per vchannel under `<dir>/wal`. Each log is
/// opened once per process and shared by every incarnation of its shard here.
pub struct LocalWals {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    opts: LocalWalOptions,
    open: tokio::sync::Mutex<BTreeMap<String, Arc<LocalWal>>>,
}

impl LocalWals {
    pub fn new(disk: Arc<dyn Disk>, data_dir: &std::path::Path, opts: LocalWalOptions) -> Self {
        LocalWals {
            disk,
            dir: data_dir.join("wal"),
            opts,
            open: Default::default(),
        }
    }
}

#[async_trait::async_trait]
impl WalOpener for LocalWals {
    async fn open(&self, vchannel: &str, _writer: &str) -> Result<Arc<dyn Wal>, WalError> {
        let mut open = self.open.lock().await;
        if let Some(w) = open.get(vchannel) {
            return Ok(w.clone());
        }
        let w = Arc::new(LocalWal::open(
            self.disk.clone(),
            self.dir.join(vchannel),
            self.opts.clone(),
        )?);
        open.insert(vchannel.to_string(), w.clone());
        Ok(w)
    }

    async fn remove(&self, vchannel: &str) -> ApiResult<()> {
        // Held throughout, so two removals (a drop and a garbage-collection sweep) take
        // turns and no open recreates the log half way through.
        let mut open = self.open.lock().await;
        open.remove(vchannel);
        remove_log_dir(self.disk.as_ref(), &self.dir.join(vchannel))
            .map_err(|e| ApiError::internal(format!("removing WAL of {vchannel}: {e}")))
    }
}

/// Deletes a log's directory and every file in it. Idempotent: what is already gone
/// (removed by an earlier, interrupted or concurrent removal) counts as removed.
pub(crate) fn remove_log_dir(disk: &dyn Disk, dir: &std::path::Path) -> std::io::Result<()> {
    let gone = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    };
    let files = match disk.list(dir) {
        Ok(files) => files,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for f in files {
        gone(disk.remove(&dir.join(f)))?;
    }
    gone(disk.remove_dir(dir))
}

/// WALs in object storage, one log per vchannel under `wal/<vchannel>/` (see
/// [`ObjectWal`]). Each log is opened once per process and shared by every incarnation
/// of its shard here; fencing between processes happens in the store.
pub struct ObjectWals {
    store: Arc<dyn ObjectStore>,
    opts: ObjectWalOptions,
    open: tokio::sync::Mutex<BTreeMap<String, ObjectWal>>,
}

/// Where the object-storage logs live in the object store.
pub const OBJECT_WAL_ROOT: &str = "wal";

impl ObjectWals {
    pub fn new(store: Arc<dyn ObjectStore>, opts: ObjectWalOptions) -> Self {
        ObjectWals {
            store,
            opts,
            open: Default::default(),
        }
    }

    fn prefix(vchannel: &str) -> ObjectPath {
        ObjectPath::from(OBJECT_WAL_ROOT).join(vchannel)
    }
}

#[async_trait::async_trait]
impl WalOpener for ObjectWals {
    async fn open(&self, vchannel: &str, _writer: &str) -> Result<Arc<dyn Wal>, WalError> {
        let mut open = self.open.lock().await;
        if let Some(w) = open.get(vchannel) {
            return Ok(Arc::new(w.clone()));
        }
        let prefix = Self::prefix(vchannel);
        let w = ObjectWal::open(self.store.clone(), prefix, self.opts.clone()).await?;
        open.insert(vchannel.to_string(), w.clone());
        Ok(Arc::new(w))
    }

    async fn remove(&self, vchannel: &str) -> ApiResult<()> {
        // Held throughout, as for local logs: removals take turns with opens.
        let mut open = self.open.lock().await;
        open.remove(vchannel);
        object::remove_log(self.store.as_ref(), &Self::prefix(vchannel))
            .await
            .map_err(|e| ApiError::internal(format!("removing WAL of {vchannel}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use quiver_core::rt::disk::StdDisk;
    use quiver_core::wal::Epoch;

    use super::*;

    fn wals(dir: &Path) -> LocalWals {
        LocalWals::new(Arc::new(StdDisk), dir, LocalWalOptions::default())
    }

    /// A removal leaves no directory behind, and a second removal (a garbage-collection
    /// sweep after the drop, or one racing it) finds nothing to do and succeeds.
    #[test]
    fn removing_a_log_is_complete_and_idempotent() {
        quiver_core::rt::block_on(async {
            let tmp = tempfile::tempdir().unwrap();
            let w = wals(tmp.path());
            let log = w.open("v1", "a").await.unwrap();
            log.append(Epoch(1), bytes::Bytes::from_static(b"x"))
                .await
                .unwrap();
            drop(log);
            assert!(tmp.path().join("wal/v1").exists());
            w.remove("v1").await.unwrap();
            assert!(!tmp.path().join("wal/v1").exists());
            w.remove("v1").await.unwrap();
            // A log never opened here is removed just as well.
            wals(tmp.path()).remove("never").await.unwrap();
        });
    }

    /// A disk whose listing still names a file another removal already deleted: what
    /// a drop sees when the garbage collector removes the same log under it.
    #[derive(Debug)]
    struct Stale(StdDisk);

    impl Disk for Stale {
        fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
            self.0.create_dir_all(dir)
        }
        fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
            let mut names = self.0.list(dir)?;
            names.push("removed-meanwhile".into());
            Ok(names)
        }
        fn exists(&self, path: &Path) -> std::io::Result<bool> {
            self.0.exists(path)
        }
        fn open(
            &self,
            path: &Path,
            create: bool,
        ) -> std::io::Result<Box<dyn quiver_core::rt::disk::DiskFile>> {
            self.0.open(path, create)
        }
        fn remove(&self, path: &Path) -> std::io::Result<()> {
            self.0.remove(path)
        }
        fn remove_dir(&self, dir: &Path) -> std::io::Result<()> {
            self.0.remove_dir(dir)
        }
        fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
            self.0.rename(from, to)
        }
        fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
            self.0.sync_dir(dir)
        }
    }

    #[test]
    fn a_file_removed_under_the_removal_is_not_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("wal/v1");
        StdDisk.create_dir_all(&dir).unwrap();
        let mut f = StdDisk.open(&dir.join("00000000.log"), true).unwrap();
        f.append(b"x").unwrap();
        drop(f);
        remove_log_dir(&Stale(StdDisk), &dir).unwrap();
        assert!(!dir.exists());
    }
}
