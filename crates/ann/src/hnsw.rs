//! HNSW (Malkov & Yashunin) on contiguous memory.
//!
//! Layout, chosen so a search touches few cache lines and a build allocates nothing per
//! node:
//! - vectors: one 64-byte aligned `f32` block, row `i` at `i * padded_dim` (rows padded
//!   with zeros to a multiple of 8 floats);
//! - level 0: one flat `u32` array with a fixed-width row per node,
//!   `[count, n_0, .., n_{2M-1}]` (`2M + 1` words; 132 bytes for M = 16);
//! - upper levels: most nodes (a fraction `1 - 1/M`) have none, so they live in a separate
//!   compact array: node `i` with level `L > 0` owns `L` consecutive rows of `M + 1` words
//!   starting at `upper_off[i]` (`u32::MAX` for level-0 nodes), plus `levels[i]` (a byte).
//!
//! Build: hnswlib's algorithm (greedy descent, `efConstruction` beam search per level,
//! neighbour selection by hnswlib's `getNeighborsByHeuristic2`, reverse links pruned by
//! the same heuristic). Levels are drawn up front from `Rng::seed_from_u64(seed)`, so a
//! single-threaded build is deterministic. With more threads, nodes are inserted
//! concurrently: links live in `AtomicU32`s during the build (relaxed loads compile to
//! plain loads), every list write happens under the owning node's striped lock, and a
//! thread only ever holds one lock, so there is no lock order to get wrong. Readers
//! never lock: a list read during a concurrent write can mix old and new entries, all of
//! them valid node ids, which only perturbs that one search.
//!
//! Search: greedy descent on the upper levels, then a beam search on level 0 with the
//! linear candidate pool from `util` (no heaps), an epoch-stamped visited array, and
//! software prefetch of the next candidate's links and of neighbour vectors a few nodes
//! ahead of the distance loop. Filtered search keeps traversing through rows the filter
//! rejects but only admits allowed rows to the results; when the caller's count of
//! allowed rows makes an exact scan of them cheaper than that walk (a cost model,
//! [`hnsw_prefers_exact`]), it scans them exactly instead.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::sync::{Mutex, MutexGuard};

use quiver_core::rt::Rng;
use quiver_core::search::distance::Metric;
use serde::{Deserialize, Serialize};

use crate::bitset::Bitset;
use crate::distance::{F32Kernel, Space};
use crate::error::AnnError;
use crate::flat::{brute_force_rows, check_rows};
use crate::util::{huge_vec, prefetch_lines, with_scratch, AlignedBuf, Scratch, Visited};
use quiver_core::rt::par;

/// Highest level a node can get (levels are stored in a byte).
pub const MAX_LEVEL: usize = 31;
/// Largest `M` accepted (Milvus's limit).
pub const MAX_M: usize = 2048;
/// A filtered search over fewer allowed rows than this fraction of the index scans the
/// allowed rows exactly instead of walking the graph: with so few results reachable, the
/// graph walk would visit most of the graph anyway, and the exact scan is both cheaper
/// and exact.
pub const BRUTE_FORCE_FRACTION: f64 = 0.02;
/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 0x5155_4956_4552; // "QUIVER"
/// Row ids must stay below 2^31: the search pool uses bit 31 as a flag.
pub const MAX_ROWS: usize = (1 << 31) - 1;

/// Cache lines prefetched per vector (the hardware prefetcher follows after that; 32
/// measured 4% faster than 16 for 768-d f32 rows, 48 slower).
const MAX_PREFETCH_LINES: usize = 32;
/// Cache lines of rows the distance loop keeps in flight ahead of itself.
const PREFETCH_LINE_BUDGET: usize = 96;

/// Cache lines to prefetch for a row of `bytes` bytes.
pub(crate) fn prefetch_line_count(bytes: usize) -> usize {
    bytes.div_ceil(64).clamp(1, MAX_PREFETCH_LINES)
}

