//! The block objects of one log in an object store: naming, listing, conditional
//! writes with read-back, header reads and deletion.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::block::{self, Header, HEADER_LEN};
use crate::wal::{FrameError, WalError};

/// What a conditional write of a block came to.
pub(super) enum Put {
    /// The block is ours.
    Written(Header),
    /// Another writer's block holds the number.
    Taken(Header),
    /// The put failed and reading back did not settle whether it took effect.
    Unknown(WalError),
}

/// Where a log starts and ends, as listed.
pub(super) struct Found {
    pub first_seq: u64,
    pub first: Header,
    pub last_seq: u64,
    pub last: Header,
}

pub(super) struct Blocks {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

fn io(e: object_store::Error) -> WalError {
    WalError::Io(std::io::Error::other(e))
}

/// How many times a read is tried.
const READ_ATTEMPTS: u32 = 4;

/// Runs a read, trying again after a transient error (S3 answers a 5xx or times out
/// now and then). Reads are idempotent, and a replay of a shared log reads many blocks:
/// without this one failed GET among them fails the whole replay, and the longer a
/// shard stays closed the longer (and likelier to fail) its next replay is.
async fn retried<T, F, Fut>(what: &Path, mut read: F) -> Result<T, object_store::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, object_store::Error>>,
{
    let mut delay = std::time::Duration::from_millis(10);
    let mut attempt = 1;
    loop {
        match read().await {
            Err(e)
                if attempt < READ_ATTEMPTS
                    && !matches!(e, object_store::Error::NotFound { .. }) =>
            {
                tracing::debug!(%what, attempt, error = %e, "WAL read failed; trying again");
                crate::rt::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            r => return r,
        }
    }
}

impl Blocks {
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        Blocks { store, prefix }
    }

    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    pub fn path(&self, seq: u64) -> Path {
        self.prefix.clone().join(format!("{seq:020}"))
    }

    fn corrupt(&self, seq: u64, source: FrameError) -> WalError {
        WalError::Corrupt {
            location: self.path(seq).to_string(),
            source,
        }
    }

    /// The block numbers present, in order; an object that is not a block is damage.
    async fn list(&self) -> Result<Vec<u64>, WalError> {
        let mut seqs = Vec::new();
        let listing = retried(&self.prefix, || async {
            let mut all = Vec::new();
            let mut listing = self.store.list(Some(&self.prefix));
            while let Some(meta) = listing.next().await {
                all.push(meta?);
            }
            Ok(all)
        })
        .await
        .map_err(io)?;
        for meta in listing {
            let name = meta.location.filename().unwrap_or_default();
            match name.parse::<u64>() {
                Ok(seq) if name.len() == 20 => seqs.push(seq),
                _ => {
                    return Err(WalError::Corrupt {
                        location: meta.location.to_string(),
                        source: FrameError::Block("an object that is not a WAL block".into()),
                    })
                }
            }
        }
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// The highest block number present.
    pub async fn last_seq(&self) -> Result<Option<u64>, WalError> {
        Ok(self.list().await?.last().copied())
    }

    /// Lists the log and reads the header of its first live block and the whole last
    /// block. `None` for a log with no blocks.
    ///
    /// The live log is the run of consecutive block numbers that ends at the last
    /// block. Below it lie what truncation left: fences (never deleted, see [`super`])
    /// and blocks that landed late in numbers truncation had freed. A block lost from
    /// the middle of the log therefore makes the log start later; what that costs is
    /// judged against the reader's checkpoint (a read from below the start is
    /// [`WalError::Truncated`], which a shard's recovery turns into damage when it
    /// still owns the log), not here, where a listing racing a truncation could show a
    /// hole that is not one.
    pub async fn scan(&self) -> Result<Option<Found>, WalError> {
        // The owner's truncation may delete the first block between the listing and
        // its read: list again. A block that keeps vanishing is lost.
        for _ in 0..8 {
            if let Some(found) = self.scan_once().await? {
                return Ok(found);
            }
        }
        Err(super::io_error(format!(
            "{}: blocks kept vanishing while the log was listed",
            self.prefix
        )))
    }

    /// One listing; `None` when a listed block was gone by the time it was read.
    async fn scan_once(&self) -> Result<Option<Option<Found>>, WalError> {
        let seqs = self.list().await?;
        let Some(&last_seq) = seqs.last() else {
            return Ok(Some(None));
        };
        let live = (1..seqs.len())
            .rev()
            .find(|&i| seqs[i - 1] + 1 != seqs[i])
            .unwrap_or(0);
        let first_seq = seqs[live];
        let Some((last, _)) = self.read_if_present(last_seq).await? else {
            return Ok(None);
        };
        let first = if first_seq == last_seq {
            last
        } else {
            match self.header_if_present(first_seq).await? {
                Some(h) => h,
                None => return Ok(None),
            }
        };
        Ok(Some(Some(Found {
            first_seq,
            first,
            last_seq,
            last,
        })))
    }

    /// Writes block `seq` unless it exists; see [`Put`].
    pub async fn put(&self, seq: u64, bytes: Bytes) -> Put {
        let mode = if crate::mutation::active("wal-overwrite-block") {
            PutMode::Overwrite
        } else {
            PutMode::Create
        };
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        let path = self.path(seq);
        let err = match self
            .store
            .put_opts(&path, PutPayload::from(bytes.clone()), opts)
            .await
        {
            Ok(_) => return Put::Written(block::decode_header(&bytes).expect("own block")),
            Err(object_store::Error::AlreadyExists { .. }) => None,
            Err(e) => Some(io(e)),
        };
        // Whatever the error said, what is stored now decides.
        match self.store.get(&path).await {
            Ok(got) => match got.bytes().await {
                Ok(stored) if stored == bytes => {
                    Put::Written(block::decode_header(&bytes).expect("own block"))
                }
                Ok(stored) => match block::decode_header(&stored) {
                    Ok(h) => Put::Taken(h),
                    Err(e) => Put::Unknown(self.corrupt(seq, e)),
                },
                Err(e) => Put::Unknown(err.unwrap_or_else(|| io(e))),
            },
            Err(object_store::Error::NotFound { .. }) if err.is_none() => Put::Unknown(
                super::io_error(format!("{path} existed, then vanished while read back")),
            ),
            Err(e) => Put::Unknown(err.unwrap_or_else(|| io(e))),
        }
    }

    /// Whether block `seq` exists.
    pub async fn exists(&self, seq: u64) -> Result<bool, WalError> {
        let path = self.path(seq);
        match retried(&path, || self.store.head(&path)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(io(e)),
        }
    }

    pub fn missing(&self, seq: u64) -> WalError {
        self.corrupt(seq, FrameError::Block(format!("block {seq} is missing")))
    }

    /// The header of block `seq` (a ranged read of its first bytes); `None` if the
    /// block does not exist.
    pub async fn header_if_present(&self, seq: u64) -> Result<Option<Header>, WalError> {
        let path = self.path(seq);
        let got = match retried(&path, || self.store.get_range(&path, 0..HEADER_LEN as u64)).await {
            Ok(b) => b,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        block::decode_header(&got)
            .map(Some)
            .map_err(|e| self.corrupt(seq, e))
    }

    /// The header of block `seq`; a missing block is damage.
    pub async fn header(&self, seq: u64) -> Result<Header, WalError> {
        self.header_if_present(seq)
            .await?
            .ok_or_else(|| self.missing(seq))
    }

    /// Block `seq`, whole and verified; `None` if it does not exist.
    pub async fn read_if_present(
        &self,
        seq: u64,
    ) -> Result<Option<(Header, Vec<crate::wal::WalRecord>)>, WalError> {
        let path = self.path(seq);
        let got = match retried(&path, || async {
            self.store.get(&path).await?.bytes().await
        })
        .await
        {
            Ok(bytes) => bytes,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        block::decode(&got)
            .map(Some)
            .map_err(|e| self.corrupt(seq, e))
    }

    /// Deletes block `seq`; one already gone counts as deleted.
    pub async fn delete(&self, seq: u64) -> Result<(), WalError> {
        match self.store.delete(&self.path(seq)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io(e)),
        }
    }
}

/// The logs under `root`: the names of its immediate sub-folders.
pub async fn list_logs(store: &dyn ObjectStore, root: &Path) -> Result<Vec<String>, WalError> {
    let listed = store.list_with_delimiter(Some(root)).await.map_err(io)?;
    Ok(listed
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(str::to_string))
        .collect())
}

/// Deletes every object of the log under `prefix`. Idempotent: what is already gone
/// counts as removed. Blocks go lowest first, so an interrupted removal leaves a
/// contiguous log (or none).
pub async fn remove_log(store: &dyn ObjectStore, prefix: &Path) -> Result<(), WalError> {
    let mut paths = Vec::new();
    let mut listing = store.list(Some(prefix));
    while let Some(meta) = listing.next().await {
        paths.push(meta.map_err(io)?.location);
    }
    paths.sort();
    for p in paths {
        match store.delete(&p).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(io(e)),
        }
    }
    Ok(())
}
