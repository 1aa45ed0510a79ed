//! The object format of one block of an object-storage log.
//!
//! A block is one object, written once with a conditional create. It holds a batch of
//! records framed exactly as the local log frames them ([`crate::wal::record`]), after
//! a header:
//!
//! ```text
//! magic        u16  "QB" (0x4251), little-endian like every field
//! version      u8   1
//! kind         u8   0 = data, 1 = fence
//! count        u32  records in the block (0 for a fence)
//! epoch        u64  the writer's fencing epoch
//! first_offset u64  offset of the first record (of the next record, for a fence)
//! body_len     u32  bytes of framed records after the header
//! crc          u32  CRC-32 (IEEE) over version..body_len and the body
//! ```
//!
//! A fence is a header alone: it claims its block number for a new owner, so the old
//! owner's next conditional put there fails, and it carries where the log ends.

use bytes::Bytes;

use crate::wal::record::{self, u32_at, u64_at, FrameError, WalRecord};
use crate::wal::{Epoch, Offset};

pub const MAGIC: u16 = 0x4251;
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 32;

/// What a block is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Data,
    Fence,
}

/// A block's header: enough to place it in the log without reading its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub count: u32,
    pub epoch: Epoch,
    pub first_offset: Offset,
    pub body_len: u32,
}

impl Header {
    /// The offset after the block's last record.
    pub fn end_offset(&self) -> Offset {
        self.first_offset + self.count as u64
    }
}

fn crc(header_tail: &[u8], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(header_tail);
    h.update(body);
    h.finalize()
}

fn header_bytes(h: &Header, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.push(VERSION);
    out.push(match h.kind {
        Kind::Data => 0,
        Kind::Fence => 1,
    });
    out.extend_from_slice(&h.count.to_le_bytes());
    out.extend_from_slice(&h.epoch.0.to_le_bytes());
    out.extend_from_slice(&h.first_offset.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    let c = crc(&out[2..28], body);
    out.extend_from_slice(&c.to_le_bytes());
    out
}

/// A data block holding `payloads` as records `first_offset..`, all under `epoch`.
pub fn encode_data(epoch: Epoch, first_offset: Offset, payloads: &[Bytes]) -> Bytes {
    let mut body = Vec::with_capacity(payloads.iter().map(|p| p.len() + 28).sum());
    for (i, p) in payloads.iter().enumerate() {
        record::encode(first_offset + i as u64, epoch, p, &mut body);
    }
    let h = Header {
        kind: Kind::Data,
        count: payloads.len() as u32,
        epoch,
        first_offset,
        body_len: body.len() as u32,
    };
    let mut out = header_bytes(&h, &body);
    out.extend_from_slice(&body);
    Bytes::from(out)
}

/// A fence: claims its block number for `epoch`; the log's next record is `next`.
pub fn encode_fence(epoch: Epoch, next: Offset) -> Bytes {
    let h = Header {
        kind: Kind::Fence,
        count: 0,
        epoch,
        first_offset: next,
        body_len: 0,
    };
    Bytes::from(header_bytes(&h, &[]))
}

/// Reads a header from the first [`HEADER_LEN`] bytes of a block. Its checksum covers
/// the body too, so it is verified by [`decode`], not here.
pub fn decode_header(buf: &[u8]) -> Result<Header, FrameError> {
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
    let kind = match buf[3] {
        0 => Kind::Data,
        1 => Kind::Fence,
        k => return Err(FrameError::UnknownFlags(k)),
    };
    let h = Header {
        kind,
        count: u32_at(buf, 4),
        epoch: Epoch(u64_at(buf, 8)),
        first_offset: u64_at(buf, 16),
        body_len: u32_at(buf, 24),
    };
    if h.kind == Kind::Fence && (h.count != 0 || h.body_len != 0) {
        return Err(FrameError::Block("a fence with records".into()));
    }
    Ok(h)
}

/// Decodes a whole block: its header, checksum, and every record, which must be
/// `count` records numbered from `first_offset` under the block's epoch.
pub fn decode(buf: &[u8]) -> Result<(Header, Vec<WalRecord>), FrameError> {
    let h = decode_header(buf)?;
    let total = HEADER_LEN + h.body_len as usize;
    if buf.len() != total {
        return Err(FrameError::Incomplete {
            needed: total,
            have: buf.len(),
        });
    }
    let body = &buf[HEADER_LEN..];
    let (stored, computed) = (u32_at(buf, 28), crc(&buf[2..28], body));
    if stored != computed {
        return Err(FrameError::Checksum { stored, computed });
    }
    let (records, used, err) = record::decode_all(body);
    if let Some(e) = err {
        return Err(e);
    }
    debug_assert_eq!(used, body.len());
    if records.len() != h.count as usize {
        return Err(FrameError::Block(format!(
            "header says {} records, body holds {}",
            h.count,
            records.len()
        )));
    }
    for (i, r) in records.iter().enumerate() {
        if r.offset != h.first_offset + i as u64 || r.epoch != h.epoch {
            return Err(FrameError::Block(format!(
                "record {i} is offset {} epoch {}, expected offset {} epoch {}",
                r.offset,
                r.epoch.0,
                h.first_offset + i as u64,
                h.epoch.0
            )));
        }
    }
    Ok((h, records))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn payloads(v: &[Vec<u8>]) -> Vec<Bytes> {
        v.iter().map(|p| Bytes::from(p.clone())).collect()
    }

    proptest! {
        #[test]
        fn roundtrip(epoch: u64, first in 0u64..1 << 40,
                     ps in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..20)) {
            let buf = encode_data(Epoch(epoch), first, &payloads(&ps));
            let (h, rs) = decode(&buf).unwrap();
            prop_assert_eq!(h.kind, Kind::Data);
            prop_assert_eq!(h.end_offset(), first + ps.len() as u64);
            prop_assert_eq!(decode_header(&buf[..HEADER_LEN]).unwrap(), h);
            for (i, r) in rs.iter().enumerate() {
                prop_assert_eq!(r.offset, first + i as u64);
                prop_assert_eq!(r.payload.as_ref(), &ps[i][..]);
            }
        }

        #[test]
        fn any_bit_flip_or_cut_is_refused(ps in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..32), 1..6),
                                          bit in 0usize..4096, cut in 0usize..4096) {
            let buf = encode_data(Epoch(3), 10, &payloads(&ps)).to_vec();
            let mut flipped = buf.clone();
            let bit = bit % (buf.len() * 8);
            flipped[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode(&flipped).is_err());
            let cut = cut % buf.len();
            prop_assert!(decode(&buf[..cut]).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&b);
            let _ = decode_header(&b);
        }
    }

    #[test]
    fn a_fence_is_a_header_that_says_where_the_log_ends() {
        let f = encode_fence(Epoch(7), 42);
        assert_eq!(f.len(), HEADER_LEN);
        let (h, rs) = decode(&f).unwrap();
        assert_eq!(
            (h.kind, h.epoch, h.first_offset, h.end_offset()),
            (Kind::Fence, Epoch(7), 42, 42)
        );
        assert!(rs.is_empty());
    }

    #[test]
    fn a_record_under_another_epoch_is_refused() {
        let mut body = Vec::new();
        record::encode(5, Epoch(1), b"x", &mut body);
        let h = Header {
            kind: Kind::Data,
            count: 1,
            epoch: Epoch(2),
            first_offset: 5,
            body_len: body.len() as u32,
        };
        let mut buf = header_bytes(&h, &body);
        buf.extend_from_slice(&body);
        assert!(matches!(decode(&buf), Err(FrameError::Block(_))));
    }
}
