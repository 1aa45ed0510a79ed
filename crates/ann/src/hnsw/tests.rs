use quiver_core::search::distance::Metric;

use super::*;
use crate::bitset::Bitset;
use crate::flat::FlatIndex;
use crate::testutil::{clustered, mean_recall};

fn build(metric: Metric, n: usize, dim: usize, threads: usize) -> (Vec<f32>, Hnsw) {
    let data = clustered(n, dim, 1);
    let p = HnswParams {
        m: 16,
        ef_construction: 100,
        seed: 7,
    };
    let h = Hnsw::build(metric, dim, &data, &p, threads).unwrap();
    (data, h)
}

fn recall_vs_flat(metric: Metric, threads: usize) -> f64 {
    let (n, dim) = (2000, 32);
    let (data, h) = build(metric, n, dim, threads);
    let flat = FlatIndex::build(metric, dim, &data).unwrap();
    let queries = clustered(50, dim, 99);
    mean_recall(
        queries
            .chunks_exact(dim)
            .map(|q| (h.search(q, 10, 64, None), flat.search(q, 10, None))),
    )
}

#[test]
fn recall_at_10_matches_flat_l2() {
    let r = recall_vs_flat(Metric::L2, 1);
    assert!(r >= 0.95, "recall {r}");
}

#[test]
fn recall_with_parallel_build() {
    let r = recall_vs_flat(Metric::L2, 3);
    assert!(r >= 0.95, "recall {r}");
}

#[test]
fn recall_cosine_and_ip() {
    for m in [Metric::Cosine, Metric::IP] {
        let r = recall_vs_flat(m, 2);
        assert!(r >= 0.9, "{m:?} recall {r}");
    }
}

#[test]
fn serial_build_is_deterministic() {
    let (_, a) = build(Metric::L2, 500, 16, 1);
    let (_, b) = build(Metric::L2, 500, 16, 1);
    assert_eq!(a.links0, b.links0);
    assert_eq!(a.upper, b.upper);
    assert_eq!(a.levels, b.levels);
    assert_eq!((a.entry, a.max_level), (b.entry, b.max_level));
}

#[test]
fn distances_are_exact_and_sorted() {
    let (data, h) = build(Metric::L2, 300, 8, 1);
    let q = &data[8 * 17..8 * 18];
    let r = h.search(q, 5, 32, None);
    assert_eq!(r[0], (17, 0.0));
    assert!(r.windows(2).all(|w| w[0].1 <= w[1].1));
    let want: f32 = data[..8]
        .iter()
        .zip(q)
        .map(|(a, b)| (a - b) * (a - b))
        .sum();
    if let Some(&(_, d)) = r.iter().find(|x| x.0 == 0) {
        assert!((d - want).abs() < 1e-3);
    }
}

#[test]
fn filtered_search_returns_only_allowed_rows() {
    let (n, dim) = (2000, 16);
    let (data, h) = build(Metric::L2, n, dim, 1);
    let flat = FlatIndex::build(Metric::L2, dim, &data).unwrap();
    let queries = clustered(30, dim, 5);
    // 30% allowed: a filtered graph walk (forced, whatever the cost model says).
    let allowed = Bitset::from_fn(n, |i| i % 10 < 3);
    let cnt = allowed.count_ones();
    let f = |r: u32| allowed.get(r as usize);
    let r = mean_recall(queries.chunks_exact(dim).map(|q| {
        let got = h.search(q, 10, 64, Some(&f));
        assert!(got.iter().all(|x| allowed.get(x.0 as usize)));
        (got, flat.search(q, 10, Some(&f)))
    }));
    assert!(r >= 0.9, "filtered recall {r}");
    // At this size the cost model scans 30% exactly: equal to flat.
    assert!(hnsw_prefers_exact(cnt, n, 10, 64, 16));
    for q in queries.chunks_exact(dim).take(5) {
        assert_eq!(
            h.search_filtered(q, 10, 64, &allowed, cnt),
            flat.search(q, 10, Some(&f))
        );
    }
    // Nearly everything allowed: `search_filtered` walks.
    let most = Bitset::from_fn(n, |i| i % 50 != 7);
    assert!(!hnsw_prefers_exact(most.count_ones(), n, 10, 64, 16));
    let got = h.search_filtered(&queries[..dim], 10, 64, &most, most.count_ones());
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|x| x.0 % 50 != 7));
    // 1% allowed: exact scan, equal to flat.
    let sparse = Bitset::from_fn(n, |i| i % 100 == 3);
    let g = |r: u32| sparse.get(r as usize);
    for q in queries.chunks_exact(dim) {
        let got = h.search_filtered(q, 10, 64, &sparse, sparse.count_ones());
        assert_eq!(got, flat.search(q, 10, Some(&g)));
    }
    // Closure filter through `search` too.
    let odd = |r: u32| r % 2 == 1;
    let got = h.search(&queries[..dim], 10, 64, Some(&odd));
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|x| x.0 % 2 == 1));
}