/// How many rows ahead of the distance loop to prefetch, for rows of `bytes` bytes.
///
/// A row's distance takes less time than a DRAM miss, so the prefetch must run several
/// rows ahead, and the shorter the row the more rows: about 96 cache lines in flight
/// measured best for f32 and SQ8 rows from 128 to 768 dimensions (e.g. 16 rows of
/// 384-d SQ8 codes: +18% QPS over 3 rows; 12 rows of 128-d f32: +14%; 3 rows for
/// 768-d f32, where more only evicts what is about to be read).
pub(crate) fn prefetch_ahead(bytes: usize) -> usize {
    (PREFETCH_LINE_BUDGET / bytes.div_ceil(64).max(1)).clamp(3, 32)
}

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

/// HNSW build parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Links per node on upper levels; level 0 keeps up to `2 * m`.
    pub m: usize,
    /// Beam width while inserting.
    pub ef_construction: usize,
    /// Seed of the level draws.
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            seed: DEFAULT_SEED,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Graph access shared by the build (atomic links) and searches (plain links).

/// Link storage: plain `u32`s once built, `AtomicU32`s while building.
pub(crate) trait Links: Sync {
    fn at(&self, i: usize) -> u32;
    fn addr(&self, i: usize) -> *const u8;
}

impl Links for [u32] {
    #[inline(always)]
    fn at(&self, i: usize) -> u32 {
        self[i]
    }

    #[inline(always)]
    fn addr(&self, i: usize) -> *const u8 {
        self.as_ptr().wrapping_add(i).cast::<u8>()
    }
}

impl Links for [AtomicU32] {
    #[inline(always)]
    fn at(&self, i: usize) -> u32 {
        self[i].load(AtomicOrdering::Relaxed)
    }

    #[inline(always)]
    fn addr(&self, i: usize) -> *const u8 {
        self.as_ptr().wrapping_add(i).cast::<u8>()
    }
}

/// A view of the graph's link arrays.
pub(crate) struct Graph<'a, L: ?Sized> {
    pub(crate) links0: &'a L,
    pub(crate) upper: &'a L,
    pub(crate) upper_off: &'a [u32],
    pub(crate) m: usize,
    /// Number of nodes.
    pub(crate) n: usize,
}

impl<'a, L: Links + ?Sized> Graph<'a, L> {
    /// `(storage, first, count)` of node `u`'s list at `level`. The node must have that
    /// level (guaranteed for every node reached through a list of that level).
    #[inline(always)]
    pub(crate) fn list(&self, u: u32, level: usize) -> (&'a L, usize, usize) {
        if level == 0 {
            let w = 2 * self.m;
            let b = u as usize * (w + 1);
            let c = (self.links0.at(b) as usize).min(w);
            (self.links0, b + 1, c)
        } else {
            let b = self.upper_off[u as usize] as usize + (level - 1) * (self.m + 1);
            let c = (self.upper.at(b) as usize).min(self.m);
            (self.upper, b + 1, c)
        }
    }

    #[inline(always)]
    fn prefetch_list(&self, u: u32, level: usize) {
        if level == 0 {
            let w = 2 * self.m + 1;
            prefetch_lines(
                self.links0.addr(u as usize * w),
                (w * 4).div_ceil(64).min(4),
            );
        }
    }
}

/// Distances from one query to stored rows, by row id.
pub(crate) trait Oracle {
    fn dist(&self, id: u32) -> f32;
    fn prefetch(&self, id: u32);
    /// How many rows ahead of the distance loop to prefetch ([`prefetch_ahead`]).
    fn ahead(&self) -> usize;
}

/// Exact f32 distances to the rows of a padded block.
pub(crate) struct F32Oracle<'a> {
    q: &'a [f32],
    data: &'a [f32],
    stride: usize,
    kern: F32Kernel,
    lines: usize,
    ahead: usize,
}

impl<'a> F32Oracle<'a> {
    pub(crate) fn new(space: &Space, q: &'a [f32], data: &'a [f32]) -> Self {
        let stride = space.padded_dim();
        F32Oracle {
            q,
            data,
            stride,
            kern: space.kernel(),
            lines: prefetch_line_count(stride * 4),
            ahead: prefetch_ahead(stride * 4),
        }
    }

