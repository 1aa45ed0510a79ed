//! The framing every serialized index shares: header (magic, version, kind), 8-byte
//! aligned little-endian scalars and counted arrays, and the CRC-32 trailer; the reader
//! checks every count against the bytes that remain before it allocates.

use super::{FORMAT_VERSION, MAGIC};
use crate::distance::{metric_code, metric_from_code, Space};
use crate::error::AnnError;
use crate::index::IndexKind;
use crate::util::{huge_vec, AlignedBuf};

const HEADER_LEN: usize = 8;
const TRAILER_LEN: usize = 4;

pub(super) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(super) fn new(kind: IndexKind) -> Writer {
        let mut buf = Vec::new();
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        buf.extend_from_slice(&kind.code().to_le_bytes());
        Writer { buf }
    }

    pub(super) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(super) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(super) fn pad8(&mut self) {
        let pad = (8 - self.buf.len() % 8) % 8;
        self.buf.extend_from_slice(&[0u8; 8][..pad]);
    }

    pub(super) fn count(&mut self, len: usize) {
        self.pad8();
        self.u64(len as u64);
    }

    pub(super) fn f32s(&mut self, xs: &[f32]) {
        self.count(xs.len());
        self.buf.reserve(xs.len() * 4);
        for x in xs {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
        self.pad8();
    }

    pub(super) fn u32s(&mut self, xs: &[u32]) {
        self.count(xs.len());
        self.buf.reserve(xs.len() * 4);
        for x in xs {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
        self.pad8();
    }

    pub(super) fn bytes(&mut self, xs: &[u8]) {
        self.count(xs.len());
        self.buf.extend_from_slice(xs);
        self.pad8();
    }

    pub(super) fn space(&mut self, s: &Space) {
        self.u32(metric_code(s.metric()));
        self.u32(s.dim() as u32);
    }

    pub(super) fn finish(mut self) -> Vec<u8> {
        self.pad8();
        let crc = crc32fast::hash(&self.buf);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.buf
    }
}

pub(super) struct Reader<'a> {
    /// Header and body, without the trailer.
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], AnnError> {
        let end = self.pos.checked_add(n).ok_or(AnnError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(AnnError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    pub(super) fn u32(&mut self) -> Result<u32, AnnError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(super) fn u64(&mut self) -> Result<u64, AnnError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A u64 that must be at most `max`.
    pub(super) fn bounded(&mut self, max: usize, what: &'static str) -> Result<usize, AnnError> {
        let v = self.u64()?;
        if v > max as u64 {
            return Err(AnnError::Corrupt(what));
        }
        Ok(v as usize)
    }

    pub(super) fn pad8(&mut self) -> Result<(), AnnError> {
        let pad = (8 - self.pos % 8) % 8;
        self.take(pad).map(|_| ())
    }

    /// Reads an array header that must announce `expected` elements of `elem` bytes, and
    /// returns the element bytes (checked against what remains before any allocation).
    pub(super) fn array(&mut self, expected: usize, elem: usize) -> Result<&'a [u8], AnnError> {
        self.pad8()?;
        if self.u64()? != expected as u64 {
            return Err(AnnError::Corrupt("array length does not match the header"));
        }
        let bytes = expected
            .checked_mul(elem)
            .ok_or(AnnError::Corrupt("array too large"))?;
        let data = self.take(bytes)?;
        self.pad8()?;
        Ok(data)
    }

    pub(super) fn f32s(&mut self, expected: usize) -> Result<Vec<f32>, AnnError> {
        let raw = self.array(expected, 4)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    pub(super) fn aligned_f32s(&mut self, expected: usize) -> Result<AlignedBuf, AnnError> {
        let raw = self.array(expected, 4)?;
        let mut out = AlignedBuf::zeroed(raw.len());
        for (x, c) in out.as_f32_mut().iter_mut().zip(raw.chunks_exact(4)) {
            *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(out)
    }

    pub(super) fn u32s(&mut self, expected: usize) -> Result<Vec<u32>, AnnError> {
        let raw = self.array(expected, 4)?;
        // Neighbour lists are read at random by every search: see `huge_vec`.
        let mut out = huge_vec(raw.len() / 4, || 0u32);
        for (x, c) in out.iter_mut().zip(raw.chunks_exact(4)) {
            *x = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(out)
    }

    pub(super) fn bytes(&mut self, expected: usize) -> Result<Vec<u8>, AnnError> {
        Ok(self.array(expected, 1)?.to_vec())
    }

    pub(super) fn aligned_bytes(&mut self, expected: usize) -> Result<AlignedBuf, AnnError> {
        let raw = self.array(expected, 1)?;
        let mut out = AlignedBuf::zeroed(raw.len());
        out.as_bytes_mut().copy_from_slice(raw);
        Ok(out)
    }

    pub(super) fn space(&mut self) -> Result<Space, AnnError> {
        let metric = metric_from_code(self.u32()?).ok_or(AnnError::Corrupt("unknown metric"))?;
        let dim = self.u32()? as usize;
        Space::new(metric, dim).map_err(|_| AnnError::Corrupt("dimension out of range"))
    }

    pub(super) fn finish(mut self) -> Result<(), AnnError> {
        self.pad8()?;
        if self.pos != self.buf.len() {
            return Err(AnnError::Corrupt("trailing bytes after the index"));
        }
        Ok(())
    }
}

/// Checks the header and trailer; returns the kind and a reader at the body.
pub(super) fn open(bytes: &[u8]) -> Result<(IndexKind, Reader<'_>), AnnError> {
    if bytes.len() >= 4 && bytes[..4] != MAGIC {
        return Err(AnnError::BadMagic);
    }
    if bytes.len() < HEADER_LEN + TRAILER_LEN {
        return Err(AnnError::Truncated);
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != FORMAT_VERSION {
        return Err(AnnError::UnsupportedVersion(version));
    }
    let body_end = bytes.len() - TRAILER_LEN;
    let t = &bytes[body_end..];
    let stored = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
    let computed = crc32fast::hash(&bytes[..body_end]);
    if stored != computed {
        return Err(AnnError::Checksum { stored, computed });
    }
    let code = u16::from_le_bytes([bytes[6], bytes[7]]);
    let kind = IndexKind::from_code(code).ok_or(AnnError::UnknownKind(code))?;
    Ok((
        kind,
        Reader {
            buf: &bytes[..body_end],
            pos: HEADER_LEN,
        },
    ))
}

/// Sets the padding lanes of every row to zero (they must not change distances).
pub(super) fn zero_padding_f32(rows: &mut [f32], dim: usize, dimp: usize) {
    if dim == dimp {
        return;
    }
    for r in rows.chunks_exact_mut(dimp) {
        r[dim..].fill(0.0);
    }
}

pub(super) fn mul(a: usize, b: usize) -> Result<usize, AnnError> {
    a.checked_mul(b).ok_or(AnnError::Corrupt("size overflow"))
}
