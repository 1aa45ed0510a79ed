//! Distance kernels and the metric space.
//!
//! Internally every index ranks by a *distance* where smaller is better: squared L2 for
//! `L2`, and the negated inner product for `IP` and `COSINE` (cosine vectors are
//! normalized once when the index is built, queries once per search, so cosine is an
//! inner product). Callers see Milvus scores: [`Space::to_score`] turns a distance back
//! (L2 squared distance ascending, IP/COSINE similarity descending).
//!
//! Hot kernels: f32 squared L2 and dot product, and their SQ8 (u8 code) variants, written
//! with AVX2+FMA intrinsics and chosen once per process by runtime CPU detection
//! ([`kernels`]); a portable 16-accumulator version serves other CPUs and is the
//! reference in tests. Every vector an index stores, and every prepared query, is padded
//! with zeros to a multiple of 8 floats ([`Space::padded_dim`]), so the AVX2 loops never
//! run a scalar tail on index data and padding never changes a distance.

use std::fmt;
use std::sync::OnceLock;

use quiver_core::search::distance::Metric;

use crate::error::AnnError;
use crate::util::AlignedBuf;

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
            return Some(&x86::AVX2);
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
            return Some(&x86::AVX512);
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

// ---------------------------------------------------------------------------------------
// Portable kernels: 16 independent accumulators, which the compiler keeps in vector
// registers on any target.

/// Portable squared L2.
pub fn l2_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        let d = x - y;
        s += d * d;
    }
    s
}

/// Portable inner product.
pub fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

fn neg_dot_portable(a: &[f32], b: &[f32]) -> f32 {
    -dot_portable(a, b)
}

