//! The envelope every segment object in object storage is wrapped in.
//!
//! ```text
//! magic    4 bytes  "QVOB"
//! version  u16 LE   format version (1)
//! kind     u8       1 field binlog, 2 timestamp log, 3 pk stats, 4 delta log,
//!                   5 shard manifest, 6 catalog entry, 7 channel assignment,
//!                   8 leader seat, 9 WAL checkpoint
//! reserved u8       0
//! length   u64 LE   payload length
//! payload  postcard-encoded body of the kind
//! crc      u32 LE   CRC-32 (IEEE) of everything before it
//! ```
//!
//! A reader refuses an object with another magic, a newer version, another kind than
//! it asked for, a length that does not match, or a bad checksum, each with its own
//! error.

use serde::{de::DeserializeOwned, Serialize};
use thiserror::Error;

pub const MAGIC: &[u8; 4] = b"QVOB";
pub const FORMAT_VERSION: u16 = 1;
const HEADER_LEN: usize = 16;

/// What an object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ObjectKind {
    FieldBinlog = 1,
    TimestampLog = 2,
    PkStats = 3,
    DeltaLog = 4,
    /// A shard's manifest in the meta store (same envelope, same guarantees).
    ShardManifest = 5,
    /// A catalog entry (collection metadata) in the meta store.
    CatalogEntry = 6,
    /// Which streaming node owns a vchannel, under which epoch (meta store).
    ChannelAssignment = 7,
    /// Who holds the coordinator's seat (meta store).
    LeaderSeat = 8,
    /// A vchannel's checkpoint in a pchannel log (meta store).
    WalCheckpoint = 9,
}

impl ObjectKind {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => ObjectKind::FieldBinlog,
            2 => ObjectKind::TimestampLog,
            3 => ObjectKind::PkStats,
            4 => ObjectKind::DeltaLog,
            5 => ObjectKind::ShardManifest,
            6 => ObjectKind::CatalogEntry,
            7 => ObjectKind::ChannelAssignment,
            8 => ObjectKind::LeaderSeat,
            9 => ObjectKind::WalCheckpoint,
            _ => return None,
        })
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("object too short ({0} bytes)")]
    TooShort(usize),
    #[error("not a Quiver segment object (bad magic)")]
    BadMagic,
    #[error(
        "unsupported segment object format version {0} (this build reads version {FORMAT_VERSION})"
    )]
    UnknownVersion(u16),
    #[error("unknown object kind {0}")]
    UnknownKind(u8),
    #[error("expected a {expected:?} object, found {found:?}")]
    WrongKind {
        expected: ObjectKind,
        found: ObjectKind,
    },
    #[error("length field says {declared} payload bytes, object holds {actual}")]
    LengthMismatch { declared: u64, actual: u64 },
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum { stored: u32, computed: u32 },
    #[error("undecodable payload: {0}")]
    Payload(String),
}

/// Wraps `body` in an envelope of `kind`.
pub fn encode<T: Serialize>(kind: ObjectKind, body: &T) -> Vec<u8> {
    let payload = postcard::to_allocvec(body).expect("in-memory serialization cannot fail");
    wrap(kind, &payload)
}

/// Wraps an already-encoded payload (used by fuzz targets to reach the body decoders).
pub fn wrap(kind: ObjectKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(kind as u8);
    out.push(0);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks the envelope and returns the payload bytes.
pub fn unwrap(expected: ObjectKind, bytes: &[u8]) -> Result<&[u8], FormatError> {
    if bytes.len() < HEADER_LEN + 4 {
        return Err(FormatError::TooShort(bytes.len()));
    }
    if &bytes[..4] != MAGIC {
        return Err(FormatError::BadMagic);
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != FORMAT_VERSION {
        return Err(FormatError::UnknownVersion(version));
    }
    let found = ObjectKind::from_u8(bytes[6]).ok_or(FormatError::UnknownKind(bytes[6]))?;
    if found != expected {
        return Err(FormatError::WrongKind { expected, found });
    }
    let declared = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let actual = (bytes.len() - HEADER_LEN - 4) as u64;
    if declared != actual {
        return Err(FormatError::LengthMismatch { declared, actual });
    }
    let body_end = bytes.len() - 4;
    let stored = u32::from_le_bytes(bytes[body_end..].try_into().expect("4 bytes"));
    let computed = crc32fast::hash(&bytes[..body_end]);
    if stored != computed {
        return Err(FormatError::Checksum { stored, computed });
    }
    Ok(&bytes[HEADER_LEN..body_end])
}

/// Checks the envelope and decodes its body.
pub fn decode<T: DeserializeOwned>(expected: ObjectKind, bytes: &[u8]) -> Result<T, FormatError> {
    let payload = unwrap(expected, bytes)?;
    let (v, rest) =
        postcard::take_from_bytes(payload).map_err(|e| FormatError::Payload(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FormatError::Payload(format!(
            "{} trailing bytes after the body",
            rest.len()
        )));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn roundtrip_and_named_rejections() {
        let v: Vec<u64> = vec![1, 2, 3];
        let mut b = encode(ObjectKind::TimestampLog, &v);
        assert_eq!(decode::<Vec<u64>>(ObjectKind::TimestampLog, &b).unwrap(), v);
        assert!(matches!(
            decode::<Vec<u64>>(ObjectKind::DeltaLog, &b),
            Err(FormatError::WrongKind { .. })
        ));
        b[4] = 2;
        assert_eq!(
            decode::<Vec<u64>>(ObjectKind::TimestampLog, &b),
            Err(FormatError::UnknownVersion(2))
        );
        b[4] = 1;
        let n = b.len();
        b[n - 6] ^= 1;
        assert!(matches!(
            decode::<Vec<u64>>(ObjectKind::TimestampLog, &b),
            Err(FormatError::Checksum { .. })
        ));
        assert_eq!(
            decode::<Vec<u64>>(ObjectKind::TimestampLog, b"QVOB"),
            Err(FormatError::TooShort(4))
        );
    }

    proptest! {
        #[test]
        fn any_bit_flip_is_rejected(v in proptest::collection::vec(any::<u64>(), 0..50), bit in 0usize..100_000) {
            let mut b = encode(ObjectKind::TimestampLog, &v);
            let bit = bit % (b.len() * 8);
            b[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode::<Vec<u64>>(ObjectKind::TimestampLog, &b).is_err());
        }
    }
}
