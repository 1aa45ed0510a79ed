//! SQ8 scalar quantization, and the two indexes that use it: HNSW_SQ8 and IVF_SQ8.
//!
//! Each dimension `d` is mapped linearly from the trained `[min_d, max_d]` to a byte:
//! `x ~ min_d + scale_d * code` with `scale_d = (max_d - min_d) / 255`. Distances are
//! asymmetric (the query stays f32, only the rows are quantized) and are computed on the
//! codes without decoding them:
//! - L2: `|q - x|^2 ~ sum((a_d - scale_d * code_d)^2)` with `a = q - min` per query;
//! - IP/COSINE: `q . x ~ q . min + sum((q_d * scale_d) * code_d)`.
//!
//! HNSW_SQ8 builds its graph on the full-precision vectors (the build costs the same
//! either way, and a graph built on exact distances has better links; the f32 rows are
//! kept anyway for re-ranking). A search walks the graph with SQ8 distances, which read a
//! quarter of the memory per node, then re-ranks its best `rerank` candidates with exact
//! f32 distances and returns the best `k` of those, so the distances it returns are
//! exact. IVF_SQ8 scans SQ8 codes in its lists and re-ranks the same way when it keeps
//! the f32 rows (`refine`, the default), or returns the SQ8 distances when it does not.

use quiver_core::search::distance::Metric;

use crate::bitset::Bitset;
use crate::distance::{kernels, Space, Sq8DotKernel, Sq8IntDotKernel, Sq8L2Kernel};
use crate::error::AnnError;
use crate::flat::check_rows;
use crate::hnsw::{
    for_each_dist, prefer_brute_force, prefetch_ahead, prefetch_line_count, F32Oracle, Hnsw,
    HnswParams, Oracle,
};
use crate::ivf::{check_ivf_params, Coarse, IvfParams};
use crate::util::{prefetch_lines, with_scratch, AlignedBuf, KBest};

/// Per-dimension SQ8 quantizer (arrays of the padded dimension; padding lanes are zero).
#[derive(Debug, Clone, PartialEq)]
pub struct Sq8 {
    pub(crate) min: Vec<f32>,
    pub(crate) scale: Vec<f32>,
}

impl Sq8 {
    /// Trains per-dimension min/max on prepared rows of stride `dimp` (first `dim` used).
    pub fn train(rows: &[f32], dimp: usize, dim: usize) -> Sq8 {
        let mut lo = vec![f32::INFINITY; dim];
        let mut hi = vec![f32::NEG_INFINITY; dim];
        for r in rows.chunks_exact(dimp) {
            for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(&r[..dim]) {
                if x < *l {
                    *l = x;
                }
                if x > *h {
                    *h = x;
                }
            }
        }
        let mut min = vec![0.0; dimp];
        let mut scale = vec![0.0; dimp];
        for (d, (&l, &h)) in lo.iter().zip(&hi).enumerate() {
            if l.is_finite() && h.is_finite() && h >= l {
                min[d] = l;
                scale[d] = (h - l) / 255.0;
            }
        }
        Sq8 { min, scale }
    }

