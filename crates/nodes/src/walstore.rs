//! The WAL store: per-vchannel logs kept by a service of their own, so that a
//! vchannel's log outlives the streaming node writing it and another streaming node
//! can take it over. Fencing happens here, where the log lives: once a newer owner
//! has claimed a log, appends under an older epoch are refused no matter who sends
//! them. Each log is a [`LocalWal`] on the service's disk.
//!
//! [`RemoteWal`] is the client side: it implements [`Wal`], so a shard cannot tell a
//! local log from a remote one. A transport failure during an append is reported as
//! an I/O error — the record may or may not be in the log, and the shard's caller
//! must treat the write as unknown.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use quiver_core::rt::disk::Disk;
use quiver_core::wal::{Epoch, LocalWal, LocalWalOptions, Offset, Wal, WalError, WalRecord};

use crate::error::{ApiError, ApiResult};
pub use crate::rpc::walstore::WalStoreApi;
use crate::rpc::walstore::{WalOutcome, WalRefusal, WalState};

#[derive(Debug, Clone)]
pub struct AppendEvent {
    pub log: String,
    pub epoch: u64,
    pub writer: String,
    /// The log's epoch before the append.
    pub log_epoch: u64,
    pub accepted: bool,
}

pub type AppendObserver = Arc<dyn Fn(AppendEvent) + Send + Sync>;

/// The service: logs opened on first use, one directory each.
pub struct WalStore {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    opts: LocalWalOptions,
    logs: tokio::sync::Mutex<BTreeMap<String, Arc<LocalWal>>>,
    observer: Option<AppendObserver>,
}

fn valid_log_name(log: &str) -> ApiResult<()> {
    let ok = !log.is_empty()
        && log.len() <= 255
        && log
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        && !log.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("bad log name {log:?}")))
    }
}

impl WalStore {
    pub fn new(disk: Arc<dyn Disk>, dir: impl Into<PathBuf>, opts: LocalWalOptions) -> Arc<Self> {
        Arc::new(WalStore {
            disk,
            dir: dir.into(),
            opts,
            logs: tokio::sync::Mutex::new(BTreeMap::new()),
            observer: None,
        })
    }

    /// The same, reporting every append to `observer`.
    pub fn with_observer(
        disk: Arc<dyn Disk>,
        dir: impl Into<PathBuf>,
        opts: LocalWalOptions,
        observer: AppendObserver,
    ) -> Arc<Self> {
        Arc::new(WalStore {
            disk,
            dir: dir.into(),
            opts,
            logs: tokio::sync::Mutex::new(BTreeMap::new()),
            observer: Some(observer),
        })
    }

    async fn log(&self, log: &str) -> ApiResult<Arc<LocalWal>> {
        valid_log_name(log)?;
        let mut logs = self.logs.lock().await;
        if let Some(l) = logs.get(log) {
            return Ok(l.clone());
        }
        let wal = LocalWal::open(self.disk.clone(), self.dir.join(log), self.opts.clone())
            .map_err(|e| ApiError::internal(format!("opening log {log}: {e}")))?;
        let wal = Arc::new(wal);
        logs.insert(log.to_string(), wal.clone());
        Ok(wal)
    }

    /// Turns a log's answer into a response. A log that failed an I/O operation
    /// accepts nothing more until reopened; it is dropped here so the next request
    /// reopens it (recovery cuts a torn tail).
    /// Turns a log's result into the store's answer: the log's refusals are outcomes
    /// for the writer; an I/O failure drops the open log, so the next use reopens it
    /// (recovery cuts a torn tail).
    async fn answer<T>(&self, log: &str, r: Result<T, WalError>) -> ApiResult<WalOutcome<T>> {
        if matches!(r, Err(WalError::Io(_) | WalError::Broken)) {
            tracing::warn!(log, "WAL failed an I/O operation; reopening it on next use");
            self.logs.lock().await.remove(log);
        }
        match r {
            Ok(v) => Ok(Ok(v)),
            Err(WalError::Fenced { attempted, current }) => {
                Ok(Err(WalRefusal::Fenced { attempted, current }))
            }
            Err(WalError::Truncated { requested, first }) => {
                Ok(Err(WalRefusal::Truncated { requested, first }))
            }
            Err(e) => Err(ApiError::internal(e)),
        }
    }
}

#[async_trait]
impl WalStoreApi for WalStore {
    async fn fence(&self, log: String, epoch: u64) -> ApiResult<WalOutcome<()>> {
        let l = self.log(&log).await?;
        self.answer(&log, l.fence(Epoch(epoch)).await).await
    }

    async fn append(
        &self,
        log: String,
        epoch: u64,
        payload: Vec<u8>,
        writer: String,
    ) -> ApiResult<WalOutcome<u64>> {
        let l = self.log(&log).await?;
        let log_epoch = l.epoch().await.0;
        let r = l.append(Epoch(epoch), Bytes::from(payload)).await;
        if let Some(obs) = &self.observer {
            obs(AppendEvent {
                log: log.clone(),
                epoch,
                writer,
                log_epoch,
                accepted: r.is_ok(),
            });
        }
        self.answer(&log, r).await
    }

    async fn read(
        &self,
        log: String,
        from: u64,
        max: u32,
    ) -> ApiResult<WalOutcome<Vec<(u64, u64, Vec<u8>)>>> {
        let l = self.log(&log).await?;
        let r = l.read_from(from, max.min(4096) as usize).await.map(|rs| {
            rs.into_iter()
                .map(|r| (r.offset, r.epoch.0, r.payload.to_vec()))
                .collect()
        });
        self.answer(&log, r).await
    }