/// Portable SQ8 squared L2: `sum((a[i] - s[i] * c[i])^2)`.
pub fn sq8_l2_portable(a: &[f32], s: &[f32], c: &[u8]) -> f32 {
    let n = a.len().min(s.len()).min(c.len());
    let (a, s, c) = (&a[..n], &s[..n], &c[..n]);
    let mut acc = [0.0f32; 16];
    let (ca, cs, cc) = (a.chunks_exact(16), s.chunks_exact(16), c.chunks_exact(16));
    let (ra, rs, rc) = (ca.remainder(), cs.remainder(), cc.remainder());
    for ((x, y), z) in ca.zip(cs).zip(cc) {
        for i in 0..16 {
            let d = x[i] - y[i] * f32::from(z[i]);
            acc[i] += d * d;
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for ((x, y), z) in ra.iter().zip(rs).zip(rc) {
        let d = x - y * f32::from(*z);
        sum += d * d;
    }
    sum
}

/// Portable SQ8 integer dot: `sum(t[i] * c[i])`.
pub fn sq8_idot_portable(t: &[i16], c: &[u8]) -> i32 {
    t.iter()
        .zip(c)
        .map(|(&a, &b)| i32::from(a) * i32::from(b))
        .sum()
}

/// Portable SQ8 dot: `sum(w[i] * c[i])`.
pub fn sq8_dot_portable(w: &[f32], c: &[u8]) -> f32 {
    let n = w.len().min(c.len());
    let (w, c) = (&w[..n], &c[..n]);
    let mut acc = [0.0f32; 16];
    let (cw, cc) = (w.chunks_exact(16), c.chunks_exact(16));
    let (rw, rc) = (cw.remainder(), cc.remainder());
    for (x, z) in cw.zip(cc) {
        for i in 0..16 {
            acc[i] += x[i] * f32::from(z[i]);
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, z) in rw.iter().zip(rc) {
        sum += x * f32::from(*z);
    }
    sum
}

// ---------------------------------------------------------------------------------------
// AVX2 + FMA kernels. Four independent 8-lane accumulators hide the FMA latency; loads
// are unaligned (rows are 64-byte aligned for dims that are multiples of 16 anyway).

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Kernels;
    use std::arch::x86_64::*;

    /// Only handed out by `avx2_kernels`, after runtime detection of AVX2 and FMA: that
    /// check is what makes the safe wrappers below sound.
    pub(super) static AVX2: Kernels = Kernels {
        name: "avx2+fma",
        l2,
        dot,
        neg_dot,
        sq8_l2,
        sq8_dot,
        sq8_idot,
    };

    fn sq8_idot(t: &[i16], c: &[u8]) -> i32 {
        // SAFETY: reachable only through `AVX2` or `AVX512`, both of which require avx2.
        unsafe { sq8_idot_avx2(t, c) }
    }

    /// Sixteen codes widened to i16 and multiplied pairwise with the table (`vpmaddwd`):
    /// twice the products per instruction of the f32 path, and no int-to-float step.
    #[target_feature(enable = "avx2")]
    unsafe fn sq8_idot_avx2(t: &[i16], c: &[u8]) -> i32 {
        let n = t.len().min(c.len());
        let (pt, pc) = (t.as_ptr(), c.as_ptr());
        let mut s0 = _mm256_setzero_si256();
        let mut s1 = _mm256_setzero_si256();
        let mut i = 0usize;
        while i + 32 <= n {
            let c0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(pc.add(i).cast::<__m128i>()));
            let c1 = _mm256_cvtepu8_epi16(_mm_loadu_si128(pc.add(i + 16).cast::<__m128i>()));
            let t0 = _mm256_loadu_si256(pt.add(i).cast::<__m256i>());
            let t1 = _mm256_loadu_si256(pt.add(i + 16).cast::<__m256i>());
            s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(c0, t0));
            s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(c1, t1));
            i += 32;
        }
        if i + 16 <= n {
            let c0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(pc.add(i).cast::<__m128i>()));
            let t0 = _mm256_loadu_si256(pt.add(i).cast::<__m256i>());
            s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(c0, t0));
            i += 16;
        }
        let s = _mm256_add_epi32(s0, s1);
        let h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
        let h = _mm_add_epi32(h, _mm_shuffle_epi32::<0b01_00_11_10>(h));
        let h = _mm_add_epi32(h, _mm_shuffle_epi32::<0b10_11_00_01>(h));
        let mut acc = _mm_cvtsi128_si32(h);
        while i < n {
            acc += i32::from(*pt.add(i)) * i32::from(*pc.add(i));
            i += 1;
        }
        acc
    }

    fn l2(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: reachable only through `AVX2`, which requires avx2 and fma.
        unsafe { l2_avx2(a, b) }
    }

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as in `l2`.
        unsafe { dot_avx2(a, b) }
    }

    fn neg_dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as in `l2`.
        -unsafe { dot_avx2(a, b) }
    }

    fn sq8_l2(a: &[f32], s: &[f32], c: &[u8]) -> f32 {
        // SAFETY: as in `l2`.
        unsafe { sq8_l2_avx2(a, s, c) }
    }

    fn sq8_dot(w: &[f32], c: &[u8]) -> f32 {
        // SAFETY: as in `l2`.
        unsafe { sq8_dot_avx2(w, c) }
    }

    /// Only handed out by `avx512_kernels`, after runtime detection of AVX-512F and BW, AVX2
    /// and FMA.
    pub(super) static AVX512: Kernels = Kernels {
        name: "avx512f",
        l2: l2_512,
        dot: dot_512,
        neg_dot: neg_dot_512,
        sq8_l2: sq8_l2_512,
        sq8_dot: sq8_dot_512,
        sq8_idot: sq8_idot_512,
    };

    fn sq8_l2_512(a: &[f32], s: &[f32], c: &[u8]) -> f32 {
        // SAFETY: reachable only through `AVX512`, which requires avx512f.
        unsafe { sq8_l2_avx512(a, s, c) }
    }

    fn sq8_dot_512(w: &[f32], c: &[u8]) -> f32 {
        // SAFETY: as in `sq8_l2_512`.
        unsafe { sq8_dot_avx512(w, c) }
    }

    fn sq8_idot_512(t: &[i16], c: &[u8]) -> i32 {
        // SAFETY: as in `sq8_l2_512`; `avx512_kernels` also requires avx512bw.
        unsafe { sq8_idot_avx512(t, c) }
    }

    /// The 512-bit form of `sq8_idot_avx2`: 32 products per `vpmaddwd`.
    #[target_feature(enable = "avx512f,avx512bw,avx2")]
    unsafe fn sq8_idot_avx512(t: &[i16], c: &[u8]) -> i32 {
        let n = t.len().min(c.len());
        let (pt, pc) = (t.as_ptr(), c.as_ptr());
        let mut s0 = _mm512_setzero_si512();
        let mut s1 = _mm512_setzero_si512();
        let mut i = 0usize;
        while i + 64 <= n {
            let c0 = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pc.add(i).cast::<__m256i>()));
            let c1 = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pc.add(i + 32).cast::<__m256i>()));
            let t0 = _mm512_loadu_si512(pt.add(i).cast::<__m512i>());
            let t1 = _mm512_loadu_si512(pt.add(i + 32).cast::<__m512i>());
            s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(c0, t0));
            s1 = _mm512_add_epi32(s1, _mm512_madd_epi16(c1, t1));
            i += 64;
        }
        if i + 32 <= n {
            let c0 = _mm512_cvtepu8_epi16(_mm256_loadu_si256(pc.add(i).cast::<__m256i>()));
            let t0 = _mm512_loadu_si512(pt.add(i).cast::<__m512i>());
            s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(c0, t0));
            i += 32;
        }
        let mut acc = _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
        if i + 16 <= n {
            let c0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(pc.add(i).cast::<__m128i>()));
            let t0 = _mm256_loadu_si256(pt.add(i).cast::<__m256i>());
            let p = _mm256_madd_epi16(c0, t0);
            let h = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256::<1>(p));
            let h = _mm_add_epi32(h, _mm_shuffle_epi32::<0b01_00_11_10>(h));
            let h = _mm_add_epi32(h, _mm_shuffle_epi32::<0b10_11_00_01>(h));
            acc += _mm_cvtsi128_si32(h);
            i += 16;
        }
        while i < n {
            acc += i32::from(*pt.add(i)) * i32::from(*pc.add(i));
            i += 1;
        }
        acc
    }

    /// Sixteen u8 codes at `p` as f32s (`m` masks off lanes past the end).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn widen16(p: *const u8, m: __mmask16) -> __m512 {
        let bytes = if m == 0xffff {
            _mm_loadu_si128(p.cast::<__m128i>())
        } else {
            // Copy the tail through a stack buffer: never read past the slice.
            let mut buf = [0u8; 16];
            std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), m.count_ones() as usize);
            _mm_loadu_si128(buf.as_ptr().cast::<__m128i>())
        };
        _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes))
    }

    /// SQ8 squared L2 `sum((a - s*c)^2)`, 16 lanes, two accumulators, masked tail.
    #[target_feature(enable = "avx512f")]
    unsafe fn sq8_l2_avx512(a: &[f32], s: &[f32], c: &[u8]) -> f32 {
        let n = a.len().min(s.len()).min(c.len());
        let (pa, ps, pc) = (a.as_ptr(), s.as_ptr(), c.as_ptr());
        let mut s0 = _mm512_setzero_ps();
        let mut s1 = _mm512_setzero_ps();
        let mut i = 0usize;
        while i + 32 <= n {
            let d0 = _mm512_fnmadd_ps(
                _mm512_loadu_ps(ps.add(i)),
                widen16(pc.add(i), 0xffff),
                _mm512_loadu_ps(pa.add(i)),
            );
            let d1 = _mm512_fnmadd_ps(
                _mm512_loadu_ps(ps.add(i + 16)),
                widen16(pc.add(i + 16), 0xffff),
                _mm512_loadu_ps(pa.add(i + 16)),
            );
            s0 = _mm512_fmadd_ps(d0, d0, s0);
            s1 = _mm512_fmadd_ps(d1, d1, s1);
            i += 32;
        }
        while i < n {
            let left = (n - i).min(16);
            let m: __mmask16 = (1u32 << left).wrapping_sub(1) as __mmask16;
            let d = _mm512_fnmadd_ps(
                _mm512_maskz_loadu_ps(m, ps.add(i)),
                widen16(pc.add(i), m),
                _mm512_maskz_loadu_ps(m, pa.add(i)),
            );
            s0 = _mm512_fmadd_ps(d, d, s0);
            i += left;
        }
        _mm512_reduce_add_ps(_mm512_add_ps(s0, s1))
    }

    /// SQ8 dot `sum(w * c)`, 16 lanes, two accumulators, masked tail.
    #[target_feature(enable = "avx512f")]
    unsafe fn sq8_dot_avx512(w: &[f32], c: &[u8]) -> f32 {
        let n = w.len().min(c.len());
        let (pw, pc) = (w.as_ptr(), c.as_ptr());
        let mut s0 = _mm512_setzero_ps();
        let mut s1 = _mm512_setzero_ps();
        let mut i = 0usize;
        while i + 32 <= n {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(pw.add(i)), widen16(pc.add(i), 0xffff), s0);
            s1 = _mm512_fmadd_ps(
                _mm512_loadu_ps(pw.add(i + 16)),
                widen16(pc.add(i + 16), 0xffff),
                s1,
            );
            i += 32;
        }
        while i < n {
            let left = (n - i).min(16);
            let m: __mmask16 = (1u32 << left).wrapping_sub(1) as __mmask16;
            s0 = _mm512_fmadd_ps(
                _mm512_maskz_loadu_ps(m, pw.add(i)),
                widen16(pc.add(i), m),
                s0,
            );
            i += left;
        }
        _mm512_reduce_add_ps(_mm512_add_ps(s0, s1))
    }

    fn l2_512(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: reachable only through `AVX512`, which requires avx512f.
        unsafe { l2_avx512(a, b) }
    }

    fn dot_512(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as in `l2_512`.
        unsafe { dot_avx512(a, b) }
    }

    fn neg_dot_512(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as in `l2_512`.
        -unsafe { dot_avx512(a, b) }
    }

    /// Squared L2 with four 16-lane accumulators and a masked tail.
    #[target_feature(enable = "avx512f")]
    unsafe fn l2_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s0 = _mm512_setzero_ps();
        let mut s1 = _mm512_setzero_ps();
        let mut s2 = _mm512_setzero_ps();
        let mut s3 = _mm512_setzero_ps();
        let mut i = 0usize;
        while i + 64 <= n {
            let d0 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
            let d1 = _mm512_sub_ps(
                _mm512_loadu_ps(pa.add(i + 16)),
                _mm512_loadu_ps(pb.add(i + 16)),
            );
            let d2 = _mm512_sub_ps(
                _mm512_loadu_ps(pa.add(i + 32)),
                _mm512_loadu_ps(pb.add(i + 32)),
            );
            let d3 = _mm512_sub_ps(
                _mm512_loadu_ps(pa.add(i + 48)),
                _mm512_loadu_ps(pb.add(i + 48)),
            );
            s0 = _mm512_fmadd_ps(d0, d0, s0);
            s1 = _mm512_fmadd_ps(d1, d1, s1);
            s2 = _mm512_fmadd_ps(d2, d2, s2);
            s3 = _mm512_fmadd_ps(d3, d3, s3);
            i += 64;
        }
        while i + 16 <= n {
            let d = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
            s0 = _mm512_fmadd_ps(d, d, s0);
            i += 16;
        }
        if i < n {
            let m: __mmask16 = (1u32 << (n - i)).wrapping_sub(1) as __mmask16;
            let d = _mm512_sub_ps(
                _mm512_maskz_loadu_ps(m, pa.add(i)),
                _mm512_maskz_loadu_ps(m, pb.add(i)),
            );
            s1 = _mm512_fmadd_ps(d, d, s1);
        }
        _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)))
    }

    /// Inner product with four 16-lane accumulators and a masked tail.
    #[target_feature(enable = "avx512f")]
    unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s0 = _mm512_setzero_ps();
        let mut s1 = _mm512_setzero_ps();
        let mut s2 = _mm512_setzero_ps();
        let mut s3 = _mm512_setzero_ps();
        let mut i = 0usize;
        while i + 64 <= n {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), s0);
            s1 = _mm512_fmadd_ps(
                _mm512_loadu_ps(pa.add(i + 16)),
                _mm512_loadu_ps(pb.add(i + 16)),
                s1,
            );
            s2 = _mm512_fmadd_ps(
                _mm512_loadu_ps(pa.add(i + 32)),
                _mm512_loadu_ps(pb.add(i + 32)),
                s2,
            );
            s3 = _mm512_fmadd_ps(
                _mm512_loadu_ps(pa.add(i + 48)),
                _mm512_loadu_ps(pb.add(i + 48)),
                s3,
            );
            i += 64;
        }
        while i + 16 <= n {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), s0);
            i += 16;
        }
        if i < n {
            let m: __mmask16 = (1u32 << (n - i)).wrapping_sub(1) as __mmask16;
            s1 = _mm512_fmadd_ps(
                _mm512_maskz_loadu_ps(m, pa.add(i)),
                _mm512_maskz_loadu_ps(m, pb.add(i)),
                s1,
            );
        }
        _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
        _mm_cvtss_f32(s)
    }

    /// Eight u8 codes (the low 8 bytes of `v`) as f32s.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn widen(v: __m128i) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v))
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn l2_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s0 = _mm256_setzero_ps();
        let mut s1 = _mm256_setzero_ps();
        let mut s2 = _mm256_setzero_ps();
        let mut s3 = _mm256_setzero_ps();
        let mut i = 0usize;
        while i + 32 <= n {
            let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
            let d1 = _mm256_sub_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
            );
            let d2 = _mm256_sub_ps(
                _mm256_loadu_ps(pa.add(i + 16)),
                _mm256_loadu_ps(pb.add(i + 16)),
            );
            let d3 = _mm256_sub_ps(
                _mm256_loadu_ps(pa.add(i + 24)),
                _mm256_loadu_ps(pb.add(i + 24)),
            );
            s0 = _mm256_fmadd_ps(d0, d0, s0);
            s1 = _mm256_fmadd_ps(d1, d1, s1);
            s2 = _mm256_fmadd_ps(d2, d2, s2);
            s3 = _mm256_fmadd_ps(d3, d3, s3);
            i += 32;
        }
        while i + 8 <= n {
            let d = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
            s0 = _mm256_fmadd_ps(d, d, s0);
            i += 8;
        }
        let mut s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
        while i < n {
            let d = *pa.add(i) - *pb.add(i);
            s += d * d;
            i += 1;
        }
        s
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s0 = _mm256_setzero_ps();
        let mut s1 = _mm256_setzero_ps();
        let mut s2 = _mm256_setzero_ps();
        let mut s3 = _mm256_setzero_ps();
        let mut i = 0usize;
        while i + 32 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            s1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
                s1,
            );
            s2 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 16)),
                _mm256_loadu_ps(pb.add(i + 16)),
                s2,
            );
            s3 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 24)),
                _mm256_loadu_ps(pb.add(i + 24)),
                s3,
            );
            i += 32;
        }
        while i + 8 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            i += 8;
        }
        let mut s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
        while i < n {
            s += *pa.add(i) * *pb.add(i);
            i += 1;
        }
        s
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn sq8_l2_avx2(a: &[f32], s: &[f32], c: &[u8]) -> f32 {
        let n = a.len().min(s.len()).min(c.len());
        let (pa, ps, pc) = (a.as_ptr(), s.as_ptr(), c.as_ptr());
        let mut s0 = _mm256_setzero_ps();
        let mut s1 = _mm256_setzero_ps();
        let mut s2 = _mm256_setzero_ps();
        let mut s3 = _mm256_setzero_ps();
        let mut i = 0usize;
        while i + 32 <= n {
            let r0 = _mm_loadu_si128(pc.add(i).cast::<__m128i>());
            let r1 = _mm_loadu_si128(pc.add(i + 16).cast::<__m128i>());
            let c0 = widen(r0);
            let c1 = widen(_mm_unpackhi_epi64(r0, r0));
            let c2 = widen(r1);
            let c3 = widen(_mm_unpackhi_epi64(r1, r1));
            // d = a - s * c
            let d0 = _mm256_fnmadd_ps(_mm256_loadu_ps(ps.add(i)), c0, _mm256_loadu_ps(pa.add(i)));
            let d1 = _mm256_fnmadd_ps(
                _mm256_loadu_ps(ps.add(i + 8)),
                c1,
                _mm256_loadu_ps(pa.add(i + 8)),
            );
            let d2 = _mm256_fnmadd_ps(
                _mm256_loadu_ps(ps.add(i + 16)),
                c2,
                _mm256_loadu_ps(pa.add(i + 16)),
            );
            let d3 = _mm256_fnmadd_ps(
                _mm256_loadu_ps(ps.add(i + 24)),
                c3,
                _mm256_loadu_ps(pa.add(i + 24)),
            );
            s0 = _mm256_fmadd_ps(d0, d0, s0);
            s1 = _mm256_fmadd_ps(d1, d1, s1);
            s2 = _mm256_fmadd_ps(d2, d2, s2);
            s3 = _mm256_fmadd_ps(d3, d3, s3);
            i += 32;
        }
        while i + 8 <= n {
            let cv = widen(_mm_loadl_epi64(pc.add(i).cast::<__m128i>()));
            let d = _mm256_fnmadd_ps(_mm256_loadu_ps(ps.add(i)), cv, _mm256_loadu_ps(pa.add(i)));
            s0 = _mm256_fmadd_ps(d, d, s0);
            i += 8;
        }
        let mut sum = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
        while i < n {
            let d = *pa.add(i) - *ps.add(i) * f32::from(*pc.add(i));
            sum += d * d;
            i += 1;
        }
        sum
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn sq8_dot_avx2(w: &[f32], c: &[u8]) -> f32 {
        let n = w.len().min(c.len());
        let (pw, pc) = (w.as_ptr(), c.as_ptr());
        let mut s0 = _mm256_setzero_ps();
        let mut s1 = _mm256_setzero_ps();
        let mut s2 = _mm256_setzero_ps();
        let mut s3 = _mm256_setzero_ps();
        let mut i = 0usize;
        while i + 32 <= n {
            let r0 = _mm_loadu_si128(pc.add(i).cast::<__m128i>());
            let r1 = _mm_loadu_si128(pc.add(i + 16).cast::<__m128i>());
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i)), widen(r0), s0);
            s1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pw.add(i + 8)),
                widen(_mm_unpackhi_epi64(r0, r0)),
                s1,
            );
            s2 = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i + 16)), widen(r1), s2);
            s3 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pw.add(i + 24)),
                widen(_mm_unpackhi_epi64(r1, r1)),
                s3,
            );
            i += 32;
        }
        while i + 8 <= n {
            let cv = widen(_mm_loadl_epi64(pc.add(i).cast::<__m128i>()));
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pw.add(i)), cv, s0);
            i += 8;
        }
        let mut sum = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
        while i < n {
            sum += *pw.add(i) * f32::from(*pc.add(i));
            i += 1;
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_core::rt::Rng;

    fn naive_l2(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
    }

    fn naive_dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 1e-3 * b.abs().max(1.0)
    }

    #[test]
    fn every_kernel_set_agrees_with_naive_loops() {
        let mut rng = Rng::seed_from_u64(11);
        let mut sets = vec![portable_kernels()];
        sets.extend(avx2_kernels());
        sets.extend(avx512_kernels());
        for len in [1usize, 7, 8, 15, 16, 31, 32, 33, 64, 100, 128, 257] {
            let a: Vec<f32> = (0..len).map(|_| rng.normal()).collect();
            let b: Vec<f32> = (0..len).map(|_| rng.normal()).collect();
            let s: Vec<f32> = (0..len).map(|_| rng.next_f32() * 0.1).collect();
            let c: Vec<u8> = (0..len).map(|_| rng.index(256) as u8).collect();
            let want_sq8_l2: f32 = (0..len)
                .map(|i| {
                    let d = a[i] - s[i] * f32::from(c[i]);
                    d * d
                })
                .sum();
            let want_sq8_dot: f32 = (0..len).map(|i| a[i] * f32::from(c[i])).sum();
            // The extreme table values the integer kernel is specified for.
            let t: Vec<i16> = (0..len)
                .map(|i| match i % 3 {
                    0 => 16383,
                    1 => -16383,
                    _ => rng.index(32767) as i16 - 16383,
                })
                .collect();
            let want_idot: i64 = (0..len).map(|i| i64::from(t[i]) * i64::from(c[i])).sum();
            for k in &sets {
                assert_eq!(
                    i64::from((k.sq8_idot)(&t, &c)),
                    want_idot,
                    "{} sq8 idot {len}",
                    k.name
                );
                assert!(
                    close((k.l2)(&a, &b), naive_l2(&a, &b)),
                    "{} l2 {len}",
                    k.name
                );
                assert!(
                    close((k.dot)(&a, &b), naive_dot(&a, &b)),
                    "{} dot {len}",
                    k.name
                );
                assert!(close((k.neg_dot)(&a, &b), -naive_dot(&a, &b)));
                assert!(
                    close((k.sq8_l2)(&a, &s, &c), want_sq8_l2),
                    "{} sq8 l2",
                    k.name
                );
                assert!(
                    close((k.sq8_dot)(&a, &c), want_sq8_dot),
                    "{} sq8 dot",
                    k.name
                );
            }
        }
    }

    #[test]
    fn space_prepares_pads_and_scores() {
        let s = Space::new(Metric::Cosine, 3).unwrap();
        assert_eq!(s.padded_dim(), 8);
        let q = s.prepare(&[3.0, 0.0, 4.0]);
        assert_eq!(q.len(), 8);
        assert!((q[0] - 0.6).abs() < 1e-6 && (q[2] - 0.8).abs() < 1e-6);
        assert!(q[3..].iter().all(|&x| x == 0.0));
        let v = s.prepare(&[6.0, 0.0, 8.0]);
        let d = s.distance(&q, &v);
        assert!((s.to_score(d) - 1.0).abs() < 1e-6);
        let l2 = Space::new(Metric::L2, 2).unwrap();
        assert_eq!(
            l2.distance(&l2.prepare(&[0.0, 0.0]), &l2.prepare(&[3.0, 4.0])),
            25.0
        );
        assert!(Space::new(Metric::L2, 0).is_err());
        for m in [Metric::L2, Metric::IP, Metric::Cosine] {
            assert_eq!(metric_from_code(metric_code(m)), Some(m));
        }
    }
}