    /// Encodes one prepared row into `out` (same length).
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        for (((c, &x), &m), &s) in out.iter_mut().zip(v).zip(&self.min).zip(&self.scale) {
            *c = if s > 0.0 {
                ((x - m) / s).round().clamp(0.0, 255.0) as u8
            } else {
                0
            };
        }
    }

    /// Decodes one code row into `out` (same length).
    pub fn decode(&self, c: &[u8], out: &mut [f32]) {
        for (((x, &c), &m), &s) in out.iter_mut().zip(c).zip(&self.min).zip(&self.scale) {
            *x = m + s * f32::from(c);
        }
    }

    /// Encodes `n` prepared rows of stride `dimp` into an aligned code block.
    pub(crate) fn encode_rows(&self, rows: &[f32], dimp: usize, n: usize) -> AlignedBuf {
        let mut codes = AlignedBuf::zeroed(n * dimp);
        for (c, r) in codes
            .as_bytes_mut()
            .chunks_exact_mut(dimp)
            .zip(rows.chunks_exact(dimp))
        {
            self.encode(r, c);
        }
        codes
    }

    /// Writes the per-query table for prepared query `q` into `out` and returns the
    /// constant term (see the module docs).
    pub(crate) fn prepare_query(&self, q: &[f32], metric: Metric, out: &mut Vec<f32>) -> f32 {
        out.clear();
        match metric {
            Metric::L2 => {
                out.extend(q.iter().zip(&self.min).map(|(x, m)| x - m));
                0.0
            }
            Metric::IP | Metric::Cosine => {
                out.extend(q.iter().zip(&self.scale).map(|(x, s)| x * s));
                q.iter().zip(&self.min).map(|(x, m)| x * m).sum()
            }
        }
    }

    /// A distance oracle over `codes` (rows of `stride` bytes) for a prepared query table.
    pub(crate) fn oracle<'a>(
        &'a self,
        table: &'a [f32],
        bias: f32,
        codes: &'a [u8],
        stride: usize,
        metric: Metric,
    ) -> Sq8Oracle<'a> {
        let k = kernels();
        Sq8Oracle {
            l2: metric == Metric::L2,
            table,
            scale: &self.scale,
            bias,
            codes,
            stride,
            k_l2: k.sq8_l2,
            k_dot: k.sq8_dot,
            lines: prefetch_line_count(stride),
            ahead: prefetch_ahead(stride),
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        (self.min.capacity() + self.scale.capacity()) * 4
    }

    /// `sum_d (scale_d * code_d)^2` for every coded row: the row's own term of the L2
    /// distance, which the integer oracle adds back (see [`Sq8::prepare_int_query`]).
    pub(crate) fn row_squares(&self, codes: &[u8], stride: usize) -> Vec<f32> {
        codes
            .chunks_exact(stride)
            .map(|c| {
                c.iter()
                    .zip(&self.scale)
                    .map(|(&c, &s)| {
                        let x = s * f32::from(c);
                        x * x
                    })
                    .sum()
            })
            .collect()
    }

    /// The integer form of the query table, for the graph walk of HNSW_SQ8. With the
    /// per-dimension weights `w` (IP/COSINE: `q_d * scale_d`; L2: `(q_d - min_d) *
    /// scale_d`) quantized to `t = round(w / alpha)` in 16 bits, a row's distance is one
    /// integer dot product `T = sum(t_d * code_d)`:
    /// - IP/COSINE: `-(q . min + alpha * T)`;
    /// - L2: `|q - min|^2 - 2 * alpha * T + row_squares[row]`.
    ///
    /// Writes `t` into `out` and returns `(alpha, bias)`, `bias` being the query term.
    ///
    /// `alpha` keeps `|t_d| <= 16383` (so a `vpmaddwd` pair stays below 2^23) and
    /// `255 * sum(|t_d|) < 2^31` (so no partial sum of any row can overflow an i32,
    /// however a kernel splits it): with `|t_d| <= |w_d| / alpha + 1/2`, it is enough
    /// that `alpha >= 255 * sum(|w_d|) / (2^31 - 1 - 128 n)`. For most queries the first
    /// bound decides and the table has its full 15 bits.
    pub(crate) fn prepare_int_query(
        &self,
        q: &[f32],
        metric: Metric,
        out: &mut Vec<i16>,
    ) -> (f32, f32) {
        let l2 = metric == Metric::L2;
        let weight = |d: usize| {
            if l2 {
                (q[d] - self.min[d]) * self.scale[d]
            } else {
                q[d] * self.scale[d]
            }
        };
        let n = q.len().min(self.scale.len());
        let top = (0..n)
            .map(|d| f64::from(weight(d).abs()))
            .fold(0.0, f64::max);
        let sum: f64 = (0..n).map(|d| f64::from(weight(d).abs())).sum();
        let alpha = if top > 0.0 {
            let by_sum = 255.0 * sum / (f64::from(i32::MAX) - 128.0 * n as f64);
            // A hair above both bounds, so rounding cannot reach past them.
            (top / f64::from(TABLE_MAX)).max(by_sum) * (1.0 + 1e-6)
        } else {
            1.0
        };
        out.clear();
        out.extend((0..n).map(|d| {
            (f64::from(weight(d)) / alpha)
                .round()
                .clamp(-f64::from(TABLE_MAX), f64::from(TABLE_MAX)) as i16
        }));
        let alpha = alpha as f32;
        let bias = if l2 {
            (0..n).map(|d| (q[d] - self.min[d]).powi(2)).sum()
        } else {
            (0..n).map(|d| q[d] * self.min[d]).sum()
        };
        (alpha, bias)
    }
}

