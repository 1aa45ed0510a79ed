//! Distance kernels and the metric space.
//!
//! Internally every index ranks by a *distance* where smaller is better: squared L2 for
//! `L2`, and the negated inner product for `IP` and `COSINE` (cosine vectors are
//! normalized once when the index is built, queries once per search, so cosine is an
//! inner product). Callers see Milvus scores: [`Space::to_score`] turns a distance back
//! (L2 squared distance ascending, IP/COSINE similarity descending).
//!
//! Hot kernels: f32 squared L2 and dot product, and their SQ8 (u8 code) variants, in
//! three sets: AVX-512 (F+BW, in `avx512`), AVX2+FMA (`avx2`) and a portable
//! 16-accumulator version (`portable`, which serves other CPUs and is the reference in
//! tests). [`kernels`] picks the fastest set this CPU supports once per process, by
//! runtime CPU detection; `QUIVER_ANN_KERNELS=avx2|portable` caps the choice. Every
//! vector an index stores, and every prepared query, is padded with zeros to a multiple
//! of 8 floats ([`Space::padded_dim`]), so the AVX2 loops never run a scalar tail on
//! index data (the AVX-512 ones use a masked tail) and padding never changes a distance.
//!
//! This module owns the kernel types, their selection and [`Space`]; the kernels
//! themselves live in the submodules.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::OnceLock;

use quiver_core::search::distance::Metric;

use crate::error::AnnError;
use crate::util::AlignedBuf;

use portable::neg_dot_portable;
pub use portable::{
    dot_portable, l2_portable, sq8_dot_portable, sq8_idot_portable, sq8_l2_portable,
};

/// Largest supported dimension.
pub const MAX_DIM: usize = 1 << 16;

/// An f32 kernel over two equal-length slices (extra elements of the longer are ignored).
pub type F32Kernel = fn(&[f32], &[f32]) -> f32;
/// SQ8 squared L2: `sum((a[i] - s[i] * c[i])^2)`.
pub type Sq8L2Kernel = fn(&[f32], &[f32], &[u8]) -> f32;
/// SQ8 dot: `sum(w[i] * c[i])`.
pub type Sq8DotKernel = fn(&[f32], &[u8]) -> f32;
/// SQ8 integer dot: `sum(t[i] * c[i])` with a 16-bit query table. The caller keeps
/// `|t[i]| * 255 * len < 2^31` so no lane can overflow.
pub type Sq8IntDotKernel = fn(&[i16], &[u8]) -> i32;

/// One implementation of every hot kernel.
#[derive(Clone, Copy)]
pub struct Kernels {
    pub name: &'static str,
    /// Squared Euclidean distance.
    pub l2: F32Kernel,
    /// Inner product.
    pub dot: F32Kernel,
    /// Negated inner product (the IP/COSINE distance).
    pub neg_dot: F32Kernel,
    pub sq8_l2: Sq8L2Kernel,
    pub sq8_dot: Sq8DotKernel,
    pub sq8_idot: Sq8IntDotKernel,
}

impl fmt::Debug for Kernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kernels({})", self.name)
    }
}

static PORTABLE: Kernels = Kernels {
    name: "portable",
    l2: l2_portable,
    dot: dot_portable,
    neg_dot: neg_dot_portable,
    sq8_l2: sq8_l2_portable,
    sq8_dot: sq8_dot_portable,
    sq8_idot: sq8_idot_portable,
};

/// The portable kernels (what non-AVX2 CPUs use).
pub fn portable_kernels() -> &'static Kernels {
    &PORTABLE
}

/// The AVX2+FMA kernels, if this CPU has both.
pub fn avx2_kernels() -> Option<&'static Kernels> {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return Some(&avx2::AVX2);
        }
    }
    None
}

/// The AVX-512 kernels, if this CPU has AVX-512F and BW as well as AVX2 and FMA.
pub fn avx512_kernels() -> Option<&'static Kernels> {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
        {
            return Some(&avx512::AVX512);
        }
    }
    None
}

/// The fastest kernels this CPU supports, detected once per process. The environment
/// variable `QUIVER_ANN_KERNELS=avx2|portable` caps the choice (for measurements).
pub fn kernels() -> &'static Kernels {
    static SELECTED: OnceLock<&'static Kernels> = OnceLock::new();
    SELECTED.get_or_init(|| {
        let cap = std::env::var("QUIVER_ANN_KERNELS").unwrap_or_default();
        let avx512 = if cap.is_empty() {
            avx512_kernels()
        } else {
            None
        };
        let avx2 = if cap != "portable" {
            avx2_kernels()
        } else {
            None
        };
        avx512.or(avx2).unwrap_or(&PORTABLE)
    })
}

