//! Distance kernels: anndists' SIMD L2 (what `Metric::L2` uses) against a plain
//! multi-accumulator loop and a one-accumulator scalar loop, plus our dot product.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use quiver_core::search::distance::{dot, l2_sq, l2_sq_plain};
use std::hint::black_box;

fn scalar_l2(a: &[f32], b: &[f32]) -> f32 {
    let mut s = 0.0;
    for i in 0..a.len() {
        let d = a[i] - b[i];
        s += d * d;
    }
    s
}

fn kernels(c: &mut Criterion) {
    for dim in [128usize, 768] {
        let data = quiver_benches::clustered(1024, dim, 1);
        let q = &data[..dim];
        let mut g = c.benchmark_group(format!("distance/{dim}"));
        g.throughput(Throughput::Elements(1024));
        let run = |f: fn(&[f32], &[f32]) -> f32| {
            let mut s = 0.0;
            for v in data.chunks_exact(dim) {
                s += f(black_box(q), black_box(v));
            }
            s
        };
        g.bench_function(BenchmarkId::new("anndists_l2", dim), |b| {
            b.iter(|| run(l2_sq))
        });
        g.bench_function(BenchmarkId::new("plain_l2_16acc", dim), |b| {
            b.iter(|| run(l2_sq_plain))
        });
        g.bench_function(BenchmarkId::new("scalar_l2", dim), |b| {
            b.iter(|| run(scalar_l2))
        });
        g.bench_function(BenchmarkId::new("dot_16acc", dim), |b| b.iter(|| run(dot)));
        g.finish();
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