    #[inline(always)]
    fn row(&self, id: u32) -> &'a [f32] {
        let o = id as usize * self.stride;
        &self.data[o..o + self.stride]
    }
}

impl Oracle for F32Oracle<'_> {
    #[inline(always)]
    fn dist(&self, id: u32) -> f32 {
        (self.kern)(self.q, self.row(id))
    }

    #[inline(always)]
    fn prefetch(&self, id: u32) {
        let p = self.data.as_ptr().wrapping_add(id as usize * self.stride);
        prefetch_lines(p.cast::<u8>(), self.lines);
    }

    #[inline(always)]
    fn ahead(&self) -> usize {
        self.ahead
    }
}

/// Hands `f` the distance from `o` to each row `id(0)..id(count - 1)`, in order, with
/// the rows prefetched `o.ahead()` ahead of the distance loop (the one loop every walk,
/// descent and re-rank runs).
#[inline(always)]
pub(crate) fn for_each_dist<O: Oracle>(
    o: &O,
    count: usize,
    id: impl Fn(usize) -> u32,
    mut f: impl FnMut(u32, f32),
) {
    let ahead = o.ahead();
    for j in 0..count.min(ahead) {
        o.prefetch(id(j));
    }
    for j in 0..count {
        if j + ahead < count {
            o.prefetch(id(j + ahead));
        }
        let v = id(j);
        f(v, o.dist(v));
    }
}

/// Greedy descent from `ep` through levels `top` down to `bottom` (inclusive, >= 1).
pub(crate) fn greedy<L: Links + ?Sized, O: Oracle>(
    g: &Graph<'_, L>,
    o: &O,
    ep: (u32, f32),
    top: usize,
    bottom: usize,
) -> (u32, f32) {
    let (mut cur, mut dcur) = ep;
    let bottom = bottom.max(1);
    let mut level = top;
    while level >= bottom {
        loop {
            let mut changed = false;
            let (store, base, cnt) = g.list(cur, level);
            for_each_dist(
                o,
                cnt,
                |j| store.at(base + j),
                |v, d| {
                    if d < dcur {
                        dcur = d;
                        cur = v;
                        changed = true;
                    }
                },
            );
            if !changed {
                break;
            }
        }
        level -= 1;
    }
    (cur, dcur)
}

/// Beam search of width `ef` on `level` from `ep`; the result is left in `s.pool`,
/// best first.
pub(crate) fn search_layer<L: Links + ?Sized, O: Oracle>(
    g: &Graph<'_, L>,
    o: &O,
    ep: (u32, f32),
    ef: usize,
    level: usize,
    s: &mut Scratch,
) {
    let Scratch {
        visited, pool, buf, ..
    } = s;
    visited.reset(g.n);
    pool.reset(ef);
    visited.insert(ep.0);
    pool.insert(ep.0, ep.1);
    while let Some(u) = pool.pop() {
        let (store, base, cnt) = g.list(u, level);
        if let Some(next) = pool.peek() {
            g.prefetch_list(next, level);
        }
        let m = unvisited(visited, store, base, cnt, buf);
        for_each_dist(
            o,
            m,
            |j| buf[j],
            |v, d| {
                pool.insert(v, d);
            },
        );
    }
}

