//! Errors as Milvus clients expect them — a `Status` inside the response, with the
//! Milvus status code and, for old clients, the legacy error code — and as the roles
//! need them: every [`ApiError`] carries an [`ErrorKind`] saying whose fault it is and
//! what a caller may do about it (Milvus's `merr` keeps a code, a retriable flag and
//! input-versus-system for the same reason). Roles decide by kind, never by matching
//! the text of a reason.

use crate::pb::common::Status;

/// Milvus status codes (`Status.code`).
pub mod code {
    pub const SUCCESS: i32 = 0;
    pub const NOT_READY: i32 = 1;
    /// Milvus's `ErrServiceRequestLimitExceeded`: too many requests queued; retry later.
    pub const REQUEST_LIMIT: i32 = 4;
    pub const INTERNAL: i32 = 5;
    pub const COLLECTION_NOT_FOUND: i32 = 100;
    pub const COLLECTION_NOT_LOADED: i32 = 101;
    pub const ILLEGAL_SCHEMA: i32 = 105;
    pub const PARTITION_NOT_FOUND: i32 = 200;
    pub const INDEX_NOT_FOUND: i32 = 700;
    /// Milvus's `ErrIndexNotSupported`: here, an index that failed to build for good.
    pub const INDEX_NOT_SUPPORTED: i32 = 701;
    pub const INDEX_DUPLICATE: i32 = 702;
    pub const DATABASE_NOT_FOUND: i32 = 800;
    pub const DATABASE_LIMIT: i32 = 801;
    pub const DATABASE_INVALID_NAME: i32 = 802;
    pub const PARTITION_NOT_LOADED: i32 = 201;
    pub const ALIAS_NOT_FOUND: i32 = 1600;
    pub const ALIAS_NAME_CONFLICT: i32 = 1601;
    pub const ALIAS_ALREADY_EXISTS: i32 = 1602;
    pub const INVALID_PARAMETER: i32 = 1100;
    pub const MISSING_PARAMETER: i32 = 1101;
    pub const FIELD_NOT_FOUND: i32 = 1700;
    /// Milvus's `ErrSegmentLoadFailed` ("segment load failed", not retriable): here, a
    /// collection whose stored data is damaged (see `streaming::damage`).
    pub const SEGMENT_LOAD_FAILED: i32 = 604;
    pub const UNEXPECTED: i32 = 65535;
    /// Milvus's `merr.TimeoutCode`: the request's deadline passed before it finished.
    pub const TIMEOUT: i32 = 10001;
    /// Internal only: the streaming node has not opened this collection (it restarted);
    /// the caller opens it and retries. Never reaches clients.
    pub const NOT_OPEN: i32 = 99;
    /// Internal only: a role could not be reached.
    pub const UNAVAILABLE: i32 = 98;
    /// Internal only: this streaming node does not own the vchannel (any more); the
    /// caller asks the coordinator who does. The request was not executed.
    pub const NOT_OWNER: i32 = 97;
    /// Internal only: this coordinator is a standby; try the other one.
    pub const NOT_LEADER: i32 = 96;
}

/// Whose fault an error is and what the caller may do about it: the kinds the core's
/// typed errors report (`ShardError::kind` and friends), carried by every API error.
pub use quiver_core::error_kind::ErrorKind;

/// A request failed; `code` is the Milvus status code, `kind` what it means.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason} (code {code})")]
pub struct ApiError {
    pub code: i32,
    pub kind: ErrorKind,
    pub reason: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The kind a status code implies when the code alone decides it.
fn kind_of(code: i32) -> ErrorKind {
    match code {
        code::NOT_OWNER => ErrorKind::NotOwner,
        code::UNAVAILABLE
        | code::NOT_OPEN
        | code::NOT_READY
        | code::NOT_LEADER
        | code::REQUEST_LIMIT => ErrorKind::Retriable,
        // A write that ran out of time may still have happened.
        code::TIMEOUT => ErrorKind::UnknownOutcome,
        code::INTERNAL | code::UNEXPECTED => ErrorKind::Internal,
        _ => ErrorKind::InvalidInput,
    }
}

impl ApiError {
    /// An error whose kind follows from its code (input errors for the Milvus codes,
    /// the internal codes as documented on them, system errors otherwise).
    pub fn new(code: i32, reason: impl Into<String>) -> Self {
        Self::with_kind(code, kind_of(code), reason)
    }
    pub fn with_kind(code: i32, kind: ErrorKind, reason: impl Into<String>) -> Self {
        ApiError {
            code,
            kind,
            reason: reason.into(),
        }
    }
    pub fn invalid(reason: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMETER, reason)
    }
    pub fn internal(reason: impl std::fmt::Display) -> Self {
        Self::new(code::UNEXPECTED, reason.to_string())
    }
    /// A role could not be reached (or did not answer): `outcome_known` says whether
    /// the request certainly did not run.
    pub fn unavailable(reason: impl Into<String>, outcome_known: bool) -> Self {
        let kind = if outcome_known {
            ErrorKind::Retriable
        } else {
            ErrorKind::UnknownOutcome
        };
        Self::with_kind(code::UNAVAILABLE, kind, reason)
    }
    /// The request's deadline passed before `what` finished.
    pub fn deadline_exceeded(what: &str) -> Self {
        Self::new(
            code::TIMEOUT,
            format!(
                "context deadline exceeded: {what} did not finish within the request's timeout"
            ),
        )
    }