/// Squared Euclidean distance with the selected kernel.
#[inline]
pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    (kernels().l2)(a, b)
}

/// Inner product with the selected kernel.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    (kernels().dot)(a, b)
}

/// Scales `v` to unit length (left alone if its norm is zero or not finite).
pub fn normalize(v: &mut [f32]) {
    let n = dot(v, v).sqrt();
    if n > 0.0 && n.is_finite() {
        let inv = 1.0 / n;
        for x in v.iter_mut() {
            *x *= inv;
        }
    }
}

/// The metric space of an index: metric, dimension, row padding and the distance kernel.
#[derive(Clone, Copy)]
pub struct Space {
    metric: Metric,
    dim: usize,
    dimp: usize,
    kern: F32Kernel,
}

impl fmt::Debug for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Space")
            .field("metric", &self.metric)
            .field("dim", &self.dim)
            .field("padded_dim", &self.dimp)
            .finish()
    }
}

impl PartialEq for Space {
    fn eq(&self, o: &Self) -> bool {
        self.metric == o.metric && self.dim == o.dim
    }
}

impl Space {
    pub fn new(metric: Metric, dim: usize) -> Result<Space, AnnError> {
        if dim == 0 || dim > MAX_DIM {
            return Err(AnnError::InvalidParam(format!(
                "dimension must be in 1..={MAX_DIM}, got {dim}"
            )));
        }
        let k = kernels();
        Ok(Space {
            metric,
            dim,
            dimp: dim.div_ceil(8) * 8,
            kern: if metric == Metric::L2 {
                k.l2
            } else {
                k.neg_dot
            },
        })
    }

    pub fn metric(&self) -> Metric {
        self.metric
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The row stride of stored vectors and prepared queries: `dim` rounded up to 8.
    pub fn padded_dim(&self) -> usize {
        self.dimp
    }

    /// The distance kernel (smaller is better) for prepared vectors.
    pub fn kernel(&self) -> F32Kernel {
        self.kern
    }

    /// The distance (smaller is better) between two prepared vectors.
    #[inline]
    pub fn distance(&self, a: &[f32], b: &[f32]) -> f32 {
        (self.kern)(a, b)
    }

    /// The Milvus score of a distance: squared L2 as is, IP/COSINE similarity negated back.
    #[inline]
    pub fn to_score(&self, distance: f32) -> f32 {
        match self.metric {
            Metric::L2 => distance,
            Metric::IP | Metric::Cosine => -distance,
        }
    }

    /// Prepares a vector for this space into `out`: copied (a longer input is cut, a
    /// shorter one zero-filled; callers validate dimensions), normalized for COSINE,
    /// zero-padded to [`Space::padded_dim`].
    pub fn prepare_into(&self, v: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.resize(self.dimp, 0.0);
        let m = v.len().min(self.dim);
        out[..m].copy_from_slice(&v[..m]);
        if self.metric == Metric::Cosine {
            normalize(&mut out[..self.dim]);
        }
    }

    /// [`Space::prepare_into`] into a new vector.
    pub fn prepare(&self, v: &[f32]) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.dimp);
        self.prepare_into(v, &mut out);
        out
    }

    /// Prepares `data.len() / dim` row-major rows into a padded, aligned block.
    pub(crate) fn load_rows(&self, data: &[f32]) -> AlignedBuf {
        let n = data.len() / self.dim;
        let mut buf = AlignedBuf::zeroed_f32(n * self.dimp);
        let out = buf.as_f32_mut();
        for (dst, src) in out
            .chunks_exact_mut(self.dimp)
            .zip(data.chunks_exact(self.dim))
        {
            dst[..self.dim].copy_from_slice(src);
            if self.metric == Metric::Cosine {
                normalize(&mut dst[..self.dim]);
            }
        }
        buf
    }
}

/// The on-disk code of a metric.
pub(crate) fn metric_code(m: Metric) -> u32 {
    match m {
        Metric::L2 => 0,
        Metric::IP => 1,
        Metric::Cosine => 2,
    }
}

pub(crate) fn metric_from_code(c: u32) -> Option<Metric> {
    match c {
        0 => Some(Metric::L2),
        1 => Some(Metric::IP),
        2 => Some(Metric::Cosine),
        _ => None,
    }
}
