//! IVF_FLAT and IVF_SQ8: parameters, the coarse quantizer with its validated lists, and
//! the rows or codes in list order.

use super::codec::{mul, zero_padding_f32, Reader, Writer};
use super::sq8::{read_sq8, write_sq8};
use crate::distance::Space;
use crate::error::AnnError;
use crate::hnsw::MAX_ROWS;
use crate::ivf::{Coarse, IvfFlat, IvfParams, MAX_NLIST};
use crate::sq8::IvfSq8;

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

pub(super) fn write_ivf_flat(w: &mut Writer, x: &IvfFlat) {
    w.space(&x.space);
    w.u64(x.n as u64);
    write_ivf_params(w, &x.params);
    write_coarse(w, &x.coarse);
    w.f32s(x.vectors.as_f32());
}

pub(super) fn read_ivf_flat(r: &mut Reader<'_>) -> Result<IvfFlat, AnnError> {
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

pub(super) fn write_ivf_sq8(w: &mut Writer, x: &IvfSq8) {
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

pub(super) fn read_ivf_sq8(r: &mut Reader<'_>) -> Result<IvfSq8, AnnError> {
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