/// Marks the `cnt` links at `store[base..]` visited and puts those that were not at the
/// front of `buf`; returns how many. Branch-free: whether a neighbour was seen is a coin
/// flip to the branch predictor, and a mispredicted branch per neighbour cost more than
/// the bookkeeping it saves (+7% QPS for 384-d HNSW_SQ8, and a faster build).
#[inline(always)]
fn unvisited<L: Links + ?Sized>(
    visited: &mut Visited,
    store: &L,
    base: usize,
    cnt: usize,
    buf: &mut Vec<u32>,
) -> usize {
    // Grown once and never shrunk, so this is not a memset per expansion.
    if buf.len() < cnt {
        buf.resize(cnt, 0);
    }
    let mut m = 0;
    for j in 0..cnt {
        let v = store.at(base + j);
        buf[m] = v;
        m += usize::from(visited.insert(v));
    }
    m
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

/// An HNSW index over `f32` vectors.
#[derive(Debug, Clone)]
pub struct Hnsw {
    pub(crate) space: Space,
    pub(crate) n: usize,
    pub(crate) m: usize,
    pub(crate) ef_construction: usize,
    pub(crate) seed: u64,
    pub(crate) vectors: AlignedBuf,
    pub(crate) links0: Vec<u32>,
    pub(crate) levels: Vec<u8>,
    pub(crate) upper_off: Vec<u32>,
    pub(crate) upper: Vec<u32>,
    pub(crate) entry: u32,
    pub(crate) max_level: usize,
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
    }

    pub(crate) fn graph(&self) -> Graph<'_, [u32]> {
        Graph {
            links0: &self.links0[..],
            upper: &self.upper[..],
            upper_off: &self.upper_off,
            m: self.m,
            n: self.n,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn space(&self) -> &Space {
        &self.space
    }

    pub fn params(&self) -> HnswParams {
        HnswParams {
            m: self.m,
            ef_construction: self.ef_construction,
            seed: self.seed,
        }
    }

    /// Heap bytes of the structure, vectors included.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.vectors.heap_bytes()
            + self.links0.capacity() * 4
            + self.levels.capacity()
            + self.upper_off.capacity() * 4
            + self.upper.capacity() * 4
    }

    /// Greedy descent to level 1's best node, as the level-0 entry point.
    fn descend<O: Oracle>(&self, g: &Graph<'_, [u32]>, o: &O) -> (u32, f32) {
        let ep = (self.entry, o.dist(self.entry));
        greedy(g, o, ep, self.max_level, 1)
    }

    /// Unfiltered search with any distance oracle; the best `take` (id, distance) of a
    /// beam of width `max(ef, take)`. The index must not be empty.
    pub(crate) fn search_with<O: Oracle>(
        &self,
        o: &O,
        ef: usize,
        take: usize,
        s: &mut Scratch,
    ) -> Vec<(u32, f32)> {
        let g = self.graph();
        let ep = self.descend(&g, o);
        search_layer(&g, o, ep, ef.max(take), 0, s);
        s.pool.iter().take(take).collect()
    }

    /// Filtered search with any distance oracle; the best `take` allowed (id, distance).
    pub(crate) fn search_with_filter<O: Oracle, F: Fn(u32) -> bool + ?Sized>(
        &self,
        o: &O,
        ef: usize,
        take: usize,
        s: &mut Scratch,
        allow: &F,
    ) -> Vec<(u32, f32)> {
        let g = self.graph();
        let ep = self.descend(&g, o);
        search_layer_filtered(&g, o, ep, ef.max(take), s, allow)
            .into_iter()
            .take(take)
            .map(|(d, id)| (id, d))
            .collect()
    }

    /// The `k` nearest rows to `query` as (row id, distance), best first, searching with a
    /// beam of `max(ef, k)`. With a `filter`, only rows it accepts are returned (the walk
    /// still passes through the others). Distances are the internal ones (smaller is
    /// better; see [`Space::to_score`]).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(u32, f32)> {
        if self.n == 0 || k == 0 {
            return Vec::new();
        }
        with_scratch(|s| {
            let mut q = std::mem::take(&mut s.query);
            self.space.prepare_into(query, &mut q);
            let o = F32Oracle::new(&self.space, &q, self.vectors.as_f32());
            let out = match filter {
                None => self.search_with(&o, ef, k, s),
                Some(f) => self.search_with_filter(&o, ef, k, s, f),
            };
            s.query = q;
            out
        })
    }

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

/// Shared state of one build.
struct Builder<'a> {
    space: &'a Space,
    vectors: &'a [f32],
    stride: usize,
    graph: Graph<'a, [AtomicU32]>,
    levels: &'a [u8],
    efc: usize,
    locks: &'a [Mutex<()>],
    /// (entry point, its level).
    top: &'a Mutex<(u32, usize)>,
}