#[test]
fn filter_strategy_follows_the_measured_crossover() {
    // 100k rows, 10% allowed (the points measured in `hnsw_prefers_exact`'s docs).
    let (n, allowed) = (100_000, 10_000);
    assert!(!hnsw_prefers_exact(allowed, n, 10, 24, 16));
    assert!(!hnsw_prefers_exact(allowed, n, 10, 32, 16));
    assert!(hnsw_prefers_exact(allowed, n, 10, 64, 16));
    // A larger index makes the scan dearer; fewer allowed rows make the walk dearer.
    assert!(!hnsw_prefers_exact(100_000, 1_000_000, 10, 64, 16));
    assert!(hnsw_prefers_exact(2_000, 100_000, 10, 16, 16));
    // The fixed floor still holds: below 2%, or at most k rows, always scan.
    assert!(hnsw_prefers_exact(19_000, 1_000_000, 10, 10, 16));
    assert!(hnsw_prefers_exact(10, 1_000_000_000, 10, 10, 16));
    // Everything allowed: walk.
    assert!(!hnsw_prefers_exact(n, n, 10, 64, 16));
}

#[test]
fn tiny_and_empty_indexes() {
    let e = Hnsw::build(Metric::L2, 4, &[], &HnswParams::default(), 2).unwrap();
    assert!(e.search(&[0.0; 4], 3, 10, None).is_empty());
    let one = Hnsw::build(Metric::L2, 2, &[1.0, 2.0], &HnswParams::default(), 2).unwrap();
    assert_eq!(one.search(&[1.0, 2.0], 3, 10, None), vec![(0, 0.0)]);
    assert!(Hnsw::build(Metric::L2, 3, &[1.0; 4], &HnswParams::default(), 1).is_err());
    let bad = HnswParams {
        m: 1,
        ..HnswParams::default()
    };
    assert!(Hnsw::build(Metric::L2, 2, &[1.0; 4], &bad, 1).is_err());
}

#[test]
fn built_graphs_keep_links_in_range_and_a_bad_link_is_caught() {
    let (_, h) = build(Metric::L2, 600, 8, 2);
    // Also run at the end of every build in checked builds; here explicitly.
    h.check_links();
    if !quiver_core::invariant::CHECKED {
        return;
    }
    let w0 = 2 * h.m + 1;
    type Corrupt = fn(&mut Hnsw, usize);
    let corruptions: [(&str, Corrupt); 3] = [
        ("self link", |h, w0| {
            h.links0[3 * w0] = h.links0[3 * w0].max(1);
            h.links0[3 * w0 + 1] = 3;
        }),
        ("id past the end", |h, w0| {
            h.links0[3 * w0] = h.links0[3 * w0].max(1);
            h.links0[3 * w0 + 1] = h.n as u32;
        }),
        ("count over capacity", |h, w0| h.links0[3 * w0] = w0 as u32),
    ];
    for (what, corrupt) in corruptions {
        let mut bad = h.clone();
        corrupt(&mut bad, w0);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| bad.check_links()));
        assert!(caught.is_err(), "{what} was not caught");
    }
}
