//! What a caller should do about an error, independent of which layer raised it: the
//! classification the API layer maps to status codes (instead of matching on error
//! text). Each error type of the data path says its kind with a `kind()` method:
//! [`ShardError::kind`](crate::shard::ShardError::kind),
//! [`WalError::kind`](crate::wal::WalError::kind),
//! [`MetaError::kind`](crate::meta::MetaError::kind),
//! [`TsoError::kind`](crate::tso::TsoError::kind) and
//! [`RemoteError::kind`](crate::shard::RemoteError::kind).

/// The caller's next step after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ErrorKind {
    /// The request is wrong (does not fit the schema, too large): it did not happen,
    /// and sending it again will fail again.
    InvalidInput,
    /// This copy is not (or no longer) the owner: a newer epoch claimed the shard, the
    /// WAL or the timestamp window. The operation did not happen; this copy must stop
    /// and the request go to the current owner.
    NotOwner,
    /// A transient failure (a store or service unavailable, an I/O error) before
    /// anything took effect: the same request may succeed later.
    Retriable,
    /// This copy's durable state can no longer be trusted to match its memory (its WAL
    /// failed, a flush commit's outcome is unknown): close it and reopen from what is
    /// durable. The operation's outcome is unknown.
    NeedsReopen,
    /// The operation may have taken effect though it was not acknowledged; the copy
    /// itself is fine. Retrying a non-idempotent request may apply it twice.
    UnknownOutcome,
    /// Corrupt stored data or a broken internal expectation: neither retrying nor
    /// reopening is known to help.
    Internal,
}
