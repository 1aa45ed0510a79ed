//! AVX-512 (F+BW) kernels: 16-lane accumulators (four for the f32 kernels, two for SQ8)
//! and masked loads for the tail, so no scalar loop on any length.

use super::Kernels;
use std::arch::x86_64::*;

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
