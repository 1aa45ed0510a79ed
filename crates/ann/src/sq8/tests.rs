use quiver_core::search::distance::Metric;

use super::int_kernel::Sq8IntOracle;
use super::*;
use crate::bitset::Bitset;
use crate::flat::FlatIndex;
use crate::hnsw::{hnsw_prefers_exact, HnswParams, Oracle};
use crate::ivf::IvfParams;
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