    async fn truncate(&self, log: String, before: u64) -> ApiResult<WalOutcome<()>> {
        let l = self.log(&log).await?;
        self.answer(&log, l.truncate_before(before).await).await
    }

    async fn state(&self, log: String) -> ApiResult<WalState> {
        let l = self.log(&log).await?;
        Ok((
            l.next_offset().await,
            l.first_offset().await,
            l.epoch().await.0,
        ))
    }

    async fn remove(&self, log: String) -> ApiResult<()> {
        valid_log_name(&log)?;
        // Held throughout, so concurrent removals take turns (see `remove_log_dir`).
        let mut logs = self.logs.lock().await;
        logs.remove(&log);
        crate::streaming::wals::remove_log_dir(self.disk.as_ref(), &self.dir.join(&log))
            .map_err(|e| ApiError::internal(format!("removing log {log}: {e}")))
    }
}

pub struct RemoteWal {
    api: Arc<dyn WalStoreApi>,
    log: String,
    writer: String,
}

impl std::fmt::Debug for RemoteWal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWal").field("log", &self.log).finish()
    }
}

impl RemoteWal {
    /// `writer` names the copy of the shard that appends through this handle.
    pub fn new(
        api: Arc<dyn WalStoreApi>,
        log: impl Into<String>,
        writer: impl Into<String>,
    ) -> Self {
        RemoteWal {
            api,
            log: log.into(),
            writer: writer.into(),
        }
    }

    /// A store failure is an I/O error of the log: the operation's outcome is unknown.
    fn io(e: ApiError) -> WalError {
        WalError::Io(std::io::Error::other(format!("WAL store: {}", e.reason)))
    }

    /// The log's refusals become the errors a local log would give.
    fn outcome<T>(r: ApiResult<WalOutcome<T>>) -> Result<T, WalError> {
        match r.map_err(Self::io)? {
            Ok(v) => Ok(v),
            Err(WalRefusal::Fenced { attempted, current }) => {
                Err(WalError::Fenced { attempted, current })
            }
            Err(WalRefusal::Truncated { requested, first }) => {
                Err(WalError::Truncated { requested, first })
            }
        }
    }

    async fn state(&self) -> Option<WalState> {
        self.api.state(self.log.clone()).await.ok()
    }
}

#[async_trait]
impl Wal for RemoteWal {
    async fn fence(&self, epoch: Epoch) -> Result<(), WalError> {
        Self::outcome(self.api.fence(self.log.clone(), epoch.0).await)
    }

    async fn append(&self, epoch: Epoch, payload: Bytes) -> Result<Offset, WalError> {
        let r = self
            .api
            .append(
                self.log.clone(),
                epoch.0,
                payload.to_vec(),
                self.writer.clone(),
            )
            .await;
        Self::outcome(r)
    }

    async fn read_from(&self, from: Offset, max: usize) -> Result<Vec<WalRecord>, WalError> {
        let max = max.min(u32::MAX as usize) as u32;
        let rs = Self::outcome(self.api.read(self.log.clone(), from, max).await)?;
        Ok(rs
            .into_iter()
            .map(|(offset, epoch, payload)| WalRecord {
                offset,
                epoch: Epoch(epoch),
                payload: Bytes::from(payload),
            })
            .collect())
    }

    async fn truncate_before(&self, offset: Offset) -> Result<(), WalError> {
        Self::outcome(self.api.truncate(self.log.clone(), offset).await)
    }

    async fn next_offset(&self) -> Offset {
        self.state().await.map_or(0, |s| s.0)
    }

    async fn first_offset(&self) -> Offset {
        self.state().await.map_or(0, |s| s.1)
    }

    async fn epoch(&self) -> Epoch {
        Epoch(self.state().await.map_or(0, |s| s.2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_core::rt::disk::SimDisk;

    #[test]
    fn remote_wal_fences_stale_writers() {
        quiver_core::rt::block_on(async {
            let disk: Arc<dyn Disk> = Arc::new(SimDisk::new(1));
            let store: Arc<dyn WalStoreApi> =
                WalStore::new(disk, "/wal", LocalWalOptions::default());
            let old = RemoteWal::new(store.clone(), "c1_v0", "a");
            let new = RemoteWal::new(store.clone(), "c1_v0", "b");
            assert_eq!(
                old.append(Epoch(1), Bytes::from_static(b"a"))
                    .await
                    .unwrap(),
                0
            );
            new.fence(Epoch(2)).await.unwrap();
            assert!(matches!(
                old.append(Epoch(1), Bytes::from_static(b"b")).await,
                Err(WalError::Fenced {
                    attempted: 1,
                    current: 2
                })
            ));
            assert_eq!(
                new.append(Epoch(2), Bytes::from_static(b"c"))
                    .await
                    .unwrap(),
                1
            );
            let rs = new.read_from(0, 10).await.unwrap();
            assert_eq!(rs.len(), 2);
            assert_eq!(&rs[1].payload[..], b"c");
            // Truncation drops whole files: the active one stays readable.
            new.truncate_before(1).await.unwrap();
            assert_eq!(new.read_from(1, 10).await.unwrap().len(), 1);
            assert_eq!(new.next_offset().await, 2);
            assert_eq!(new.epoch().await, Epoch(2));

            assert!(store.state("../etc".into()).await.is_err());
        });
    }
}
