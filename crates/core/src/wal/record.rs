//! The on-disk frame of one WAL record.
//!
//! ```text
//! magic   u16  "QW" (0x5157), little-endian like every field
//! version u8   1
//! flags   u8   0 (reserved; non-zero is rejected)
//! len     u32  payload length
//! epoch   u64  the writer's fencing epoch
//! offset  u64  the record's position in the log
//! crc     u32  CRC-32 (IEEE) over version..offset and the payload
//! payload len bytes
//! ```

use bytes::Bytes;
use thiserror::Error;

use super::{Epoch, Offset, MAX_RECORD_BYTES};

pub const MAGIC: u16 = 0x5157;
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 28;

/// One record of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    pub offset: Offset,
    pub epoch: Epoch,
    pub payload: Bytes,
}

/// Why bytes are not a valid frame.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum FrameError {
    #[error("incomplete frame: need {needed} bytes, have {have}")]
    Incomplete { needed: usize, have: usize },
    #[error("bad magic {0:#06x}")]
    BadMagic(u16),
    #[error("unsupported WAL frame version {0} (this build reads version {VERSION})")]
    UnknownVersion(u8),
    #[error("unsupported frame flags {0:#04x}")]
    UnknownFlags(u8),
    #[error("frame length {0} exceeds the limit")]
    TooLong(u32),
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum { stored: u32, computed: u32 },
    /// A segment file starts after where the one before it ended.
    #[error("records {expected}..{found} are missing (a segment file is gone)")]
    Gap { expected: u64, found: u64 },
    /// A block of an object-storage log whose parts disagree (its header and its
    /// records, or its place in the log).
    #[error("inconsistent WAL block: {0}")]
    Block(String),
    /// A record of a pchannel log whose envelope (vchannel tag or tick) is malformed.
    #[error("bad pchannel record: {0}")]
    Envelope(String),
    /// The log does not reach back to (or up to) the flush checkpoint `needed`, from
    /// which recovery must replay: a WAL file is missing. Records after the checkpoint
    /// that were in it are gone, and how many is unknown.
    #[error(
        "replay must start at record {needed} (the flush checkpoint) but the log holds only \
         records {first}..{next}: a WAL file is missing, and any acknowledged records after \
         the checkpoint that were in it are lost"
    )]
    Missing { needed: u64, first: u64, next: u64 },
}

fn crc(header_tail: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(header_tail);
    h.update(payload);
    h.finalize()
}

/// Appends the frame of a record to `out`.
pub fn encode(offset: Offset, epoch: Epoch, payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.push(VERSION);
    out.push(0);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&epoch.0.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    let c = crc(&out[start + 2..start + 24], payload);
    out.extend_from_slice(&c.to_le_bytes());
    out.extend_from_slice(payload);
}

pub(crate) fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}
pub(crate) fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

/// Decodes the frame at the start of `buf`; returns the record and the bytes used.
pub fn decode(buf: &[u8]) -> Result<(WalRecord, usize), FrameError> {
    if buf.len() < HEADER_LEN {
        return Err(FrameError::Incomplete {
            needed: HEADER_LEN,
            have: buf.len(),
        });
    }
    let magic = u16::from_le_bytes([buf[0], buf[1]]);
    if magic != MAGIC {
        return Err(FrameError::BadMagic(magic));
    }
    if buf[2] != VERSION {
        return Err(FrameError::UnknownVersion(buf[2]));
    }
    if buf[3] != 0 {
        return Err(FrameError::UnknownFlags(buf[3]));
    }
    let len = u32_at(buf, 4);
    if len as usize > MAX_RECORD_BYTES {
        return Err(FrameError::TooLong(len));
    }
    let total = HEADER_LEN + len as usize;
    if buf.len() < total {
        return Err(FrameError::Incomplete {
            needed: total,
            have: buf.len(),
        });
    }
    let stored = u32_at(buf, 24);
    let payload = &buf[HEADER_LEN..total];
    let computed = crc(&buf[2..24], payload);
    if stored != computed {
        return Err(FrameError::Checksum { stored, computed });
    }
    Ok((
        WalRecord {
            offset: u64_at(buf, 16),
            epoch: Epoch(u64_at(buf, 8)),
            payload: Bytes::copy_from_slice(payload),
        },
        total,
    ))
}

/// Decodes every frame in `buf`, stopping at the first invalid one. Returns the
/// records, the length of the valid prefix, and the error that stopped it (if any).
pub fn decode_all(buf: &[u8]) -> (Vec<WalRecord>, usize, Option<FrameError>) {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        match decode(&buf[pos..]) {
            Ok((r, n)) => {
                out.push(r);
                pos += n;
            }
            Err(e) => return (out, pos, Some(e)),
        }
    }
    (out, pos, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn roundtrip(offset: u64, epoch: u64, payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut buf = Vec::new();
            encode(offset, Epoch(epoch), &payload, &mut buf);
            let (r, n) = decode(&buf).unwrap();
            prop_assert_eq!(n, buf.len());
            prop_assert_eq!(r.offset, offset);
            prop_assert_eq!(r.epoch, Epoch(epoch));
            prop_assert_eq!(r.payload.as_ref(), &payload[..]);
        }

        #[test]
        fn any_single_bit_flip_is_detected(payload in proptest::collection::vec(any::<u8>(), 1..100), bit in 0usize..1000) {
            let mut buf = Vec::new();
            encode(7, Epoch(3), &payload, &mut buf);
            let bit = bit % (buf.len() * 8);
            buf[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode(&buf).is_err());
        }

        #[test]
        fn every_truncation_is_incomplete(payload in proptest::collection::vec(any::<u8>(), 0..100), cut in 0usize..200) {
            let mut buf = Vec::new();
            encode(1, Epoch(1), &payload, &mut buf);
            let cut = cut % buf.len();
            let is_incomplete = matches!(decode(&buf[..cut]), Err(FrameError::Incomplete { .. }));
            prop_assert!(is_incomplete);
        }
    }

    #[test]
    fn unknown_version_is_named() {
        let mut buf = Vec::new();
        encode(0, Epoch(0), b"x", &mut buf);
        buf[2] = 9;
        assert_eq!(decode(&buf).unwrap_err(), FrameError::UnknownVersion(9));
        assert!(FrameError::UnknownVersion(9)
            .to_string()
            .contains("unsupported WAL frame version 9"));
    }
}
