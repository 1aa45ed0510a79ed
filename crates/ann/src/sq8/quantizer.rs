//! The SQ8 quantizer: per-dimension training, encoding and decoding, and the SQ8
//! distances from an f32 query table to coded rows (what IVF_SQ8 scans with).

use quiver_core::search::distance::Metric;

use crate::distance::{kernels, Sq8DotKernel, Sq8L2Kernel};
use crate::hnsw::{prefetch_ahead, prefetch_line_count, Oracle};
use crate::util::{prefetch_lines, AlignedBuf};

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