/// Largest magnitude of an integer query table entry.
const TABLE_MAX: i16 = 16_383;

/// Integer SQ8 distances (smaller is better) for the graph walk of HNSW_SQ8.
pub(crate) struct Sq8IntOracle<'a> {
    l2: bool,
    table: &'a [i16],
    alpha: f32,
    bias: f32,
    /// Per-row L2 terms (empty for IP/COSINE).
    row_sq: &'a [f32],
    codes: &'a [u8],
    stride: usize,
    kernel: Sq8IntDotKernel,
    lines: usize,
    ahead: usize,
}

impl Oracle for Sq8IntOracle<'_> {
    #[inline(always)]
    fn dist(&self, id: u32) -> f32 {
        let o = id as usize * self.stride;
        let dot = (self.kernel)(self.table, &self.codes[o..o + self.stride]) as f32 * self.alpha;
        if self.l2 {
            self.bias - 2.0 * dot + self.row_sq[id as usize]
        } else {
            -(self.bias + dot)
        }
    }

    #[inline(always)]
    fn prefetch(&self, id: u32) {
        let p = self.codes.as_ptr().wrapping_add(id as usize * self.stride);
        prefetch_lines(p, self.lines);
        if self.l2 {
            prefetch_lines(self.row_sq.as_ptr().wrapping_add(id as usize).cast(), 1);
        }
    }

    #[inline(always)]
    fn ahead(&self) -> usize {
        self.ahead
    }
}

/// SQ8 distances (smaller is better) from one query to coded rows.
pub(crate) struct Sq8Oracle<'a> {
    l2: bool,
    table: &'a [f32],
    scale: &'a [f32],
    bias: f32,
    codes: &'a [u8],
    stride: usize,
    k_l2: Sq8L2Kernel,
    k_dot: Sq8DotKernel,
    lines: usize,
    ahead: usize,
}

impl Oracle for Sq8Oracle<'_> {
    #[inline(always)]
    fn dist(&self, id: u32) -> f32 {
        let o = id as usize * self.stride;
        let c = &self.codes[o..o + self.stride];
        if self.l2 {
            (self.k_l2)(self.table, self.scale, c)
        } else {
            -(self.bias + (self.k_dot)(self.table, c))
        }
    }

    #[inline(always)]
    fn prefetch(&self, id: u32) {
        let p = self.codes.as_ptr().wrapping_add(id as usize * self.stride);
        prefetch_lines(p, self.lines);
    }

    #[inline(always)]
    fn ahead(&self) -> usize {
        self.ahead
    }
}

