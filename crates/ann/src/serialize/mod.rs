//! The byte format of every index, for object storage.
//!
//! ```text
//! 0   b"QANN"
//! 4   format version   u16 LE
//! 6   index kind       u16 LE (see IndexKind::code)
//! 8   body             little-endian scalars and arrays
//! end CRC-32 (crc32fast) of everything before it, u32 LE
//! ```
//!
//! Every array is written as a u64 element count followed by the elements, and both the
//! count and the elements start on an 8-byte boundary (zero padding), so a loader could
//! map the arrays in place. The body starts with the space (metric code u32, dim u32);
//! the rest is per kind, in the order of the `write_*` functions of its module. Rows are stored
//! prepared (COSINE rows normalized) and padded to the padded dimension.
//!
//! `from_bytes` refuses bad magic, version, kind, length or checksum with an
//! [`AnnError`], and never panics or over-allocates on hostile input: every count is
//! checked against the bytes that remain before anything is allocated, and every
//! neighbour id, list offset and row id is validated before a search can follow it.
//!
//! Modules: `codec` (the framing: writer, reader, header and trailer checks), and one
//! per index kind: `flat`, `hnsw`, `sq8` (the quantizer and HNSW_SQ8) and `ivf`
//! (IVF_FLAT and IVF_SQ8). This module holds the entry points and the fuzz target.

mod codec;
mod flat;
mod hnsw;
mod ivf;
mod sq8;
#[cfg(test)]
mod tests;

use crate::bitset::Bitset;
use crate::error::AnnError;
use crate::flat::FlatIndex;
use crate::hnsw::Hnsw;
use crate::index::{AnnIndex, IndexKind, SearchParams};
use crate::ivf::IvfFlat;
use crate::sq8::{HnswSq8, IvfSq8};

use codec::{open, Writer};
use flat::{read_flat, write_flat};
use hnsw::{read_hnsw, write_hnsw};
use ivf::{read_ivf_flat, read_ivf_sq8, write_ivf_flat, write_ivf_sq8};
use sq8::{read_hnsw_sq8, write_hnsw_sq8};

/// The four magic bytes every serialized index starts with.
pub const MAGIC: [u8; 4] = *b"QANN";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;

impl AnnIndex {
    /// Serializes the index (format in the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(self.kind());
        match self {
            AnnIndex::Flat(x) => write_flat(&mut w, x),
            AnnIndex::Hnsw(x) => write_hnsw(&mut w, x),
            AnnIndex::HnswSq8(x) => write_hnsw_sq8(&mut w, x),
            AnnIndex::IvfFlat(x) => write_ivf_flat(&mut w, x),
            AnnIndex::IvfSq8(x) => write_ivf_sq8(&mut w, x),
        }
        w.finish()
    }

    /// Decodes bytes written by [`AnnIndex::to_bytes`]; anything else is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<AnnIndex, AnnError> {
        let (kind, mut r) = open(bytes)?;
        let index = match kind {
            IndexKind::Flat => AnnIndex::Flat(read_flat(&mut r)?),
            IndexKind::Hnsw => AnnIndex::Hnsw(read_hnsw(&mut r)?),
            IndexKind::HnswSq8 => AnnIndex::HnswSq8(read_hnsw_sq8(&mut r)?),
            IndexKind::IvfFlat => AnnIndex::IvfFlat(read_ivf_flat(&mut r)?),
            IndexKind::IvfSq8 => AnnIndex::IvfSq8(read_ivf_sq8(&mut r)?),
        };
        r.finish()?;
        Ok(index)
    }
}

macro_rules! typed_bytes {
    ($ty:ty, $variant:ident, $write:ident) => {
        impl $ty {
            /// Serializes this index (see [`crate::serialize`] for the format).
            pub fn to_bytes(&self) -> Vec<u8> {
                let mut w = Writer::new(IndexKind::$variant);
                $write(&mut w, self);
                w.finish()
            }

            /// Decodes bytes written by `to_bytes` for this kind; anything else is refused.
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, AnnError> {
                match AnnIndex::from_bytes(bytes)? {
                    AnnIndex::$variant(x) => Ok(x),
                    other => Err(AnnError::WrongKind {
                        expected: IndexKind::$variant.code(),
                        found: other.kind().code(),
                    }),
                }
            }
        }
    };
}

typed_bytes!(FlatIndex, Flat, write_flat);
typed_bytes!(Hnsw, Hnsw, write_hnsw);
typed_bytes!(HnswSq8, HnswSq8, write_hnsw_sq8);
typed_bytes!(IvfFlat, IvfFlat, write_ivf_flat);
typed_bytes!(IvfSq8, IvfSq8, write_ivf_sq8);

/// Fuzz entry point: decodes arbitrary bytes; whatever decodes must survive a small
/// search (plain and filtered) and re-encode to bytes that decode to the same encoding.
pub fn fuzz(data: &[u8]) {
    let Ok(index) = AnnIndex::from_bytes(data) else {
        return;
    };
    let q: Vec<f32> = (0..index.dim())
        .map(|i| (i % 7) as f32 * 0.25 - 0.5)
        .collect();
    let params = SearchParams {
        ef: Some(16),
        nprobe: Some(4),
        rerank: Some(8),
        refine_k: None,
    };
    let hits = index.search(&q, 3, &params, None);
    assert!(hits.len() <= 3 && hits.iter().all(|h| (h.0 as usize) < index.len()));
    let allowed = Bitset::from_fn(index.len(), |i| i % 3 == 0);
    let hits = index.search(&q, 3, &params, Some(&allowed));
    assert!(hits.iter().all(|h| h.0 % 3 == 0));
    let again = index.to_bytes();
    let back = AnnIndex::from_bytes(&again).expect("a re-encoded index decodes");
    assert_eq!(back.to_bytes(), again, "re-encoding is not stable");
}
