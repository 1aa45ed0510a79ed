//! Building an index: level draws, the upper-level layout, the (parallel) build
//! driver, and the links-in-range invariant checked once a graph is built.

use std::sync::atomic::AtomicU32;
use std::sync::{Mutex, MutexGuard};

use quiver_core::rt::{par, Rng};
use quiver_core::search::distance::Metric;

use super::graph::Graph;
use super::insert::Builder;
use super::{Hnsw, HnswParams, MAX_LEVEL, MAX_M};
use crate::distance::Space;
use crate::error::AnnError;
use crate::flat::check_rows;
use crate::util::huge_vec;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Links a list at `level` may hold: `2 * m` on level 0, `m` above.
pub(super) fn capacity(m: usize, level: usize) -> usize {
    if level == 0 {
        2 * m
    } else {
        m
    }
}

/// The links-in-range invariant for node `u`'s list at `level` holding `count` links
/// `ids`: the count is within the level's capacity, and every link is another node
/// (below `levels.len()`, not `u`) that has `level`. Checked where lists are written and
/// once a graph is built; searches and `Graph::list` rely on it (an upper-level list of
/// a node without that level would be read at `u32::MAX`). Loaded graphs are validated
/// by `from_bytes` instead, which refuses bad input with an error.
pub(super) fn check_list(
    levels: &[u8],
    m: usize,
    u: u32,
    level: usize,
    count: usize,
    ids: impl Iterator<Item = u32>,
) {
    let (n, cap) = (levels.len(), capacity(m, level));
    quiver_core::invariant!(
        count <= cap,
        "HNSW node {u} has {count} links at level {level}, capacity {cap}"
    );
    for v in ids {
        quiver_core::invariant!(
            (v as usize) < n && v != u && usize::from(levels[v as usize]) >= level,
            "HNSW link {u} -> {v} at level {level} out of range ({n} nodes)"
        );
    }
}

/// Draws the level of every node (hnswlib's `-ln(U) / ln(M)`), capped at [`MAX_LEVEL`].
fn assign_levels(n: usize, m: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::seed_from_u64(seed);
    let mult = 1.0 / (m as f64).ln();
    (0..n)
        .map(|_| {
            let u = 1.0 - rng.next_f64(); // (0, 1]
            (-u.ln() * mult).floor().min(MAX_LEVEL as f64) as u8
        })
        .collect()
}

/// Start of each node's upper-level rows (`u32::MAX` for none) and the total length of
/// the upper array, or `None` if it does not fit in u32 offsets.
pub(crate) fn upper_layout(levels: &[u8], m: usize) -> Option<(Vec<u32>, usize)> {
    let w = m + 1;
    let mut off = Vec::with_capacity(levels.len());
    let mut total = 0usize;
    for &l in levels {
        if l == 0 {
            off.push(u32::MAX);
        } else {
            off.push(u32::try_from(total).ok()?);
            total = total.checked_add(usize::from(l).checked_mul(w)?)?;
        }
    }
    if total >= u32::MAX as usize {
        return None;
    }
    Some((off, total))
}

impl Hnsw {
    /// Builds over `data` (row-major, `data.len() / dim` rows; row id = position) with up
    /// to `threads` threads (pass `quiver_core::rt::compute_parallelism()`).
    pub fn build(
        metric: Metric,
        dim: usize,
        data: &[f32],
        params: &HnswParams,
        threads: usize,
    ) -> Result<Hnsw, AnnError> {
        let space = Space::new(metric, dim)?;
        let n = check_rows(data, dim)?;
        if !(2..=MAX_M).contains(&params.m) {
            return Err(AnnError::InvalidParam(format!(
                "M must be in 2..={MAX_M}, got {}",
                params.m
            )));
        }
        let m = params.m;
        let levels = assign_levels(n, m, params.seed);
        let (upper_off, upper_len) = upper_layout(&levels, m)
            .ok_or_else(|| AnnError::InvalidParam("too many rows for one HNSW index".into()))?;
        let mut h = Hnsw {
            space,
            n,
            m,
            ef_construction: params.ef_construction.max(1),
            seed: params.seed,
            vectors: space.load_rows(data),
            links0: Vec::new(),
            levels,
            upper_off,
            upper: Vec::new(),
            entry: 0,
            max_level: 0,
        };
        h.build_graph(upper_len, threads);
        Ok(h)
    }

    fn build_graph(&mut self, upper_len: usize, threads: usize) {
        let m = self.m;
        let links0: Vec<AtomicU32> = huge_vec(self.n * (2 * m + 1), || AtomicU32::new(0));
        let upper: Vec<AtomicU32> = (0..upper_len).map(|_| AtomicU32::new(0)).collect();
        if self.n > 0 {
            let stripes = self.n.next_power_of_two().min(1 << 16);
            let locks: Vec<Mutex<()>> = (0..stripes).map(|_| Mutex::new(())).collect();
            let top = Mutex::new((0u32, usize::from(self.levels[0])));
            let b = Builder {
                space: &self.space,
                vectors: self.vectors.as_f32(),
                stride: self.space.padded_dim(),
                graph: Graph {
                    links0: &links0[..],
                    upper: &upper[..],
                    upper_off: &self.upper_off,
                    m,
                    n: self.n,
                },
                levels: &self.levels,
                efc: self.ef_construction,
                locks: &locks,
                top: &top,
            };
            par::parallel_for(threads, self.n - 1, |i| b.insert(i as u32 + 1));
            let (entry, max_level) = *lock(&top);
            self.entry = entry;
            self.max_level = max_level;
        }
        // Collected in place (same size and alignment), so the huge-page advice stays.
        self.links0 = links0.into_iter().map(AtomicU32::into_inner).collect();
        self.upper = upper.into_iter().map(AtomicU32::into_inner).collect();
        if quiver_core::invariant::CHECKED {
            self.check_links();
        }
    }

    /// Asserts the links-in-range invariant (see [`check_list`]) on every list of the
    /// graph, and that the entry point is a node of the top level. Searches follow links
    /// without bounds reasoning of their own, so a built graph must satisfy it.
    pub(crate) fn check_links(&self) {
        let g = self.graph();
        for u in 0..self.n as u32 {
            for level in 0..=usize::from(self.levels[u as usize]) {
                let (store, base, _) = g.list(u, level);
                let count = store[base - 1] as usize;
                let listed = &store[base..base + count.min(capacity(self.m, level))];
                check_list(
                    &self.levels,
                    self.m,
                    u,
                    level,
                    count,
                    listed.iter().copied(),
                );
            }
        }
        if self.n > 0 {
            let (entry, top) = (self.entry as usize, self.max_level);
            quiver_core::invariant!(
                entry < self.n && usize::from(self.levels[entry]) == top,
                "HNSW entry point {entry} is not a node of the top level {top}"
            );
        }
    }
}
