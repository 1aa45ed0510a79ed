//! The integer form of SQ8 distances HNSW_SQ8 walks its graph with: a 16-bit query
//! table whose dot product with a row's codes is one integer kernel call
//! ([`crate::distance::Kernels::sq8_idot`]), and the oracle around it.

use quiver_core::search::distance::Metric;

use super::Sq8;
use crate::distance::Sq8IntDotKernel;
use crate::hnsw::Oracle;
use crate::util::prefetch_lines;

/// Largest magnitude of an integer query table entry.
const TABLE_MAX: i16 = 16_383;

impl Sq8 {
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

/// Integer SQ8 distances (smaller is better) for the graph walk of HNSW_SQ8.
pub(crate) struct Sq8IntOracle<'a> {
    pub(super) l2: bool,
    pub(super) table: &'a [i16],
    pub(super) alpha: f32,
    pub(super) bias: f32,
    /// Per-row L2 terms (empty for IP/COSINE).
    pub(super) row_sq: &'a [f32],
    pub(super) codes: &'a [u8],
    pub(super) stride: usize,
    pub(super) kernel: Sq8IntDotKernel,
    pub(super) lines: usize,
    pub(super) ahead: usize,
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
