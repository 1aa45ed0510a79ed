//! The SQ8 quantizer (shared with IVF_SQ8) and HNSW_SQ8: the HNSW body, the quantizer
//! and the codes (the per-row L2 terms are derived on load, never stored).

use super::codec::{mul, Reader, Writer};
use super::hnsw::{read_hnsw, write_hnsw};
use crate::distance::Space;
use crate::error::AnnError;
use crate::sq8::{HnswSq8, Sq8};

pub(super) fn write_sq8(w: &mut Writer, sq: &Sq8) {
    w.f32s(&sq.min);
    w.f32s(&sq.scale);
}

pub(super) fn read_sq8(r: &mut Reader<'_>, space: &Space) -> Result<Sq8, AnnError> {
    let (dim, dimp) = (space.dim(), space.padded_dim());
    let mut min = r.f32s(dimp)?;
    let mut scale = r.f32s(dimp)?;
    min[dim..].fill(0.0);
    scale[dim..].fill(0.0);
    Ok(Sq8 { min, scale })
}

pub(super) fn write_hnsw_sq8(w: &mut Writer, x: &HnswSq8) {
    write_hnsw(w, &x.hnsw);
    write_sq8(w, &x.sq);
    w.bytes(x.codes.as_bytes());
}

pub(super) fn read_hnsw_sq8(r: &mut Reader<'_>) -> Result<HnswSq8, AnnError> {
    let hnsw = read_hnsw(r)?;
    let sq = read_sq8(r, &hnsw.space)?;
    let codes = r.aligned_bytes(mul(hnsw.n, hnsw.space.padded_dim())?)?;
    Ok(HnswSq8::from_parts(hnsw, sq, codes))
}
