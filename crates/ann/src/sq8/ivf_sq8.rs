//! IVF_SQ8: inverted lists of SQ8 codes, re-ranked on the f32 rows when they are kept.

use quiver_core::search::distance::Metric;

use super::{rerank, Sq8};
use crate::bitset::Bitset;
use crate::distance::Space;
use crate::error::AnnError;
use crate::flat::check_rows;
use crate::hnsw::{prefer_brute_force, Oracle};
use crate::ivf::{check_ivf_params, Coarse, IvfParams};
use crate::util::{AlignedBuf, KBest};

/// IVF_SQ8: inverted lists of SQ8 codes, optionally re-ranked on kept f32 rows.
#[derive(Debug, Clone)]
pub struct IvfSq8 {
    pub(crate) space: Space,
    pub(crate) n: usize,
    pub(crate) params: IvfParams,
    pub(crate) coarse: Coarse,
    pub(crate) sq: Sq8,
    /// Codes in list order (position `p` holds row `coarse.ids[p]`).
    pub(crate) codes: AlignedBuf,
    /// Full-precision rows in row order, kept for re-ranking.
    pub(crate) raw: Option<AlignedBuf>,
}

impl IvfSq8 {
    /// Builds over `data` (row-major; row id = position). With `refine`, the f32 rows are
    /// kept and searches re-rank on them.
    pub fn build(
        metric: Metric,
        dim: usize,
        data: &[f32],
        params: &IvfParams,
        refine: bool,
        threads: usize,
    ) -> Result<IvfSq8, AnnError> {
        let space = Space::new(metric, dim)?;
        let n = check_rows(data, dim)?;
        check_ivf_params(params)?;
        let rows = space.load_rows(data);
        let dimp = space.padded_dim();
        let coarse = Coarse::build(&space, rows.as_f32(), n, params, threads);
        let sq = Sq8::train(rows.as_f32(), dimp, dim);
        let mut codes = AlignedBuf::zeroed(n * dimp);
        {
            let src = rows.as_f32();
            for (c, &r) in codes.as_bytes_mut().chunks_exact_mut(dimp).zip(&coarse.ids) {
                let r = r as usize;
                sq.encode(&src[r * dimp..(r + 1) * dimp], c);
            }
        }
        Ok(IvfSq8 {
            space,
            n,
            params: *params,
            coarse,
            sq,
            codes,
            raw: if refine { Some(rows) } else { None },
        })
    }

    /// The `k` nearest rows among the `nprobe` nearest lists: the best `max(rerank, k)`
    /// by SQ8 distance, re-ranked exactly when the f32 rows are kept (else the SQ8
    /// distances are returned). (row id, distance), best first.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        nprobe: usize,
        rerank_count: usize,
        filter: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(u32, f32)> {
        if self.n == 0 || k == 0 {
            return Vec::new();
        }
        let q = self.space.prepare(query);
        let dimp = self.space.padded_dim();
        let mut table = Vec::with_capacity(dimp);
        let bias = self.sq.prepare_query(&q, self.space.metric(), &mut table);
        let o = self.sq.oracle(
            &table,
            bias,
            self.codes.as_bytes(),
            dimp,
            self.space.metric(),
        );
        let lists = self.coarse.probe(&self.space, &q, nprobe.max(1));
        let take = if self.raw.is_some() {
            rerank_count.max(k)
        } else {
            k
        };
        let mut top = KBest::new(take);
        for l in lists {
            for pos in self.coarse.range(l) {
                let id = self.coarse.ids[pos];
                if let Some(f) = filter {
                    if !f(id) {
                        continue;
                    }
                }
                let d = o.dist(pos as u32);
                if d <= top.worst() {
                    top.push(d, id);
                }
            }
        }
        let cands = top.into_pairs();
        match &self.raw {
            Some(raw) => rerank(&self.space, &q, raw.as_f32(), &cands, k),
            None => cands,
        }
    }

    /// Search restricted to the rows set in `allowed`; below the brute-force selectivity
    /// every list is scanned.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        nprobe: usize,
        rerank_count: usize,
        allowed: &Bitset,
        allowed_count: usize,
    ) -> Vec<(u32, f32)> {
        let nprobe = if prefer_brute_force(allowed_count, self.n, k) {
            self.coarse.nlist
        } else {
            nprobe
        };
        let f: &dyn Fn(u32) -> bool = &|r| allowed.get(r as usize);
        self.search(query, k, nprobe, rerank_count, Some(f))
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn nlist(&self) -> usize {
        self.coarse.nlist
    }

    pub fn space(&self) -> &Space {
        &self.space
    }

    pub fn params(&self) -> IvfParams {
        self.params
    }

    /// Whether f32 rows are kept for re-ranking.
    pub fn refines(&self) -> bool {
        self.raw.is_some()
    }

    /// Heap bytes of the structure (codes, lists, and the f32 rows when kept).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.coarse.heap_bytes()
            + self.sq.heap_bytes()
            + self.codes.heap_bytes()
            + self.raw.as_ref().map_or(0, AlignedBuf::heap_bytes)
    }
}
