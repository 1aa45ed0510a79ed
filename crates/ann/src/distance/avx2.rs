//! AVX2 + FMA kernels. Four independent 8-lane accumulators hide the FMA latency; loads
//! are unaligned (rows are 64-byte aligned for dims that are multiples of 16 anyway).
//! The integer SQ8 dot widens codes to i16 and uses `vpmaddwd`.

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
    // SAFETY: reachable only through `AVX2`, which requires avx2.
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
