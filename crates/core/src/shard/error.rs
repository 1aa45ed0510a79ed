//! What can go wrong on a shard, and what the caller should do about it: the error
//! types of the data path ([`ShardError`]), of the node a handed-off segment lives on
//! ([`RemoteError`]), and their [`ErrorKind`] classification.

use thiserror::Error;

use crate::batch::BatchError;
use crate::error_kind::ErrorKind;
use crate::ids::SegmentId;
use crate::message::MessageError;
use crate::meta::MetaError;
use crate::segment::format::FormatError;
use crate::segment::storage::StorageError;
use crate::tso::TsoError;
use crate::wal::{Offset, WalError};

#[derive(Debug, Error)]
pub enum ShardError {
    #[error(transparent)]
    Invalid(#[from] BatchError),
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    Tso(#[from] TsoError),
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("WAL record {offset}: {source}")]
    Message {
        offset: Offset,
        #[source]
        source: MessageError,
    },
    #[error("row {row} of segment {segment} is not served by this shard")]
    UnknownRow { segment: SegmentId, row: u32 },
    #[error("shard manifest at {key:?}: {source}")]
    Manifest {
        key: String,
        #[source]
        source: FormatError,
    },
    /// The meta store failed while committing a flush: the manifest may or may not
    /// have changed. This copy's state can no longer be trusted to match it; the
    /// shard must be reopened (under a new epoch) from what is durable.
    #[error("flush commit of shard {vchannel} has an unknown outcome: {source}")]
    CommitUnknown {
        vchannel: String,
        #[source]
        source: MetaError,
    },
    /// This copy of the shard was retired (a flush commit's outcome is unknown, or a
    /// newer owner claimed the manifest): nothing more runs on it; the operation did
    /// not happen.
    #[error("this copy of shard {vchannel} is retired; reopen the shard")]
    Retired { vchannel: String },
    /// Another owner (a newer epoch) has claimed the shard: this one must stop.
    #[error(
        "shard {vchannel} now belongs to a newer owner (epoch {current}; this one has {mine})"
    )]
    NotOwner {
        vchannel: String,
        mine: u64,
        current: u64,
    },
    /// A read waited for the shard's safe timestamp to reach its guarantee and it did
    /// not (no time tick of the pchannel succeeded in time).
    #[error(
        "shard {vchannel} is not caught up: safe timestamp {tsafe} did not reach {wanted} in time"
    )]
    TsafeLag {
        vchannel: String,
        wanted: u64,
        tsafe: u64,
    },
    /// A mutation is durable and applied, but a delete could not reach the node
    /// serving a handed-off segment and taking the segment back failed too: the
    /// mutation was not acknowledged. Shown as the error that stopped it.
    #[error(transparent)]
    Unacknowledged(Box<ShardError>),
}

impl ShardError {
    /// What the caller should do about this error (see [`ErrorKind`]). The API layer
    /// maps errors to status codes by this, never by their text.
    ///
    /// - [`ErrorKind::InvalidInput`]: a batch that does not fit the schema, a record
    ///   over the WAL's size limit.
    /// - [`ErrorKind::NotOwner`]: a newer owner claimed the shard or the WAL, or this
    ///   copy is retired ([`ShardError::is_fenced`]).
    /// - [`ErrorKind::NeedsReopen`]: any other WAL failure, or a flush commit with an
    ///   unknown outcome.
    /// - [`ErrorKind::Retriable`]: the timestamp oracle, the meta store or object
    ///   storage failed transiently; nothing took effect.
    /// - [`ErrorKind::UnknownOutcome`]: a mutation durable but not acknowledged
    ///   ([`ShardError::Unacknowledged`]).
    /// - [`ErrorKind::Internal`]: corrupt stored data or a reference to a row that
    ///   does not exist.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ShardError::Invalid(_) => ErrorKind::InvalidInput,
            ShardError::Wal(w) => w.kind(),
            ShardError::NotOwner { .. } | ShardError::Retired { .. } => ErrorKind::NotOwner,
            ShardError::CommitUnknown { .. } => ErrorKind::NeedsReopen,
            // A shard asks the oracle only before anything durable happens.
            ShardError::Tso(_) | ShardError::TsafeLag { .. } => ErrorKind::Retriable,
            ShardError::Meta(m) => m.kind(),
            ShardError::Storage(s) => storage_kind(s),
            ShardError::Message { .. }
            | ShardError::UnknownRow { .. }
            | ShardError::Manifest { .. } => ErrorKind::Internal,
            ShardError::Unacknowledged(_) => ErrorKind::UnknownOutcome,
        }
    }

    /// Whether stored data of the shard is damaged — a WAL, manifest or segment object
    /// that fails its checksum or format, a missing segment object, a WAL record that
    /// does not decode — so that neither retrying nor reopening helps, only a repair.
    /// A transient failure of a store (I/O, unavailable) is not damage.
    pub fn is_damage(&self) -> bool {
        match self {
            ShardError::Wal(w) => w.is_damage(),
            ShardError::Manifest { .. } | ShardError::Message { .. } => true,
            ShardError::Storage(s) => storage_damage(s),
            _ => false,
        }
    }

    /// Whether this copy of the shard must be closed and the shard reopened from what
    /// is durable: it lost ownership, its WAL failed, or a flush commit's outcome is
    /// unknown.
    pub fn needs_reopen(&self) -> bool {
        matches!(self.kind(), ErrorKind::NotOwner | ErrorKind::NeedsReopen)
    }

    /// Whether the shard has a newer owner (this copy must be closed; the operation
    /// did not happen).
    pub fn is_fenced(&self) -> bool {
        self.kind() == ErrorKind::NotOwner
    }
}

fn storage_kind(e: &StorageError) -> ErrorKind {
    match e {
        StorageError::Store { .. } => ErrorKind::Retriable,
        StorageError::Format { .. } | StorageError::Inconsistent { .. } => ErrorKind::Internal,
    }
}

/// A missing object named by a committed manifest is damage (objects are written
/// before the manifest that names them commits); any other store error is transient.
fn storage_damage(e: &StorageError) -> bool {
    match e {
        StorageError::Store { source, .. } => {
            matches!(source, object_store::Error::NotFound { .. })
        }
        StorageError::Format { .. } | StorageError::Inconsistent { .. } => true,
    }
}

/// Why the node serving (or about to serve) a shard's handed-off segments did not do
/// what was asked. Shown as the reason alone.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RemoteError {
    /// No node is there to ask, or it could not be reached: the request may not have
    /// arrived.
    #[error("{0}")]
    Unavailable(String),
    /// The node answered and refused.
    #[error("{0}")]
    Refused(String),
}

impl RemoteError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            RemoteError::Unavailable(_) => ErrorKind::Retriable,
            RemoteError::Refused(_) => ErrorKind::Internal,
        }
    }
}
