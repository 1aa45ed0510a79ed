//! HNSW_SQ8: the HNSW graph walked with integer SQ8 distances, then re-ranked exactly.

use quiver_core::search::distance::Metric;

use super::int_kernel::Sq8IntOracle;
use super::{rerank, Sq8};
use crate::bitset::Bitset;
use crate::distance::{kernels, Space};
use crate::error::AnnError;
use crate::hnsw::{prefetch_ahead, prefetch_line_count, Hnsw, HnswParams};
use crate::util::{with_scratch, AlignedBuf};

/// HNSW_SQ8: an HNSW graph traversed with SQ8 distances, re-ranked with exact ones.
#[derive(Debug, Clone)]
pub struct HnswSq8 {
    pub(crate) hnsw: Hnsw,
    pub(crate) sq: Sq8,
    pub(crate) codes: AlignedBuf,
    /// Per-row L2 terms of the integer oracle (empty for IP/COSINE); derived from the
    /// codes, so never serialized.
    pub(crate) row_sq: Vec<f32>,
}

impl HnswSq8 {
    /// Builds the graph on full-precision `data` (see [`Hnsw::build`]), then trains the
    /// quantizer and encodes every row.
    pub fn build(
        metric: Metric,
        dim: usize,
        data: &[f32],
        params: &HnswParams,
        threads: usize,
    ) -> Result<HnswSq8, AnnError> {
        let hnsw = Hnsw::build(metric, dim, data, params, threads)?;
        let dimp = hnsw.space.padded_dim();
        let sq = Sq8::train(hnsw.vectors.as_f32(), dimp, dim);
        let codes = sq.encode_rows(hnsw.vectors.as_f32(), dimp, hnsw.n);
        Ok(HnswSq8::from_parts(hnsw, sq, codes))
    }

    /// Assembles an index from its stored parts, deriving what is not stored.
    pub(crate) fn from_parts(hnsw: Hnsw, sq: Sq8, codes: AlignedBuf) -> HnswSq8 {
        let row_sq = if hnsw.space.metric() == Metric::L2 {
            sq.row_squares(codes.as_bytes(), hnsw.space.padded_dim())
        } else {
            Vec::new()
        };
        HnswSq8 {
            hnsw,
            sq,
            codes,
            row_sq,
        }
    }

    /// The `k` nearest rows: a graph walk of beam `max(ef, rerank, k)` on SQ8 distances,
    /// then exact re-ranking of its best `max(rerank, k)`. (row id, exact distance),
    /// best first. With a `filter`, only rows it accepts are returned.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        rerank_count: usize,
        filter: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(u32, f32)> {
        let h = &self.hnsw;
        if h.n == 0 || k == 0 {
            return Vec::new();
        }
        with_scratch(|s| {
            let mut q = std::mem::take(&mut s.query);
            let mut table = std::mem::take(&mut s.itable);
            h.space.prepare_into(query, &mut q);
            let dimp = h.space.padded_dim();
            let metric = h.space.metric();
            let (alpha, bias) = self.sq.prepare_int_query(&q, metric, &mut table);
            let o = Sq8IntOracle {
                l2: metric == Metric::L2,
                table: &table,
                alpha,
                bias,
                row_sq: &self.row_sq,
                codes: self.codes.as_bytes(),
                stride: dimp,
                kernel: kernels().sq8_idot,
                lines: prefetch_line_count(dimp),
                ahead: prefetch_ahead(dimp),
            };
            let take = rerank_count.max(k);
            let cands = match filter {
                None => h.search_with(&o, ef, take, s),
                Some(f) => h.search_with_filter(&o, ef, take, s, f),
            };
            let out = rerank(&h.space, &q, h.vectors.as_f32(), &cands, k);
            s.query = q;
            s.itable = table;
            out
        })
    }

    /// Search restricted to the rows set in `allowed`, with the same strategy switch as
    /// [`Hnsw::search_filtered`] (the exact scan uses the f32 rows).
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        rerank_count: usize,
        allowed: &Bitset,
        allowed_count: usize,
    ) -> Vec<(u32, f32)> {
        if let Some(done) =
            self.hnsw
                .exact_when_selective(query, k, ef.max(rerank_count), allowed, allowed_count)
        {
            return done;
        }
        let f: &dyn Fn(u32) -> bool = &|r| allowed.get(r as usize);
        self.search(query, k, ef, rerank_count, Some(f))
    }

    pub fn len(&self) -> usize {
        self.hnsw.n
    }

    pub fn is_empty(&self) -> bool {
        self.hnsw.n == 0
    }

    pub fn space(&self) -> &Space {
        &self.hnsw.space
    }

    pub fn params(&self) -> HnswParams {
        self.hnsw.params()
    }

    /// Heap bytes of the structure: graph, f32 rows and codes.
    pub fn memory_bytes(&self) -> usize {
        self.hnsw.memory_bytes() + std::mem::size_of::<Self>() - std::mem::size_of::<Hnsw>()
            + self.sq.heap_bytes()
            + self.codes.heap_bytes()
            + self.row_sq.capacity() * 4
    }
}
