//! The crate's error type: bad build/search parameters, and every way a serialized index
//! can be refused.

use thiserror::Error;

/// Why an index could not be built or decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AnnError {
    /// A build or search parameter is out of range or malformed.
    #[error("invalid index parameter: {0}")]
    InvalidParam(String),
    /// The bytes do not start with the `QANN` magic.
    #[error("not a Quiver ANN index (bad magic)")]
    BadMagic,
    /// The format version is not one this build can read.
    #[error("unsupported ANN index format version {0}")]
    UnsupportedVersion(u16),
    /// The header names an index kind this build does not know.
    #[error("unknown ANN index kind {0}")]
    UnknownKind(u16),
    /// A typed `from_bytes` was given another kind of index.
    #[error("expected an ANN index of kind {expected}, found kind {found}")]
    WrongKind { expected: u16, found: u16 },
    /// The data ends before the structure it describes.
    #[error("ANN index data is truncated")]
    Truncated,
    /// The CRC-32 trailer does not match the contents.
    #[error("ANN index checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum { stored: u32, computed: u32 },
    /// The checksum matched but the contents are inconsistent.
    #[error("corrupt ANN index: {0}")]
    Corrupt(&'static str),
}
