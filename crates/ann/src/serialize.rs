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
//! the rest is per kind, in the order of the `write_*` functions below. Rows are stored
//! prepared (COSINE rows normalized) and padded to the padded dimension.
//!
//! `from_bytes` refuses bad magic, version, kind, length or checksum with an
//! [`AnnError`], and never panics or over-allocates on hostile input: every count is
//! checked against the bytes that remain before anything is allocated, and every
//! neighbour id, list offset and row id is validated before a search can follow it.

use crate::bitset::Bitset;
use crate::distance::{metric_code, metric_from_code, Space};
use crate::error::AnnError;
use crate::flat::FlatIndex;
use crate::hnsw::{upper_layout, Hnsw, MAX_LEVEL, MAX_M, MAX_ROWS};
use crate::index::{AnnIndex, IndexKind, SearchParams};
use crate::ivf::{Coarse, IvfFlat, IvfParams, MAX_NLIST};
use crate::sq8::{HnswSq8, IvfSq8, Sq8};
use crate::util::{huge_vec, AlignedBuf};

/// The four magic bytes every serialized index starts with.
pub const MAGIC: [u8; 4] = *b"QANN";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;

const HEADER_LEN: usize = 8;
const TRAILER_LEN: usize = 4;

struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn new(kind: IndexKind) -> Writer {
        let mut buf = Vec::new();
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        buf.extend_from_slice(&kind.code().to_le_bytes());
        Writer { buf }
    }

    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn pad8(&mut self) {
        let pad = (8 - self.buf.len() % 8) % 8;
        self.buf.extend_from_slice(&[0u8; 8][..pad]);
    }

    fn count(&mut self, len: usize) {
        self.pad8();
        self.u64(len as u64);
    }

    fn f32s(&mut self, xs: &[f32]) {
        self.count(xs.len());
        self.buf.reserve(xs.len() * 4);
        for x in xs {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
        self.pad8();
    }

    fn u32s(&mut self, xs: &[u32]) {
        self.count(xs.len());
        self.buf.reserve(xs.len() * 4);
        for x in xs {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
        self.pad8();
    }

    fn bytes(&mut self, xs: &[u8]) {
        self.count(xs.len());
        self.buf.extend_from_slice(xs);
        self.pad8();
    }

    fn space(&mut self, s: &Space) {
        self.u32(metric_code(s.metric()));
        self.u32(s.dim() as u32);
    }

    fn finish(mut self) -> Vec<u8> {
        self.pad8();
        let crc = crc32fast::hash(&self.buf);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.buf
    }
}

struct Reader<'a> {
    /// Header and body, without the trailer.
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], AnnError> {
        let end = self.pos.checked_add(n).ok_or(AnnError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(AnnError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, AnnError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, AnnError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A u64 that must be at most `max`.
    fn bounded(&mut self, max: usize, what: &'static str) -> Result<usize, AnnError> {
        let v = self.u64()?;
        if v > max as u64 {
            return Err(AnnError::Corrupt(what));
        }
        Ok(v as usize)
    }

    fn pad8(&mut self) -> Result<(), AnnError> {
        let pad = (8 - self.pos % 8) % 8;
        self.take(pad).map(|_| ())
    }

    /// Reads an array header that must announce `expected` elements of `elem` bytes, and
    /// returns the element bytes (checked against what remains before any allocation).
    fn array(&mut self, expected: usize, elem: usize) -> Result<&'a [u8], AnnError> {
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

    fn f32s(&mut self, expected: usize) -> Result<Vec<f32>, AnnError> {
        let raw = self.array(expected, 4)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    fn aligned_f32s(&mut self, expected: usize) -> Result<AlignedBuf, AnnError> {
        let raw = self.array(expected, 4)?;
        let mut out = AlignedBuf::zeroed(raw.len());
        for (x, c) in out.as_f32_mut().iter_mut().zip(raw.chunks_exact(4)) {
            *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(out)
    }

    fn u32s(&mut self, expected: usize) -> Result<Vec<u32>, AnnError> {
        let raw = self.array(expected, 4)?;
        // Neighbour lists are read at random by every search: see `huge_vec`.
        let mut out = huge_vec(raw.len() / 4, || 0u32);
        for (x, c) in out.iter_mut().zip(raw.chunks_exact(4)) {
            *x = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(out)
    }

    fn bytes(&mut self, expected: usize) -> Result<Vec<u8>, AnnError> {
        Ok(self.array(expected, 1)?.to_vec())
    }

    fn aligned_bytes(&mut self, expected: usize) -> Result<AlignedBuf, AnnError> {
        let raw = self.array(expected, 1)?;
        let mut out = AlignedBuf::zeroed(raw.len());
        out.as_bytes_mut().copy_from_slice(raw);
        Ok(out)
    }

    fn space(&mut self) -> Result<Space, AnnError> {
        let metric = metric_from_code(self.u32()?).ok_or(AnnError::Corrupt("unknown metric"))?;
        let dim = self.u32()? as usize;
        Space::new(metric, dim).map_err(|_| AnnError::Corrupt("dimension out of range"))
    }

    fn finish(mut self) -> Result<(), AnnError> {
        self.pad8()?;
        if self.pos != self.buf.len() {
            return Err(AnnError::Corrupt("trailing bytes after the index"));
        }
        Ok(())
    }
}

/// Checks the header and trailer; returns the kind and a reader at the body.
fn open(bytes: &[u8]) -> Result<(IndexKind, Reader<'_>), AnnError> {
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
fn zero_padding_f32(rows: &mut [f32], dim: usize, dimp: usize) {
    if dim == dimp {
        return;
    }
    for r in rows.chunks_exact_mut(dimp) {
        r[dim..].fill(0.0);
    }
}

fn mul(a: usize, b: usize) -> Result<usize, AnnError> {
    a.checked_mul(b).ok_or(AnnError::Corrupt("size overflow"))
}

// --- FLAT ------------------------------------------------------------------------------

fn write_flat(w: &mut Writer, x: &FlatIndex) {
    w.space(&x.space);
    w.u64(x.n as u64);
    w.f32s(x.vectors.as_f32());
}

fn read_flat(r: &mut Reader<'_>) -> Result<FlatIndex, AnnError> {
    let space = r.space()?;
    let n = r.bounded(MAX_ROWS, "row count out of range")?;
    let (dim, dimp) = (space.dim(), space.padded_dim());
    let mut vectors = r.aligned_f32s(mul(n, dimp)?)?;
    zero_padding_f32(vectors.as_f32_mut(), dim, dimp);
    Ok(FlatIndex { space, n, vectors })
}

// --- HNSW ------------------------------------------------------------------------------

fn write_hnsw(w: &mut Writer, x: &Hnsw) {
    w.space(&x.space);
    w.u64(x.n as u64);
    w.u32(x.m as u32);
    w.u32(x.ef_construction as u32);
    w.u64(x.seed);
    w.u32(x.entry);
    w.u32(x.max_level as u32);
    w.f32s(x.vectors.as_f32());
    w.u32s(&x.links0);
    w.bytes(&x.levels);
    w.u32s(&x.upper);
}

fn read_hnsw(r: &mut Reader<'_>) -> Result<Hnsw, AnnError> {
    let space = r.space()?;
    let n = r.bounded(MAX_ROWS, "row count out of range")?;
    let m = r.u32()? as usize;
    if !(2..=MAX_M).contains(&m) {
        return Err(AnnError::Corrupt("M out of range"));
    }
    let ef_construction = r.u32()? as usize;
    let seed = r.u64()?;
    let entry = r.u32()?;
    let max_level = r.u32()? as usize;
    let (dim, dimp) = (space.dim(), space.padded_dim());
    let mut vectors = r.aligned_f32s(mul(n, dimp)?)?;
    zero_padding_f32(vectors.as_f32_mut(), dim, dimp);
    let w0 = 2 * m + 1;
    let links0 = r.u32s(mul(n, w0)?)?;
    let levels = r.bytes(n)?;
    if levels.iter().any(|&l| usize::from(l) > MAX_LEVEL) {
        return Err(AnnError::Corrupt("node level out of range"));
    }
    let (upper_off, upper_len) =
        upper_layout(&levels, m).ok_or(AnnError::Corrupt("upper levels too large"))?;
    let upper = r.u32s(upper_len)?;

    // Every list a search can follow: counts within capacity, ids below n, and on upper
    // levels only nodes that have that level.
    for row in links0.chunks_exact(w0) {
        let c = row[0] as usize;
        if c > 2 * m {
            return Err(AnnError::Corrupt("level-0 neighbour count out of range"));
        }
        if row[1..=c].iter().any(|&v| v as usize >= n) {
            return Err(AnnError::Corrupt("level-0 neighbour id out of range"));
        }
    }
    for (u, &l) in levels.iter().enumerate() {
        for level in 1..=usize::from(l) {
            let b = upper_off[u] as usize + (level - 1) * (m + 1);
            let c = upper[b] as usize;
            if c > m {
                return Err(AnnError::Corrupt("upper neighbour count out of range"));
            }
            for &v in &upper[b + 1..=b + c] {
                if v as usize >= n || usize::from(levels[v as usize]) < level {
                    return Err(AnnError::Corrupt("upper neighbour id out of range"));
                }
            }
        }
    }
    if n == 0 {
        if entry != 0 || max_level != 0 {
            return Err(AnnError::Corrupt("entry point of an empty graph"));
        }
    } else if entry as usize >= n || usize::from(levels[entry as usize]) != max_level {
        return Err(AnnError::Corrupt("entry point out of range"));
    }
    Ok(Hnsw {
        space,
        n,
        m,
        ef_construction,
        seed,
        vectors,
        links0,
        levels,
        upper_off,
        upper,
        entry,
        max_level,
    })
}

// --- SQ8 -------------------------------------------------------------------------------

fn write_sq8(w: &mut Writer, sq: &Sq8) {
    w.f32s(&sq.min);
    w.f32s(&sq.scale);
}

fn read_sq8(r: &mut Reader<'_>, space: &Space) -> Result<Sq8, AnnError> {
    let (dim, dimp) = (space.dim(), space.padded_dim());
    let mut min = r.f32s(dimp)?;
    let mut scale = r.f32s(dimp)?;
    min[dim..].fill(0.0);
    scale[dim..].fill(0.0);
    Ok(Sq8 { min, scale })
}

fn write_hnsw_sq8(w: &mut Writer, x: &HnswSq8) {
    write_hnsw(w, &x.hnsw);
    write_sq8(w, &x.sq);
    w.bytes(x.codes.as_bytes());
}

fn read_hnsw_sq8(r: &mut Reader<'_>) -> Result<HnswSq8, AnnError> {
    let hnsw = read_hnsw(r)?;
    let sq = read_sq8(r, &hnsw.space)?;
    let codes = r.aligned_bytes(mul(hnsw.n, hnsw.space.padded_dim())?)?;
    Ok(HnswSq8::from_parts(hnsw, sq, codes))
}

// --- IVF -------------------------------------------------------------------------------

fn write_ivf_params(w: &mut Writer, p: &IvfParams) {
    w.u64(p.nlist as u64);
    w.u32(p.iterations as u32);
    w.u32(p.train_per_list as u32);
    w.u64(p.seed);
}

fn read_ivf_params(r: &mut Reader<'_>) -> Result<IvfParams, AnnError> {
    Ok(IvfParams {
        nlist: r.bounded(MAX_NLIST, "nlist out of range")?,
        iterations: r.u32()? as usize,
        train_per_list: r.u32()? as usize,
        seed: r.u64()?,
    })
}

fn write_coarse(w: &mut Writer, c: &Coarse) {
    w.u64(c.nlist as u64);
    w.f32s(c.centroids.as_f32());
    w.u32s(&c.offsets);
    w.u32s(&c.ids);
}

fn read_coarse(r: &mut Reader<'_>, space: &Space, n: usize) -> Result<Coarse, AnnError> {
    let nlist = r.bounded(MAX_NLIST, "nlist out of range")?;
    if nlist > n || (n > 0 && nlist == 0) {
        return Err(AnnError::Corrupt("nlist inconsistent with the row count"));
    }
    let (dim, dimp) = (space.dim(), space.padded_dim());
    let mut centroids = r.aligned_f32s(mul(nlist, dimp)?)?;
    zero_padding_f32(centroids.as_f32_mut(), dim, dimp);
    let offsets = r.u32s(nlist + 1)?;
    if offsets[0] != 0 || offsets.windows(2).any(|w| w[0] > w[1]) || offsets[nlist] as usize != n {
        return Err(AnnError::Corrupt("inverted list offsets"));
    }
    let ids = r.u32s(n)?;
    if ids.iter().any(|&id| id as usize >= n) {
        return Err(AnnError::Corrupt("inverted list row id out of range"));
    }
    Ok(Coarse {
        nlist,
        centroids,
        offsets,
        ids,
    })
}

fn write_ivf_flat(w: &mut Writer, x: &IvfFlat) {
    w.space(&x.space);
    w.u64(x.n as u64);
    write_ivf_params(w, &x.params);
    write_coarse(w, &x.coarse);
    w.f32s(x.vectors.as_f32());
}

fn read_ivf_flat(r: &mut Reader<'_>) -> Result<IvfFlat, AnnError> {
    let space = r.space()?;
    let n = r.bounded(MAX_ROWS, "row count out of range")?;
    let params = read_ivf_params(r)?;
    let coarse = read_coarse(r, &space, n)?;
    let (dim, dimp) = (space.dim(), space.padded_dim());
    let mut vectors = r.aligned_f32s(mul(n, dimp)?)?;
    zero_padding_f32(vectors.as_f32_mut(), dim, dimp);
    Ok(IvfFlat {
        space,
        n,
        params,
        coarse,
        vectors,
    })
}

fn write_ivf_sq8(w: &mut Writer, x: &IvfSq8) {
    w.space(&x.space);
    w.u64(x.n as u64);
    write_ivf_params(w, &x.params);
    write_coarse(w, &x.coarse);
    write_sq8(w, &x.sq);
    w.bytes(x.codes.as_bytes());
    match &x.raw {
        Some(raw) => {
            w.u32(1);
            w.f32s(raw.as_f32());
        }
        None => w.u32(0),
    }
}

fn read_ivf_sq8(r: &mut Reader<'_>) -> Result<IvfSq8, AnnError> {
    let space = r.space()?;
    let n = r.bounded(MAX_ROWS, "row count out of range")?;
    let params = read_ivf_params(r)?;
    let coarse = read_coarse(r, &space, n)?;
    let sq = read_sq8(r, &space)?;
    let (dim, dimp) = (space.dim(), space.padded_dim());
    let codes = r.aligned_bytes(mul(n, dimp)?)?;
    let raw = match r.u32()? {
        0 => None,
        1 => {
            let mut raw = r.aligned_f32s(mul(n, dimp)?)?;
            zero_padding_f32(raw.as_f32_mut(), dim, dimp);
            Some(raw)
        }
        _ => return Err(AnnError::Corrupt("bad refine flag")),
    };
    Ok(IvfSq8 {
        space,
        n,
        params,
        coarse,
        sq,
        codes,
        raw,
    })
}

// --- entry points ----------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hnsw::HnswParams;
    use crate::index::IndexParams;
    use crate::testutil::clustered;
    use quiver_core::rt::Rng;
    use quiver_core::search::distance::Metric;

    fn all_kinds() -> Vec<IndexParams> {
        let h = HnswParams {
            m: 8,
            ef_construction: 40,
            seed: 9,
        };
        let ivf = IvfParams {
            nlist: 6,
            iterations: 4,
            train_per_list: 32,
            seed: 2,
        };
        vec![
            IndexParams::Flat,
            IndexParams::Hnsw(h),
            IndexParams::HnswSq8(h),
            IndexParams::IvfFlat(ivf),
            IndexParams::IvfSq8 { ivf, refine: true },
            IndexParams::IvfSq8 { ivf, refine: false },
        ]
    }

    /// Recomputes the CRC so a mutation reaches the structural checks.
    fn fix_crc(b: &mut [u8]) {
        let end = b.len() - 4;
        let crc = crc32fast::hash(&b[..end]);
        b[end..].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn round_trip_keeps_search_results() {
        let dim = 12; // padded to 16: exercises the padding lanes
        let data = clustered(300, dim, 4);
        let queries = clustered(10, dim, 40);
        let sp = SearchParams {
            ef: Some(32),
            nprobe: Some(3),
            ..SearchParams::default()
        };
        for metric in [Metric::L2, Metric::IP, Metric::Cosine] {
            for p in all_kinds() {
                let idx = AnnIndex::build(&p, metric, dim, &data, 1).unwrap();
                let bytes = idx.to_bytes();
                assert_eq!(&bytes[..4], b"QANN");
                let back = AnnIndex::from_bytes(&bytes).unwrap();
                assert_eq!(back.to_bytes(), bytes);
                assert_eq!(back.kind(), idx.kind());
                assert_eq!(back.memory_bytes(), idx.memory_bytes());
                for q in queries.chunks_exact(dim) {
                    assert_eq!(back.search(q, 5, &sp, None), idx.search(q, 5, &sp, None));
                }
            }
        }
        // Typed round trip, and a typed decode of the wrong kind.
        let h = Hnsw::build(Metric::L2, dim, &data, &HnswParams::default(), 1).unwrap();
        let b = h.to_bytes();
        let h2 = Hnsw::from_bytes(&b).unwrap();
        assert_eq!(h2.links0, h.links0);
        assert!(matches!(
            FlatIndex::from_bytes(&b),
            Err(AnnError::WrongKind { .. })
        ));
        let empty = AnnIndex::build(&IndexParams::autoindex(), Metric::L2, 3, &[], 1).unwrap();
        let e2 = AnnIndex::from_bytes(&empty.to_bytes()).unwrap();
        assert!(e2.is_empty());
    }

    #[test]
    fn corrupt_bytes_are_refused() {
        let data = clustered(200, 8, 1);
        let idx = AnnIndex::build(
            &IndexParams::Hnsw(HnswParams {
                m: 8,
                ef_construction: 32,
                seed: 1,
            }),
            Metric::L2,
            8,
            &data,
            1,
        )
        .unwrap();
        let good = idx.to_bytes();
        assert_eq!(AnnIndex::from_bytes(&[]).err(), Some(AnnError::Truncated));
        assert_eq!(AnnIndex::from_bytes(b"QA").err(), Some(AnnError::Truncated));
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(AnnIndex::from_bytes(&b).err(), Some(AnnError::BadMagic));
        let mut b = good.clone();
        b[4] = 9;
        assert_eq!(
            AnnIndex::from_bytes(&b).err(),
            Some(AnnError::UnsupportedVersion(9))
        );
        let mut b = good.clone();
        b[100] ^= 0x40;
        assert!(matches!(
            AnnIndex::from_bytes(&b),
            Err(AnnError::Checksum { .. })
        ));
        let mut b = good.clone();
        b[6] = 77;
        fix_crc(&mut b);
        assert_eq!(
            AnnIndex::from_bytes(&b).err(),
            Some(AnnError::UnknownKind(77))
        );
        let mut b = good[..good.len() - 40].to_vec();
        fix_crc(&mut b);
        assert!(AnnIndex::from_bytes(&b).is_err());
        // A neighbour id past the end, behind a valid checksum.
        if let AnnIndex::Hnsw(h) = &idx {
            let mut h = h.clone();
            h.links0[0] = 1;
            h.links0[1] = 10_000;
            assert_eq!(
                AnnIndex::from_bytes(&h.to_bytes()).err(),
                Some(AnnError::Corrupt("level-0 neighbour id out of range"))
            );
        }
    }

    #[test]
    fn fuzz_survives_mutations() {
        let data = clustered(60, 5, 2);
        let mut rng = Rng::seed_from_u64(17);
        for p in all_kinds() {
            for metric in [Metric::L2, Metric::Cosine] {
                let good = AnnIndex::build(&p, metric, 5, &data, 1).unwrap().to_bytes();
                fuzz(&good);
                for _ in 0..150 {
                    let mut b = good.clone();
                    for _ in 0..1 + rng.index(4) {
                        let i = rng.index(b.len() - 4);
                        b[i] = match rng.index(4) {
                            0 => 0,
                            1 => 0xff,
                            _ => rng.next_u64() as u8,
                        };
                    }
                    if rng.gen_bool(0.2) {
                        let cut = rng.index(b.len());
                        b.truncate(cut.max(12));
                    }
                    if b.len() >= 12 {
                        fix_crc(&mut b);
                    }
                    fuzz(&b);
                }
            }
        }
        for len in 0..64 {
            let mut b = vec![0u8; len];
            rng.fill_bytes(&mut b);
            fuzz(&b);
        }
    }
}
