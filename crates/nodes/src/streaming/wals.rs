//! Where a streaming node's WALs live: on its own disk (standalone) or in a WAL store
//! that other streaming nodes can reach too (a cluster, where vchannels move).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use quiver_core::rt::disk::Disk;
use quiver_core::wal::{LocalWal, LocalWalOptions, Wal, WalError};

use crate::error::{ApiError, ApiResult};
use crate::walstore::{RemoteWal, WalStoreApi};

/// Where a streaming node's WALs live: on its own disk (standalone) or in a WAL store
/// that other streaming nodes can reach too (a cluster, where vchannels move).
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
        self.open.lock().await.remove(vchannel);
        let dir = self.dir.join(vchannel);
        if let Ok(files) = self.disk.list(&dir) {
            for f in files {
                self.disk
                    .remove(&dir.join(f))
                    .map_err(|e| ApiError::internal(format!("removing WAL of {vchannel}: {e}")))?;
            }
        }
        Ok(())
    }
}

/// WALs in a [`WalStore`](crate::walstore::WalStore), reachable from every streaming
/// node.
pub struct RemoteWals(pub Arc<dyn WalStoreApi>);

#[async_trait::async_trait]
impl WalOpener for RemoteWals {
    async fn open(&self, vchannel: &str, writer: &str) -> Result<Arc<dyn Wal>, WalError> {
        Ok(Arc::new(RemoteWal::new(self.0.clone(), vchannel, writer)))
    }

    async fn remove(&self, vchannel: &str) -> ApiResult<()> {
        self.0.remove(vchannel.to_string()).await
    }
}