/// Exact re-ranking: the best `k` of `cands` by f32 distance to prepared query `q` over
/// the padded rows `data` (indexed by row id).
pub(crate) fn rerank(
    space: &Space,
    q: &[f32],
    data: &[f32],
    cands: &[(u32, f32)],
    k: usize,
) -> Vec<(u32, f32)> {
    let o = F32Oracle::new(space, q, data);
    let mut top = KBest::new(k);
    for_each_dist(
        &o,
        cands.len(),
        |j| cands[j].0,
        |id, d| {
            if d <= top.worst() {
                top.push(d, id);
            }
        },
    );
    top.into_pairs()
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flat::FlatIndex;
    use crate::hnsw::hnsw_prefers_exact;
    use crate::testutil::{clustered, mean_recall};

    #[test]
    fn codes_round_trip_within_half_a_step() {
        let dim = 12;
        let space = Space::new(Metric::L2, dim).unwrap();
        let data = clustered(300, dim, 1);
        let rows = space.load_rows(&data);
        let dimp = space.padded_dim();
        let sq = Sq8::train(rows.as_f32(), dimp, dim);
        let mut c = vec![0u8; dimp];
        let mut back = vec![0.0f32; dimp];
        for r in rows.as_f32().chunks_exact(dimp) {
            sq.encode(r, &mut c);
            sq.decode(&c, &mut back);
            for d in 0..dim {
                assert!((back[d] - r[d]).abs() <= sq.scale[d] * 0.5 + 1e-4);
            }
        }
        // The oracle agrees with decode-then-exact.
        let q = space.prepare(&data[..dim]);
        let mut table = Vec::new();
        for metric in [Metric::L2, Metric::IP] {
            let sp = Space::new(metric, dim).unwrap();
            let bias = sq.prepare_query(&q, metric, &mut table);
            let codes = sq.encode_rows(rows.as_f32(), dimp, 300);
            let o = sq.oracle(&table, bias, codes.as_bytes(), dimp, metric);
            sq.decode(&codes.as_bytes()[5 * dimp..6 * dimp], &mut back);
            let want = sp.distance(&q, &back);
            assert!((o.dist(5) - want).abs() <= 1e-3 * want.abs().max(1.0));
        }
    }

    #[test]
    fn integer_tables_cannot_overflow_and_match_the_float_oracle() {
        // The worst case for the i32 sums: the widest rows, every weight at the top,
        // every code 255.
        let n = crate::distance::MAX_DIM;
        let sq = Sq8 {
            min: vec![0.0; n],
            scale: vec![1.0; n],
        };
        let mut t = Vec::new();
        let (alpha, _) = sq.prepare_int_query(&vec![1.0; n], Metric::IP, &mut t);
        let bound: i64 = t.iter().map(|&x| i64::from(x).abs() * 255).sum();
        assert!(bound < i64::from(i32::MAX), "{bound}");
        let codes = vec![255u8; n];
        for k in [crate::distance::portable_kernels()]
            .into_iter()
            .chain(crate::distance::avx2_kernels())
            .chain(crate::distance::avx512_kernels())
        {
            assert_eq!(i64::from((k.sq8_idot)(&t, &codes)), bound, "{}", k.name);
        }
        assert!((alpha * bound as f32 / 255.0 - n as f32).abs() / (n as f32) < 0.01);

        // On real rows the integer distances track the float ones closely.
        let dim = 48;
        let data = clustered(200, dim, 3);
        for metric in [Metric::L2, Metric::IP] {
            let space = Space::new(metric, dim).unwrap();
            let rows = space.load_rows(&data);
            let dimp = space.padded_dim();
            let sq = Sq8::train(rows.as_f32(), dimp, dim);
            let codes = sq.encode_rows(rows.as_f32(), dimp, 200);
            let q = space.prepare(&data[dim..2 * dim]);
            let mut table = Vec::new();
            let bias = sq.prepare_query(&q, metric, &mut table);
            let exact = sq.oracle(&table, bias, codes.as_bytes(), dimp, metric);
            let mut itable = Vec::new();
            let (alpha, ibias) = sq.prepare_int_query(&q, metric, &mut itable);
            let row_sq = sq.row_squares(codes.as_bytes(), dimp);
            let o = Sq8IntOracle {
                l2: metric == Metric::L2,
                table: &itable,
                alpha,
                bias: ibias,
                row_sq: if metric == Metric::L2 { &row_sq } else { &[] },
                codes: codes.as_bytes(),
                stride: dimp,
                kernel: crate::distance::kernels().sq8_idot,
                lines: 1,
                ahead: 3,
            };
            // Both forms add a query term (the bias: |q - min|^2 or q.min) to a large
            // row term of the opposite sign, so the error scales with the bias, not
            // with the (possibly tiny) distance.
            let scale = ibias.abs();
            for id in 0..200u32 {
                let (a, b) = (o.dist(id), exact.dist(id));
                let tol = 1e-3 * b.abs().max(scale).max(1.0);
                assert!((a - b).abs() <= tol, "{metric:?} row {id}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn hnsw_sq8_with_rerank_has_high_recall() {
        let (n, dim) = (2000, 32);
        let data = clustered(n, dim, 1);
        let queries = clustered(50, dim, 99);
        for metric in [Metric::L2, Metric::Cosine] {
            let p = HnswParams {
                m: 16,
                ef_construction: 100,
                seed: 5,
            };
            let h = HnswSq8::build(metric, dim, &data, &p, 2).unwrap();
            let flat = FlatIndex::build(metric, dim, &data).unwrap();
            let r = mean_recall(
                queries
                    .chunks_exact(dim)
                    .map(|q| (h.search(q, 10, 64, 40, None), flat.search(q, 10, None))),
            );
            assert!(r >= 0.9, "{metric:?} recall {r}");
            // Re-ranked distances are exact.
            let q = &queries[..dim];
            let got = h.search(q, 3, 64, 40, None);
            let want = flat.search(q, 3, None);
            if got[0].0 == want[0].0 {
                assert!((got[0].1 - want[0].1).abs() <= 1e-4 * want[0].1.abs().max(1.0));
            }
            // Filtered: at this size the cost model scans 25% exactly...
            let allowed = Bitset::from_fn(n, |i| i % 4 == 1);
            let f = |r: u32| allowed.get(r as usize);
            let got = h.search_filtered(q, 10, 64, 40, &allowed, allowed.count_ones());
            assert_eq!(got, flat.search(q, 10, Some(&f)));
            // ...and the SQ8 filtered walk, forced, admits only allowed rows.
            let r = mean_recall(queries.chunks_exact(dim).map(|q| {
                let got = h.search(q, 10, 64, 40, Some(&f));
                assert!(got.iter().all(|x| x.0 % 4 == 1));
                (got, flat.search(q, 10, Some(&f)))
            }));
            assert!(r >= 0.85, "{metric:?} filtered walk recall {r}");
            // Nearly everything allowed: `search_filtered` walks.
            let most = Bitset::from_fn(n, |i| i % 50 != 7);
            assert!(!hnsw_prefers_exact(
                most.count_ones(),
                n,
                10,
                64,
                h.params().m
            ));
            let got = h.search_filtered(q, 10, 64, 40, &most, most.count_ones());
            assert_eq!(got.len(), 10);
            assert!(got.iter().all(|x| x.0 % 50 != 7));
        }
    }

    #[test]
    fn ivf_sq8_recall_with_and_without_refine() {
        let (n, dim) = (1500, 16);
        let data = clustered(n, dim, 3);
        let queries = clustered(30, dim, 31);
        let p = IvfParams {
            nlist: 16,
            iterations: 6,
            train_per_list: 64,
            seed: 1,
        };
        let flat = FlatIndex::build(Metric::L2, dim, &data).unwrap();
        for refine in [true, false] {
            let ivf = IvfSq8::build(Metric::L2, dim, &data, &p, refine, 1).unwrap();
            assert_eq!(ivf.refines(), refine);
            let r = mean_recall(queries.chunks_exact(dim).map(|q| {
                (
                    ivf.search(q, 10, ivf.nlist(), 40, None),
                    flat.search(q, 10, None),
                )
            }));
            let floor = if refine { 0.97 } else { 0.8 };
            assert!(r >= floor, "refine={refine} recall {r}");
        }
    }
}
