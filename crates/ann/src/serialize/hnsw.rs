//! HNSW: parameters, entry point, rows, level-0 links, levels and upper-level links;
//! every list is validated (counts, ids, levels) before a search can follow it.

use super::codec::{mul, zero_padding_f32, Reader, Writer};
use crate::error::AnnError;
use crate::hnsw::{upper_layout, Hnsw, MAX_LEVEL, MAX_M, MAX_ROWS};

pub(super) fn write_hnsw(w: &mut Writer, x: &Hnsw) {
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

pub(super) fn read_hnsw(r: &mut Reader<'_>) -> Result<Hnsw, AnnError> {
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
