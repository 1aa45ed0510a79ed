//! Filtered search: the cost model that picks between a filtered graph walk and an exact
//! scan of the allowed rows, and the filtered level-0 walk itself.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::graph::{Graph, Links, Oracle};
use super::walk::{for_each_dist, unvisited};
use super::Hnsw;
use crate::bitset::Bitset;
use crate::flat::brute_force_rows;
use crate::util::Scratch;

/// A filtered search over fewer allowed rows than this fraction of the index scans the
/// allowed rows exactly instead of walking the graph: with so few results reachable, the
/// graph walk would visit most of the graph anyway, and the exact scan is both cheaper
/// and exact.
pub const BRUTE_FORCE_FRACTION: f64 = 0.02;

/// Whether a filtered search should scan the allowed rows exactly.
pub fn prefer_brute_force(allowed_count: usize, n: usize, k: usize) -> bool {
    allowed_count <= k || (allowed_count as f64) < BRUTE_FORCE_FRACTION * n as f64
}

/// Distances an unfiltered level-0 walk computes: about `WALK_BASE + WALK_PER_EF * ef`
/// for M = 16, scaled by `M / 16` (counted on 100k-row graphs: ~600 at ef = 32, ~980 at
/// 64, ~1,350 at 96).
const WALK_BASE: f64 = 230.0;
const WALK_PER_EF: f64 = 11.5;
/// How much cheaper a distance of the exact scan is than one of the walk (rows read in
/// order, no visited set, no pool). Measured crossovers at 100k rows and 10% allowed
/// put it near 2.3 for 128-d f32 rows, 1.45 for 768-d f32 and 1.3 for 384-d HNSW_SQ8
/// (whose walk reads codes while the scan reads f32 rows); 1.5 errs towards the scan,
/// which is exact, where the two are close.
const SCAN_DISCOUNT: f64 = 1.5;

/// Whether a filtered HNSW search of beam `ef` should scan the `allowed_count` allowed
/// rows of `n` exactly instead of walking the graph.
///
/// A walk that admits only a fraction `s` of the rows has to look at about `1 / s` times
/// as many nodes to fill its beam with admitted ones, while the scan costs `s * n`
/// distances, so the scan wins whenever `s * n` is below the walk's cost over `s`: at
/// 100k rows and 10% allowed, the walk up to ef ~ 40 and the scan above. Measured there
/// (QPS, walk at ef = 32 / 64 against the scan): 768-d f32 2.1k / 1.1k against 1.65k;
/// 384-d HNSW_SQ8 6.0k at ef = 32 against 4.3k; 128-d f32 6.5k / 3.3k against 11.3k,
/// where the scan already wins from ef ~ 18. Never walks where [`prefer_brute_force`]
/// scans.
pub fn hnsw_prefers_exact(allowed_count: usize, n: usize, k: usize, ef: usize, m: usize) -> bool {
    if prefer_brute_force(allowed_count, n, k) {
        return true;
    }
    let s = allowed_count as f64 / n.max(1) as f64;
    let walk = (WALK_BASE + WALK_PER_EF * ef.max(k) as f64) * (m as f64 / 16.0) / s;
    let scan = allowed_count as f64 / SCAN_DISCOUNT;
    scan < walk
}

/// A (distance, id) pair ordered by distance, then id.
#[derive(Clone, Copy)]
struct Cand {
    d: f32,
    id: u32,
}

impl PartialEq for Cand {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}

impl Eq for Cand {}

impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Cand {
    fn cmp(&self, o: &Self) -> Ordering {
        self.d.total_cmp(&o.d).then(self.id.cmp(&o.id))
    }
}

/// Level-0 beam search that walks through every node but only admits `allow`ed ones to
/// the (up to `ef`) results, hnswlib-style: the beam bound is the worst admitted result,
/// so with few allowed rows the walk goes on until `ef` of them are found or the graph
/// runs out. Returns (distance, id), best first.
pub(crate) fn search_layer_filtered<L, O, F>(
    g: &Graph<'_, L>,
    o: &O,
    ep: (u32, f32),
    ef: usize,
    s: &mut Scratch,
    allow: &F,
) -> Vec<(f32, u32)>
where
    L: Links + ?Sized,
    O: Oracle,
    F: Fn(u32) -> bool + ?Sized,
{
    let Scratch { visited, buf, .. } = s;
    let ef = ef.max(1);
    visited.reset(g.n);
    let mut cand: BinaryHeap<Reverse<Cand>> = BinaryHeap::new();
    let mut res: BinaryHeap<Cand> = BinaryHeap::with_capacity(ef + 1);
    visited.insert(ep.0);
    cand.push(Reverse(Cand { d: ep.1, id: ep.0 }));
    if allow(ep.0) {
        res.push(Cand { d: ep.1, id: ep.0 });
    }
    while let Some(Reverse(c)) = cand.pop() {
        if res.len() >= ef && res.peek().is_some_and(|w| c.d > w.d) {
            break;
        }
        let (store, base, cnt) = g.list(c.id, 0);
        let m = unvisited(visited, store, base, cnt, buf);
        for_each_dist(
            o,
            m,
            |j| buf[j],
            |v, d| {
                let bound = if res.len() < ef {
                    f32::INFINITY
                } else {
                    res.peek().map_or(f32::INFINITY, |w| w.d)
                };
                if d < bound {
                    cand.push(Reverse(Cand { d, id: v }));
                    if allow(v) {
                        res.push(Cand { d, id: v });
                        if res.len() > ef {
                            res.pop();
                        }
                    }
                }
            },
        );
    }
    let mut out: Vec<Cand> = res.into_vec();
    out.sort_unstable();
    out.into_iter().map(|c| (c.d, c.id)).collect()
}

impl Hnsw {
    /// Search restricted to the rows set in `allowed` (rows past its end are not
    /// allowed). `allowed_count` is the caller's count (or estimate) of allowed rows: it
    /// only picks the strategy, an exact scan of the allowed rows or a filtered graph
    /// walk, whichever [`hnsw_prefers_exact`] expects to be cheaper.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        allowed: &Bitset,
        allowed_count: usize,
    ) -> Vec<(u32, f32)> {
        if let Some(done) = self.exact_when_selective(query, k, ef, allowed, allowed_count) {
            return done;
        }
        let f: &dyn Fn(u32) -> bool = &|r| allowed.get(r as usize);
        self.search(query, k, ef, Some(f))
    }

    /// The answer of a filtered search that needs no graph walk: nothing (empty index
    /// or `k == 0`), or an exact scan of the allowed rows when that is expected to be
    /// cheaper than a walk of beam `ef`. `None` means walk the graph. Shared with
    /// [`crate::sq8::HnswSq8`].
    pub(crate) fn exact_when_selective(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        allowed: &Bitset,
        allowed_count: usize,
    ) -> Option<Vec<(u32, f32)>> {
        if self.n == 0 || k == 0 {
            return Some(Vec::new());
        }
        if hnsw_prefers_exact(allowed_count, self.n, k, ef, self.m) {
            let q = self.space.prepare(query);
            return Some(brute_force_rows(
                &self.space,
                &q,
                self.vectors.as_f32(),
                self.n,
                k,
                allowed.iter_ones(),
            ));
        }
        None
    }
}