    /// Whether this is an expired deadline (no role failed: the time ran out).
    pub fn is_deadline(&self) -> bool {
        self.code == code::TIMEOUT
    }

    pub fn collection_not_found(db: &str, name: &str) -> Self {
        Self::new(
            code::COLLECTION_NOT_FOUND,
            format!("can't find collection[database={db}][collection={name}]"),
        )
    }

    /// Whether a client may send the same request again and expect it to work.
    pub fn retriable(&self) -> bool {
        matches!(self.kind, ErrorKind::Retriable | ErrorKind::NotOwner)
    }

    /// The legacy `common.ErrorCode` that goes with a status code.
    fn legacy(&self) -> i32 {
        match self.code {
            code::COLLECTION_NOT_FOUND => 4,
            code::INDEX_NOT_FOUND => 25,
            code::INVALID_PARAMETER | code::MISSING_PARAMETER => 5,
            _ => 1,
        }
    }

    pub fn status(&self) -> Status {
        let mut extra = std::collections::HashMap::new();
        if matches!(
            self.code,
            code::INVALID_PARAMETER | code::MISSING_PARAMETER | code::FIELD_NOT_FOUND
        ) {
            extra.insert("is_input_error".to_string(), "true".to_string());
        }
        Status {
            error_code: self.legacy(),
            reason: self.reason.clone(),
            code: self.code,
            retriable: self.retriable(),
            detail: self.reason.clone(),
            extra_info: extra,
        }
    }
}

pub fn ok_status() -> Status {
    Status::default()
}

impl From<quiver_core::shard::ShardError> for ApiError {
    fn from(e: quiver_core::shard::ShardError) -> Self {
        use quiver_core::shard::ShardError;
        match (e.kind(), e) {
            (_, ShardError::Invalid(b)) => ApiError::invalid(b.to_string()),
            (ErrorKind::NotOwner, e) => ApiError::new(code::NOT_OWNER, e.to_string()),
            (ErrorKind::NeedsReopen, e) => ApiError::with_kind(
                code::UNEXPECTED,
                ErrorKind::NeedsReopen,
                format!("WAL failure: {e}"),
            ),
            (kind, e) => ApiError::with_kind(code::UNEXPECTED, kind, e.to_string()),
        }
    }
}

impl From<quiver_core::rt::LaneError> for ApiError {
    fn from(e: quiver_core::rt::LaneError) -> Self {
        use quiver_core::rt::LaneError;
        match e {
            LaneError::Full { .. } => ApiError::new(code::REQUEST_LIMIT, e.to_string()),
            LaneError::DeadlineExceeded => ApiError::deadline_exceeded("the search"),
        }
    }
}

impl From<quiver_core::meta::MetaError> for ApiError {
    fn from(e: quiver_core::meta::MetaError) -> Self {
        // At this layer a failed meta-store call is usually a catalog write, which may
        // have committed before the store stopped answering (etcd on a timeout): the
        // core's kind (retriable, right for reads) is made an unknown outcome.
        let kind = match e.kind() {
            ErrorKind::Retriable => ErrorKind::UnknownOutcome,
            k => k,
        };
        ApiError::with_kind(code::UNEXPECTED, kind, e.to_string())
    }
}

impl From<quiver_core::tso::TsoError> for ApiError {
    fn from(e: quiver_core::tso::TsoError) -> Self {
        match e {
            quiver_core::tso::TsoError::Meta(m) => m.into(),
            e => ApiError::with_kind(code::UNEXPECTED, e.kind(), e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_codes_and_decide_retriable() {
        assert_eq!(ApiError::invalid("x").kind, ErrorKind::InvalidInput);
        assert!(!ApiError::invalid("x").status().retriable);
        assert_eq!(
            ApiError::new(code::NOT_OWNER, "moved").kind,
            ErrorKind::NotOwner
        );
        assert!(ApiError::new(code::NOT_OWNER, "moved").status().retriable);
        assert!(ApiError::unavailable("down", true).retriable());
        assert!(!ApiError::unavailable("timed out", false).retriable());
        assert_eq!(ApiError::internal("bug").kind, ErrorKind::Internal);
        let full = ApiError::from(quiver_core::rt::LaneError::Full { limit: 3 });
        assert_eq!((full.code, full.retriable()), (code::REQUEST_LIMIT, true));
        assert!(full.reason.starts_with("request limit exceeded[limit=3]"));
        let late = ApiError::from(quiver_core::rt::LaneError::DeadlineExceeded);
        assert_eq!(late.code, code::TIMEOUT);
        assert!(late.is_deadline() && !late.retriable());
    }

    #[test]
    fn shard_errors_keep_their_meaning() {
        use quiver_core::shard::ShardError;
        use quiver_core::wal::WalError;
        let wal = ApiError::from(ShardError::Wal(WalError::Io(std::io::Error::other("disk"))));
        assert_eq!(wal.kind, ErrorKind::NeedsReopen);
        assert!(!wal.retriable());
    }
}
