//! Errors as Milvus clients expect them: a `Status` inside the response, with the
//! Milvus status code and, for old clients, the legacy error code.

use crate::pb::common::Status;

/// Milvus status codes (`Status.code`).
pub mod code {
    pub const SUCCESS: i32 = 0;
    pub const NOT_READY: i32 = 1;
    pub const INTERNAL: i32 = 5;
    pub const COLLECTION_NOT_FOUND: i32 = 100;
    pub const COLLECTION_NOT_LOADED: i32 = 101;
    pub const ILLEGAL_SCHEMA: i32 = 105;
    pub const PARTITION_NOT_FOUND: i32 = 200;
    pub const INDEX_NOT_FOUND: i32 = 700;
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
    pub const UNEXPECTED: i32 = 65535;
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

/// A request failed; `code` is the Milvus status code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason} (code {code})")]
pub struct ApiError {
    pub code: i32,
    pub reason: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: i32, reason: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.into(),
        }
    }
    pub fn invalid(reason: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMETER, reason)
    }
    pub fn internal(reason: impl std::fmt::Display) -> Self {
        Self::new(code::UNEXPECTED, reason.to_string())
    }
    pub fn collection_not_found(db: &str, name: &str) -> Self {
        Self::new(
            code::COLLECTION_NOT_FOUND,
            format!("can't find collection[database={db}][collection={name}]"),
        )
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
            retriable: false,
            detail: self.reason.clone(),
            extra_info: extra,
        }
    }
}

pub fn ok_status() -> Status {
    Status::default()
}

/// The reason of an error from a shard's WAL, or of a flush whose commit has an
/// unknown outcome, starts with this: the shard must be reopened (its state may no
/// longer match what is durable).
pub const WAL_FAILURE: &str = "WAL failure: ";

impl From<quiver_core::shard::ShardError> for ApiError {
    fn from(e: quiver_core::shard::ShardError) -> Self {
        use quiver_core::shard::ShardError;
        match e {
            ShardError::Invalid(b) => ApiError::invalid(b.to_string()),
            e if e.is_fenced() => ApiError::new(code::NOT_OWNER, e.to_string()),
            ShardError::Wal(w) => ApiError::internal(format!("{WAL_FAILURE}{w}")),
            e @ ShardError::CommitUnknown { .. } => ApiError::internal(format!("{WAL_FAILURE}{e}")),
            other => ApiError::internal(other),
        }
    }
}

impl From<quiver_core::meta::MetaError> for ApiError {
    fn from(e: quiver_core::meta::MetaError) -> Self {
        ApiError::internal(e)
    }
}

impl From<quiver_core::tso::TsoError> for ApiError {
    fn from(e: quiver_core::tso::TsoError) -> Self {
        ApiError::internal(e)
    }
}
