//! FLAT: exact search over every row, the reference the approximate indexes are measured
//! against (and the exact scan they fall back to when a filter is selective enough that
//! scanning the allowed rows is cheaper than a walk; see [`crate::hnsw::hnsw_prefers_exact`]).

use quiver_core::search::distance::Metric;

use crate::bitset::Bitset;
use crate::distance::Space;
use crate::error::AnnError;
use crate::hnsw::MAX_ROWS;
use crate::util::{AlignedBuf, KBest};

/// Rows in `data` for dimension `dim`, checking the shape.
pub(crate) fn check_rows(data: &[f32], dim: usize) -> Result<usize, AnnError> {
    if dim == 0 || !data.len().is_multiple_of(dim) {
        return Err(AnnError::InvalidParam(format!(
            "data length {} is not a multiple of the dimension {dim}",
            data.len()
        )));
    }
    let n = data.len() / dim;
    if n > MAX_ROWS {
        return Err(AnnError::InvalidParam(format!(
            "{n} rows is more than one index holds ({MAX_ROWS})"
        )));
    }
    Ok(n)
}

/// Exact top-`k` of prepared query `q` over `rows` (ascending ids below `n`) of a padded
/// block; (row id, distance), best first, ties by id.
pub(crate) fn brute_force_rows(
    space: &Space,
    q: &[f32],
    data: &[f32],
    n: usize,
    k: usize,
    rows: impl IntoIterator<Item = usize>,
) -> Vec<(u32, f32)> {
    let stride = space.padded_dim();
    let kern = space.kernel();
    let mut top = KBest::new(k);
    for r in rows {
        if r >= n {
            break;
        }
        let d = kern(q, &data[r * stride..(r + 1) * stride]);
        if d <= top.worst() {
            top.push(d, r as u32);
        }
    }
    top.into_pairs()
}

/// Exact search over all rows.
#[derive(Debug, Clone)]
pub struct FlatIndex {
    pub(crate) space: Space,
    pub(crate) n: usize,
    pub(crate) vectors: AlignedBuf,
}

impl FlatIndex {
    /// Holds `data` (row-major, `data.len() / dim` rows; row id = position).
    pub fn build(metric: Metric, dim: usize, data: &[f32]) -> Result<FlatIndex, AnnError> {
        let space = Space::new(metric, dim)?;
        let n = check_rows(data, dim)?;
        Ok(FlatIndex {
            space,
            n,
            vectors: space.load_rows(data),
        })
    }

    /// The exact `k` nearest rows (optionally only those `filter` accepts) as (row id,
    /// distance), best first, ties by row id.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(u32, f32)> {
        match filter {
            None => self.search_rows(query, k, 0..self.n),
            Some(f) => self.search_rows(query, k, (0..self.n).filter(|&r| f(r as u32))),
        }
    }

    /// Exact search over the rows set in `allowed` only (rows past its end are not
    /// allowed): the bitset's words are walked directly (a word per 64 rows), not a
    /// closure called for every row of the index.
    pub fn search_allowed(&self, query: &[f32], k: usize, allowed: &Bitset) -> Vec<(u32, f32)> {
        self.search_rows(query, k, allowed.iter_ones())
    }

    /// Exact search over `rows` (ascending; those past the index end the scan).
    fn search_rows(
        &self,
        query: &[f32],
        k: usize,
        rows: impl IntoIterator<Item = usize>,
    ) -> Vec<(u32, f32)> {
        if self.n == 0 || k == 0 {
            return Vec::new();
        }
        let q = self.space.prepare(query);
        brute_force_rows(&self.space, &q, self.vectors.as_f32(), self.n, k, rows)
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn space(&self) -> &Space {
        &self.space
    }

    /// Heap bytes of the structure, vectors included.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.vectors.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exact_neighbours_in_milvus_order() {
        let data = [0.0, 0.0, 1.0, 0.0, 0.0, 2.0, 5.0, 5.0];
        let f = FlatIndex::build(Metric::L2, 2, &data).unwrap();
        let r = f.search(&[0.9, 0.0], 2, None);
        assert_eq!(r.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 0]);
        assert!((r[0].1 - 0.01).abs() < 1e-5 && (r[1].1 - 0.81).abs() < 1e-5);
        let only_even = |r: u32| r.is_multiple_of(2);
        let r = f.search(&[0.9, 0.0], 2, Some(&only_even));
        assert_eq!(r.iter().map(|x| x.0).collect::<Vec<_>>(), vec![0, 2]);
        // The bitset form gives the same answer; rows past the index are ignored.
        let even = Bitset::from_fn(9, |i| i % 2 == 0);
        assert_eq!(f.search_allowed(&[0.9, 0.0], 2, &even), r);
        assert!(f.search_allowed(&[0.9, 0.0], 2, &Bitset::new(4)).is_empty());
        let ip = FlatIndex::build(Metric::IP, 2, &data).unwrap();
        let r = ip.search(&[1.0, 1.0], 1, None);
        assert_eq!(r, vec![(3, -10.0)]);
        assert_eq!(ip.space().to_score(r[0].1), 10.0);
    }
}