impl Builder<'_> {
    #[inline]
    fn row(&self, id: u32) -> &[f32] {
        let o = id as usize * self.stride;
        &self.vectors[o..o + self.stride]
    }

    #[inline]
    fn dist(&self, a: u32, b: u32) -> f32 {
        self.space.distance(self.row(a), self.row(b))
    }

    fn lock_node(&self, id: u32) -> MutexGuard<'_, ()> {
        lock(&self.locks[id as usize & (self.locks.len() - 1)])
    }

    /// Inserts node `q` (its vector and level are already in place).
    fn insert(&self, q: u32) {
        let lq = usize::from(self.levels[q as usize]);
        let (ep, max_level) = *lock(self.top);
        let o = F32Oracle::new(self.space, self.row(q), self.vectors);
        let g = &self.graph;
        let m = g.m;
        let mut cands: Vec<(f32, u32)> = Vec::with_capacity(self.efc + 1);
        let mut sel: Vec<u32> = Vec::with_capacity(m);
        with_scratch(|s| {
            let mut cur = (ep, o.dist(ep));
            if max_level > lq {
                cur = greedy(g, &o, cur, max_level, lq + 1);
            }
            for level in (0..=lq.min(max_level)).rev() {
                search_layer(g, &o, cur, self.efc, level, s);
                cands.clear();
                cands.extend(
                    s.pool
                        .iter()
                        .filter(|&(id, _)| id != q)
                        .map(|(id, d)| (d, id)),
                );
                if let Some(&(d, id)) = cands.first() {
                    cur = (id, d);
                }
                self.select(&cands, m, &mut sel);
                {
                    let _guard = self.lock_node(q);
                    self.set_list(q, level, &sel);
                }
                for &e in &sel {
                    self.connect(e, q, level);
                }
            }
        });
        if lq > max_level {
            let mut t = lock(self.top);
            if lq > t.1 {
                *t = (q, lq);
            }
        }
    }

    /// hnswlib's `getNeighborsByHeuristic2`: walking `cands` (ascending by distance to the
    /// base node), keep a candidate only if it is closer to the base node than to every
    /// candidate kept so far; at most `m`.
    fn select(&self, cands: &[(f32, u32)], m: usize, out: &mut Vec<u32>) {
        out.clear();
        if cands.len() < m {
            out.extend(cands.iter().map(|c| c.1));
            return;
        }
        for &(d, e) in cands {
            if out.len() >= m {
                break;
            }
            let ev = self.row(e);
            if out
                .iter()
                .all(|&r| self.space.distance(ev, self.row(r)) >= d)
            {
                out.push(e);
            }
        }
    }

    /// Overwrites `u`'s list at `level`; the caller holds `u`'s lock.
    fn set_list(&self, u: u32, level: usize, ids: &[u32]) {
        let (store, base, _) = self.graph.list(u, level);
        for (slot, &v) in store[base..base + ids.len()].iter().zip(ids) {
            slot.store(v, AtomicOrdering::Relaxed);
        }
        store[base - 1].store(ids.len() as u32, AtomicOrdering::Relaxed);
    }

    /// Adds the reverse link `e -> q` at `level`, pruning `e`'s list by the heuristic when
    /// it is full.
    fn connect(&self, e: u32, q: u32, level: usize) {
        let cap = if level == 0 {
            2 * self.graph.m
        } else {
            self.graph.m
        };
        let _guard = self.lock_node(e);
        let (store, base, cnt) = self.graph.list(e, level);
        if cnt < cap {
            store[base + cnt].store(q, AtomicOrdering::Relaxed);
            store[base - 1].store(cnt as u32 + 1, AtomicOrdering::Relaxed);
            return;
        }
        let mut cands: Vec<(f32, u32)> = Vec::with_capacity(cnt + 1);
        cands.push((self.dist(e, q), q));
        for slot in &store[base..base + cnt] {
            let v = slot.load(AtomicOrdering::Relaxed);
            cands.push((self.dist(e, v), v));
        }
        cands.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut sel = Vec::with_capacity(cap);
        self.select(&cands, cap, &mut sel);
        self.set_list(e, level, &sel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
