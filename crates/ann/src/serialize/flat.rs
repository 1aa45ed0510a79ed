//! FLAT: the space, the row count and the padded rows.

use super::codec::{mul, zero_padding_f32, Reader, Writer};
use crate::error::AnnError;
use crate::flat::FlatIndex;
use crate::hnsw::MAX_ROWS;

pub(super) fn write_flat(w: &mut Writer, x: &FlatIndex) {
    w.space(&x.space);
    w.u64(x.n as u64);
    w.f32s(x.vectors.as_f32());
}

pub(super) fn read_flat(r: &mut Reader<'_>) -> Result<FlatIndex, AnnError> {
    let space = r.space()?;
    let n = r.bounded(MAX_ROWS, "row count out of range")?;
    let (dim, dimp) = (space.dim(), space.padded_dim());
    let mut vectors = r.aligned_f32s(mul(n, dimp)?)?;
    zero_padding_f32(vectors.as_f32_mut(), dim, dimp);
    Ok(FlatIndex { space, n, vectors })
}
