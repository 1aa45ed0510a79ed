//! The write-ahead log: one log per pchannel, kept in local files ([`LocalWal`]) or in
//! object storage ([`ObjectWal`]), shared by the vchannels (shards) mapped to it
//! ([`pchannel`]). A streaming node appends every mutation here before acknowledging
//! it; recovery replays the tail after the last flush
//! checkpoint. Appends carry the owner's fencing epoch: once a newer owner has claimed
//! the log, an append under an older epoch is refused, so at most one writer appends
//! per epoch.

mod local;
mod mem;
pub mod object;
pub mod pchannel;
pub mod record;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error_kind::ErrorKind;

pub use local::{
    check_local_wal, check_local_wal_from, repair_local_wal, FsyncPolicy, LocalWal,
    LocalWalOptions, WalCheck, WalDamage, WalRepair,
};
pub use mem::MemWal;
pub use object::{ObjectWal, ObjectWalOptions};
pub use pchannel::{SharedLog, VchannelWal};
pub use record::{FrameError, WalRecord};

/// Position of a record in a log; dense, starting at 0 (one vchannel's records in a
/// shared log are sparse).
pub type Offset = u64;

/// A writer's fencing epoch; a new owner of a pchannel takes a larger one.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Epoch(pub u64);

#[derive(Debug, Error)]
pub enum WalError {
    #[error("append under epoch {attempted} refused: the log is fenced at epoch {current}")]
    Fenced { attempted: u64, current: u64 },
    #[error("offset {requested} was truncated; the log starts at {first}")]
    Truncated { requested: Offset, first: Offset },
    #[error("record of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("WAL I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("WAL is unusable after an earlier I/O failure; reopen it to recover")]
    Broken,
    #[error("corrupt WAL {location}: {source}")]
    Corrupt {
        location: String,
        #[source]
        source: FrameError,
    },
}

impl WalError {
    /// What the caller should do: a newer owner holds the log
    /// ([`ErrorKind::NotOwner`]), the record is over the size limit
    /// ([`ErrorKind::InvalidInput`]), or the log is in a state this writer cannot
    /// trust (every other failure: [`ErrorKind::NeedsReopen`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            WalError::Fenced { .. } => ErrorKind::NotOwner,
            WalError::TooLarge { .. } => ErrorKind::InvalidInput,
            WalError::Truncated { .. }
            | WalError::Io(_)
            | WalError::Broken
            | WalError::Corrupt { .. } => ErrorKind::NeedsReopen,
        }
    }

    /// Whether the stored log is damaged (a checksum, format or gap error): reopening
    /// or retrying will not help, only a repair. I/O errors are not damage.
    pub fn is_damage(&self) -> bool {
        matches!(self, WalError::Corrupt { .. })
    }
}

/// One log (a pchannel's), or one vchannel's view of it ([`VchannelWal`]).
#[async_trait]
pub trait Wal: Send + Sync + std::fmt::Debug {
    /// Claims the log for `epoch`. Fails with [`WalError::Fenced`] if a newer epoch
    /// already holds it; afterwards appends under older epochs are refused.
    async fn fence(&self, epoch: Epoch) -> Result<(), WalError>;

    /// Appends one record under `epoch` and returns its offset once it is durable
    /// under the log's fsync policy. An epoch newer than the current one claims the
    /// log first, as [`Wal::fence`] would.
    async fn append(&self, epoch: Epoch, payload: Bytes) -> Result<Offset, WalError>;

    /// Up to `max` records starting at `from`, in order.
    async fn read_from(&self, from: Offset, max: usize) -> Result<Vec<WalRecord>, WalError>;

    /// Allows the log to drop records before `offset` (they are checkpointed).
    async fn truncate_before(&self, offset: Offset) -> Result<(), WalError>;

    /// The offset the next append will get: one past the last record whose append
    /// completed. Offsets below it are never handed out again, so a vchannel with no
    /// record in flight may take it as its checkpoint.
    async fn next_offset(&self) -> Offset;

    /// The oldest offset still readable.
    async fn first_offset(&self) -> Offset;

    /// The epoch currently holding the log.
    async fn epoch(&self) -> Epoch;

    /// Makes every record appended so far durable, whatever the fsync policy. A flush
    /// calls it before committing a checkpoint, so that the log never ends before a
    /// committed checkpoint (that is only ever a lost file: see [`FrameError::Missing`]).
    async fn sync(&self) -> Result<(), WalError> {
        Ok(())
    }

    /// Records `checkpoint` as what a vchannel opening under it still needs, before it
    /// appends anything (a shared log must not drop it on another vchannel's behalf).
    async fn pin(&self, _checkpoint: Offset) -> Result<(), WalError> {
        Ok(())
    }

    /// The checkpoint of a vchannel that never flushed: the start of its own log, or
    /// the current end of a shared one (nothing before it is the vchannel's), made
    /// durable first (a checkpoint beyond the log's durable end reads as a lost file).
    async fn fresh_checkpoint(&self) -> Result<Offset, WalError> {
        Ok(0)
    }

    /// Where the log is, for error messages.
    fn location(&self) -> String {
        "the WAL".to_string()
    }
}

/// Largest payload a record may carry.
pub const MAX_RECORD_BYTES: usize = 256 << 20;

#[cfg(test)]
pub(crate) mod contract {
    use super::*;

    /// Behaviour every backend shares.
    pub async fn check(wal: &dyn Wal) {
        wal.fence(Epoch(1)).await.unwrap();
        for i in 0..10u8 {
            assert_eq!(
                wal.append(Epoch(1), Bytes::from(vec![i; i as usize + 1]))
                    .await
                    .unwrap(),
                i as u64
            );
        }
        let rs = wal.read_from(3, 4).await.unwrap();
        assert_eq!(
            rs.iter().map(|r| r.offset).collect::<Vec<_>>(),
            [3, 4, 5, 6]
        );
        assert_eq!(rs[0].payload.as_ref(), &[3u8; 4]);
        assert_eq!(rs[0].epoch, Epoch(1));

        wal.append(Epoch(2), Bytes::from_static(b"new owner"))
            .await
            .unwrap();
        assert!(matches!(
            wal.append(Epoch(1), Bytes::from_static(b"stale")).await,
            Err(WalError::Fenced {
                attempted: 1,
                current: 2
            })
        ));
        assert!(matches!(
            wal.fence(Epoch(1)).await,
            Err(WalError::Fenced { .. })
        ));
        assert_eq!(wal.epoch().await, Epoch(2));
        assert_eq!(wal.next_offset().await, 11);

        wal.truncate_before(5).await.unwrap();
        let first = wal.first_offset().await;
        assert!(first <= 5);
        assert_eq!(wal.read_from(5, 100).await.unwrap().len(), 6);
        if first > 0 {
            assert!(matches!(
                wal.read_from(0, 1).await,
                Err(WalError::Truncated { .. })
            ));
        }
    }
}
