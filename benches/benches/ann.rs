//! Hot loops of the ANN engine (quiver-ann): the distance kernels, AVX2+FMA against the
//! portable fallback (f32 L2 / dot and the SQ8 code kernels), and one HNSW / HNSW_SQ8
//! search at ef = 64 on a small synthetic set built once.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use quiver_ann::distance::{avx2_kernels, avx512_kernels, portable_kernels, Kernels};
use quiver_ann::{AnnIndex, HnswParams, IndexParams, Metric, SearchParams};
use std::hint::black_box;

fn kernel_sets() -> Vec<&'static Kernels> {
    let mut v = vec![portable_kernels()];
    v.extend(avx2_kernels());
    v.extend(avx512_kernels());
    v
}

fn kernels(c: &mut Criterion) {
    for dim in [128usize, 768] {
        let data = quiver_benches::clustered(1024, dim, 1);
        let q = data[..dim].to_vec();
        let codes: Vec<u8> = data
            .iter()
            .map(|x| (x.abs() * 64.0).min(255.0) as u8)
            .collect();
        let scale = vec![1.0f32 / 64.0; dim];
        let table: Vec<i16> = q
            .iter()
            .map(|x| (x * 4096.0).clamp(-16383.0, 16383.0) as i16)
            .collect();
        let mut g = c.benchmark_group(format!("ann_kernels/{dim}"));
        g.throughput(Throughput::Elements(1024));
        for ks in kernel_sets() {
            g.bench_function(BenchmarkId::new("l2", ks.name), |b| {
                b.iter(|| {
                    let mut s = 0.0;
                    for v in data.chunks_exact(dim) {
                        s += (ks.l2)(black_box(&q), black_box(v));
                    }
                    s
                })
            });
            g.bench_function(BenchmarkId::new("dot", ks.name), |b| {
                b.iter(|| {
                    let mut s = 0.0;
                    for v in data.chunks_exact(dim) {
                        s += (ks.dot)(black_box(&q), black_box(v));
                    }
                    s
                })
            });
            g.bench_function(BenchmarkId::new("sq8_l2", ks.name), |b| {
                b.iter(|| {
                    let mut s = 0.0;
                    for code in codes.chunks_exact(dim) {
                        s += (ks.sq8_l2)(black_box(&q), black_box(&scale), black_box(code));
                    }
                    s
                })
            });
            g.bench_function(BenchmarkId::new("sq8_dot", ks.name), |b| {
                b.iter(|| {
                    let mut s = 0.0;
                    for code in codes.chunks_exact(dim) {
                        s += (ks.sq8_dot)(black_box(&q), black_box(code));
                    }
                    s
                })
            });
            g.bench_function(BenchmarkId::new("sq8_idot", ks.name), |b| {
                b.iter(|| {
                    let mut s = 0i64;
                    for code in codes.chunks_exact(dim) {
                        s += i64::from((ks.sq8_idot)(black_box(&table), black_box(code)));
                    }
                    s
                })
            });
        }
        g.finish();
    }
}

fn search(c: &mut Criterion) {
    let (n, dim, nq) = (10_000, 128, 256);
    let data = quiver_benches::clustered(n, dim, 7);
    let queries = quiver_benches::clustered(nq, dim, 8);
    let threads = quiver_core::rt::compute_parallelism();
    let hnsw = HnswParams {
        m: 16,
        ef_construction: 100,
        ..HnswParams::default()
    };
    let sp = SearchParams {
        ef: Some(64),
        ..SearchParams::default()
    };
    let mut g = c.benchmark_group("ann_search");
    for (name, params) in [
        ("hnsw", IndexParams::Hnsw(hnsw)),
        ("hnsw_sq8", IndexParams::HnswSq8(hnsw)),
    ] {
        let index = AnnIndex::build(&params, Metric::L2, dim, &data, threads).expect("build");
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new(name, "10k_x_128_ef64"), |b| {
            b.iter(|| {
                i = (i + 1) % nq;
                black_box(index.search(&queries[i * dim..(i + 1) * dim], 10, &sp, None))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, kernels, search);
criterion_main!(benches);
