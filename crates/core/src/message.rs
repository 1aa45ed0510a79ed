//! The messages a shard writes to its WAL. Each payload starts with a format version
//! byte; the body is postcard. Decoding refuses unknown versions and trailing bytes.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::batch::{Batch, Pk};
use crate::ids::{PartitionId, SegmentId};
use crate::tso::Timestamp;

pub const MESSAGE_VERSION: u8 = 1;

/// One mutation of a vchannel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WalMessage {
    /// Rows appended to a growing segment; all carry `ts`.
    Insert {
        ts: Timestamp,
        partition: PartitionId,
        segment: SegmentId,
        batch: Batch,
    },
    /// Keys deleted at `ts` (rows inserted before `ts` disappear).
    Delete { ts: Timestamp, pks: Vec<Pk> },
    /// Delete-then-insert of the batch's keys at one timestamp.
    Upsert {
        ts: Timestamp,
        partition: PartitionId,
        segment: SegmentId,
        batch: Batch,
    },
}

impl WalMessage {
    pub fn ts(&self) -> Timestamp {
        match self {
            WalMessage::Insert { ts, .. }
            | WalMessage::Delete { ts, .. }
            | WalMessage::Upsert { ts, .. } => *ts,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MessageError {
    #[error("empty WAL message")]
    Empty,
    #[error("unsupported WAL message version {0} (this build reads version {MESSAGE_VERSION})")]
    UnknownVersion(u8),
    #[error("undecodable WAL message: {0}")]
    Body(String),
}

pub fn encode(msg: &WalMessage) -> Vec<u8> {
    let mut out = vec![MESSAGE_VERSION];
    postcard::to_io(msg, &mut out).expect("in-memory serialization cannot fail");
    out
}

pub fn decode(bytes: &[u8]) -> Result<WalMessage, MessageError> {
    let (&v, body) = bytes.split_first().ok_or(MessageError::Empty)?;
    if v != MESSAGE_VERSION {
        return Err(MessageError::UnknownVersion(v));
    }
    let (msg, rest) =
        postcard::take_from_bytes(body).map_err(|e| MessageError::Body(e.to_string()))?;
    if !rest.is_empty() {
        return Err(MessageError::Body(format!("{} trailing bytes", rest.len())));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::batch;

    #[test]
    fn roundtrip_and_version_check() {
        let m = WalMessage::Insert {
            ts: Timestamp(9),
            partition: PartitionId(1),
            segment: SegmentId(2),
            batch: batch(&[1, 2]),
        };
        let mut b = encode(&m);
        assert_eq!(decode(&b).unwrap(), m);
        b[0] = 7;
        assert_eq!(decode(&b), Err(MessageError::UnknownVersion(7)));
        assert_eq!(decode(&[]), Err(MessageError::Empty));
        assert!(decode(&[MESSAGE_VERSION, 0xff, 0xff]).is_err());
    }
}
