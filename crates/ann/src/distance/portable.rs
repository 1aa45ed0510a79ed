//! Portable kernels: 16 independent accumulators, which the compiler keeps in vector
//! registers on any target. What CPUs without AVX2+FMA run, and the reference the
//! SIMD kernels are tested against.

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

pub(super) fn neg_dot_portable(a: &[f32], b: &[f32]) -> f32 {
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
