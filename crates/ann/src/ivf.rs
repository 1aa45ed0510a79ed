//! IVF: a k-means coarse quantizer splits the rows into `nlist` inverted lists; a search
//! ranks the centroids and scans the `nprobe` nearest lists.
//!
//! Training: k-means++ seeding then Lloyd iterations, in squared L2 (spherical for
//! COSINE: centroids are renormalized), on a seeded sample of at most
//! `train_per_list * nlist` rows. Rows are then assigned to lists by the index metric
//! (as faiss does for IP). Each list keeps its row ids and, for IVF_FLAT, its vectors
//! contiguously, in row order within the list, so a probe is one sequential scan.
//! Results are ordered by (distance, row id), so probing every list gives exactly the
//! FLAT answer.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use quiver_core::rt::Rng;
use quiver_core::search::distance::Metric;
use serde::{Deserialize, Serialize};

use crate::bitset::Bitset;
use crate::distance::{kernels, normalize, F32Kernel, Space};
use crate::error::AnnError;
use crate::flat::check_rows;
use crate::hnsw::{prefer_brute_force, DEFAULT_SEED};
use crate::util::{AlignedBuf, KBest};
use quiver_core::rt::par;

/// Rows per parallel work item in training and assignment.
const CHUNK: usize = 256;
/// Largest `nlist` accepted (Milvus's limit).
pub const MAX_NLIST: usize = 65536;

/// IVF build parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IvfParams {
    /// Number of lists (clamped to the number of rows).
    pub nlist: usize,
    /// Lloyd iterations after k-means++ seeding.
    pub iterations: usize,
    /// Training sample size per list (the sample is at most `nlist * train_per_list`).
    pub train_per_list: usize,
    pub seed: u64,
}

impl Default for IvfParams {
    fn default() -> Self {
        IvfParams {
            nlist: 128,
            iterations: 10,
            train_per_list: 256,
            seed: DEFAULT_SEED,
        }
    }
}

/// The nearest of `cents` (rows of `stride`) to `v` under `kern`: (index, distance).
fn nearest(kern: F32Kernel, v: &[f32], cents: &[f32], stride: usize) -> (u32, f32) {
    let mut best = (0u32, f32::INFINITY);
    for (c, cv) in cents.chunks_exact(stride).enumerate() {
        let d = kern(v, cv);
        if d < best.1 {
            best = (c as u32, d);
        }
    }
    best
}

/// k-means++ then Lloyd on a sample of the `n` prepared rows of `rows`; at most `k`
/// centroids (fewer only if the sample is smaller), padded rows.
fn kmeans(
    space: &Space,
    rows: &[f32],
    n: usize,
    k: usize,
    p: &IvfParams,
    threads: usize,
) -> Vec<f32> {
    let dimp = space.padded_dim();
    let mut rng = Rng::seed_from_u64(p.seed);
    // The draws happen in this order (sample, seeding, Lloyd's refills), which keeps a
    // build with a given seed reproducible.
    let max_train = k.saturating_mul(p.train_per_list.max(1)).max(k);
    let sample = train_sample(rows, n, dimp, max_train, &mut rng);
    let k = k.min(sample.len() / dimp);
    let mut cents = seed_plus_plus(&sample, dimp, k, &mut rng, threads);
    lloyd(space, &sample, &mut cents, p.iterations, &mut rng, threads);
    cents
}

/// A seeded sample of at most `max_train` of the `n` rows (stride `dimp`) without
/// replacement (partial Fisher-Yates), kept in row order; all rows if there are no more.
fn train_sample(rows: &[f32], n: usize, dimp: usize, max_train: usize, rng: &mut Rng) -> Vec<f32> {
    if n <= max_train {
        return rows[..n * dimp].to_vec();
    }
    let mut idx: Vec<u32> = (0..n as u32).collect();
    for i in 0..max_train {
        let j = i + rng.index(n - i);
        idx.swap(i, j);
    }
    let mut chosen = idx[..max_train].to_vec();
    chosen.sort_unstable();
    let mut out = Vec::with_capacity(max_train * dimp);
    for &r in &chosen {
        let r = r as usize;
        out.extend_from_slice(&rows[r * dimp..(r + 1) * dimp]);
    }
    out
}

/// k-means++ seeding of `k` centroids from the `sample` rows: each next centroid is
/// drawn with probability proportional to the squared distance to the nearest centroid
/// so far.
fn seed_plus_plus(
    sample: &[f32],
    dimp: usize,
    k: usize,
    rng: &mut Rng,
    threads: usize,
) -> Vec<f32> {
    let l2 = kernels().l2;
    let s = sample.len() / dimp;
    let row = |i: usize| &sample[i * dimp..(i + 1) * dimp];
    let mut cents = vec![0.0f32; k * dimp];
    let first = rng.index(s);
    cents[..dimp].copy_from_slice(row(first));
    let mut mind = vec![0.0f32; s];
    {
        let c0 = &cents[..dimp];
        par::parallel_chunks_mut(threads, &mut mind, CHUNK, |ci, chunk| {
            for (j, md) in chunk.iter_mut().enumerate() {
                *md = l2(row(ci * CHUNK + j), c0);
            }
        });
    }
    for c in 1..k {
        let pick = draw_by_weight(&mind, rng);
        cents[c * dimp..(c + 1) * dimp].copy_from_slice(row(pick));
        let cv = &cents[c * dimp..(c + 1) * dimp];
        par::parallel_chunks_mut(threads, &mut mind, CHUNK, |ci, chunk| {
            for (j, md) in chunk.iter_mut().enumerate() {
                let d = l2(row(ci * CHUNK + j), cv);
                if d < *md {
                    *md = d;
                }
            }
        });
    }
    cents
}

/// An index drawn with probability proportional to `weights` (uniformly when they sum
/// to zero or overflow).
fn draw_by_weight(weights: &[f32], rng: &mut Rng) -> usize {
    let s = weights.len();
    let total: f64 = weights.iter().map(|&x| f64::from(x)).sum();
    if total > 0.0 && total.is_finite() {
        let mut r = rng.next_f64() * total;
        for (i, &x) in weights.iter().enumerate() {
            r -= f64::from(x);
            if r < 0.0 {
                return i;
            }
        }
        return s - 1;
    }
    rng.index(s)
}

/// Up to `iterations` Lloyd steps on the `sample` rows, moving `cents` (padded rows);
/// stops early once no row changes list.
fn lloyd(
    space: &Space,
    sample: &[f32],
    cents: &mut [f32],
    iterations: usize,
    rng: &mut Rng,
    threads: usize,
) {
    let dimp = space.padded_dim();
    let l2 = kernels().l2;
    let s = sample.len() / dimp;
    let row = |i: usize| &sample[i * dimp..(i + 1) * dimp];
    let mut assign = vec![u32::MAX; s];
    for _ in 0..iterations {
        let changed = AtomicUsize::new(0);
        {
            let cents = &*cents;
            par::parallel_chunks_mut(threads, &mut assign, CHUNK, |ci, chunk| {
                let mut ch = 0;
                for (j, a) in chunk.iter_mut().enumerate() {
                    let best = nearest(l2, row(ci * CHUNK + j), cents, dimp).0;
                    if best != *a {
                        ch += 1;
                        *a = best;
                    }
                }
                changed.fetch_add(ch, Ordering::Relaxed);
            });
        }
        if changed.load(Ordering::Relaxed) == 0 {
            break;
        }
        recenter(space, sample, &assign, cents, rng);
    }
}

/// Moves every centroid to the mean of the sample rows assigned to it (renormalized for
/// COSINE); an empty list takes a random sample row.
fn recenter(space: &Space, sample: &[f32], assign: &[u32], cents: &mut [f32], rng: &mut Rng) {
    let (dim, dimp) = (space.dim(), space.padded_dim());
    let s = sample.len() / dimp;
    let k = cents.len() / dimp;
    let row = |i: usize| &sample[i * dimp..(i + 1) * dimp];
    let mut sums = vec![0.0f64; k * dimp];
    let mut counts = vec![0usize; k];
    for (i, &a) in assign.iter().enumerate() {
        let a = a as usize;
        counts[a] += 1;
        for (acc, &x) in sums[a * dimp..a * dimp + dim].iter_mut().zip(row(i)) {
            *acc += f64::from(x);
        }
    }
    for (c, &cnt) in counts.iter().enumerate() {
        let dst = c * dimp..c * dimp + dim;
        if cnt == 0 {
            let r = rng.index(s);
            cents[dst].copy_from_slice(&row(r)[..dim]);
        } else {
            let inv = 1.0 / cnt as f64;
            for (x, &acc) in cents[dst.clone()].iter_mut().zip(&sums[dst]) {
                *x = (acc * inv) as f32;
            }
        }
        if space.metric() == Metric::Cosine {
            normalize(&mut cents[c * dimp..c * dimp + dim]);
        }
    }
}

/// The coarse quantizer and the inverted lists' row ids.
#[derive(Debug, Clone)]
pub(crate) struct Coarse {
    pub(crate) nlist: usize,
    /// `nlist` padded rows.
    pub(crate) centroids: AlignedBuf,
    /// List `l` holds positions `offsets[l]..offsets[l + 1]`.
    pub(crate) offsets: Vec<u32>,
    /// Row id at each position.
    pub(crate) ids: Vec<u32>,
}

impl Coarse {
    /// Trains on the `n` prepared rows of `rows` and assigns every row to a list.
    pub(crate) fn build(
        space: &Space,
        rows: &[f32],
        n: usize,
        p: &IvfParams,
        threads: usize,
    ) -> Coarse {
        let dimp = space.padded_dim();
        if n == 0 {
            return Coarse {
                nlist: 0,
                centroids: AlignedBuf::zeroed(0),
                offsets: vec![0],
                ids: Vec::new(),
            };
        }
        let cents = kmeans(space, rows, n, p.nlist.clamp(1, n), p, threads);
        let nlist = cents.len() / dimp;
        let mut centroids = AlignedBuf::zeroed_f32(cents.len());
        centroids.as_f32_mut().copy_from_slice(&cents);

        let kern = space.kernel();
        let mut assign = vec![0u32; n];
        par::parallel_chunks_mut(threads, &mut assign, CHUNK, |ci, chunk| {
            for (j, a) in chunk.iter_mut().enumerate() {
                let r = ci * CHUNK + j;
                *a = nearest(kern, &rows[r * dimp..(r + 1) * dimp], &cents, dimp).0;
            }
        });
        let mut offsets = vec![0u32; nlist + 1];
        for &a in &assign {
            offsets[a as usize + 1] += 1;
        }
        for l in 0..nlist {
            offsets[l + 1] += offsets[l];
        }
        let mut fill: Vec<u32> = offsets[..nlist].to_vec();
        let mut ids = vec![0u32; n];
        for (r, &a) in assign.iter().enumerate() {
            let slot = &mut fill[a as usize];
            ids[*slot as usize] = r as u32;
            *slot += 1;
        }
        Coarse {
            nlist,
            centroids,
            offsets,
            ids,
        }
    }

    /// The `nprobe` lists whose centroids are nearest to prepared query `q`, nearest first.
    pub(crate) fn probe(&self, space: &Space, q: &[f32], nprobe: usize) -> Vec<u32> {
        let kern = space.kernel();
        let mut top = KBest::new(nprobe.min(self.nlist));
        for (c, cv) in self
            .centroids
            .as_f32()
            .chunks_exact(space.padded_dim())
            .enumerate()
        {
            let d = kern(q, cv);
            if d <= top.worst() {
                top.push(d, c as u32);
            }
        }
        top.into_pairs().into_iter().map(|p| p.0).collect()
    }

    /// Positions of list `l`.
    #[inline]
    pub(crate) fn range(&self, l: u32) -> Range<usize> {
        self.offsets[l as usize] as usize..self.offsets[l as usize + 1] as usize
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.centroids.heap_bytes() + self.offsets.capacity() * 4 + self.ids.capacity() * 4
    }
}

/// IVF_FLAT: inverted lists of full-precision vectors.
#[derive(Debug, Clone)]
pub struct IvfFlat {
    pub(crate) space: Space,
    pub(crate) n: usize,
    pub(crate) params: IvfParams,
    pub(crate) coarse: Coarse,
    /// Vectors in list order (position `p` holds row `coarse.ids[p]`).
    pub(crate) vectors: AlignedBuf,
}

impl IvfFlat {
    /// Builds over `data` (row-major, `data.len() / dim` rows; row id = position) with up
    /// to `threads` threads (pass `quiver_core::rt::compute_parallelism()`).
    pub fn build(
        metric: Metric,
        dim: usize,
        data: &[f32],
        params: &IvfParams,
        threads: usize,
    ) -> Result<IvfFlat, AnnError> {
        let space = Space::new(metric, dim)?;
        let n = check_rows(data, dim)?;
        check_ivf_params(params)?;
        let rows = space.load_rows(data);
        let coarse = Coarse::build(&space, rows.as_f32(), n, params, threads);
        let dimp = space.padded_dim();
        let mut vectors = AlignedBuf::zeroed_f32(n * dimp);
        {
            let src = rows.as_f32();
            for (dst, &r) in vectors.as_f32_mut().chunks_exact_mut(dimp).zip(&coarse.ids) {
                let r = r as usize;
                dst.copy_from_slice(&src[r * dimp..(r + 1) * dimp]);
            }
        }
        Ok(IvfFlat {
            space,
            n,
            params: *params,
            coarse,
            vectors,
        })
    }

    /// The `k` nearest rows among the `nprobe` nearest lists (optionally only those
    /// `filter` accepts) as (row id, distance), best first, ties by row id.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        nprobe: usize,
        filter: Option<&dyn Fn(u32) -> bool>,
    ) -> Vec<(u32, f32)> {
        if self.n == 0 || k == 0 {
            return Vec::new();
        }
        let q = self.space.prepare(query);
        let lists = self.coarse.probe(&self.space, &q, nprobe.max(1));
        let dimp = self.space.padded_dim();
        let kern = self.space.kernel();
        let data = self.vectors.as_f32();
        let mut top = KBest::new(k);
        for l in lists {
            for pos in self.coarse.range(l) {
                let id = self.coarse.ids[pos];
                if let Some(f) = filter {
                    if !f(id) {
                        continue;
                    }
                }
                let d = kern(&q, &data[pos * dimp..(pos + 1) * dimp]);
                if d <= top.worst() {
                    top.push(d, id);
                }
            }
        }
        top.into_pairs()
    }

    /// Search restricted to the rows set in `allowed`; below the brute-force selectivity
    /// (see [`crate::hnsw::BRUTE_FORCE_FRACTION`]) every list is scanned.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        nprobe: usize,
        allowed: &Bitset,
        allowed_count: usize,
    ) -> Vec<(u32, f32)> {
        let nprobe = if prefer_brute_force(allowed_count, self.n, k) {
            self.coarse.nlist
        } else {
            nprobe
        };
        let f: &dyn Fn(u32) -> bool = &|r| allowed.get(r as usize);
        self.search(query, k, nprobe, Some(f))
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Lists actually built (at most the requested `nlist`, at most the row count).
    pub fn nlist(&self) -> usize {
        self.coarse.nlist
    }

    pub fn space(&self) -> &Space {
        &self.space
    }

    pub fn params(&self) -> IvfParams {
        self.params
    }

    /// Heap bytes of the structure, vectors included.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.coarse.heap_bytes() + self.vectors.heap_bytes()
    }
}

pub(crate) fn check_ivf_params(p: &IvfParams) -> Result<(), AnnError> {
    if !(1..=MAX_NLIST).contains(&p.nlist) {
        return Err(AnnError::InvalidParam(format!(
            "nlist must be in 1..={MAX_NLIST}, got {}",
            p.nlist
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flat::FlatIndex;
    use crate::testutil::{clustered, mean_recall};

    fn params(nlist: usize) -> IvfParams {
        IvfParams {
            nlist,
            iterations: 8,
            train_per_list: 64,
            seed: 3,
        }
    }

    #[test]
    fn probing_every_list_equals_flat_exactly() {
        let (n, dim) = (1500, 24);
        let data = clustered(n, dim, 2);
        let queries = clustered(20, dim, 77);
        for metric in [Metric::L2, Metric::IP, Metric::Cosine] {
            let ivf = IvfFlat::build(metric, dim, &data, &params(20), 2).unwrap();
            let flat = FlatIndex::build(metric, dim, &data).unwrap();
            assert_eq!(ivf.nlist(), 20);
            for q in queries.chunks_exact(dim) {
                assert_eq!(
                    ivf.search(q, 10, ivf.nlist(), None),
                    flat.search(q, 10, None)
                );
            }
        }
    }

    #[test]
    fn partial_probe_has_good_recall_and_lists_partition_rows() {
        let (n, dim) = (2000, 16);
        let data = clustered(n, dim, 4);
        let ivf = IvfFlat::build(Metric::L2, dim, &data, &params(32), 1).unwrap();
        let flat = FlatIndex::build(Metric::L2, dim, &data).unwrap();
        let mut seen = ivf.coarse.ids.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..n as u32).collect::<Vec<_>>());
        let queries = clustered(30, dim, 8);
        let r = mean_recall(
            queries
                .chunks_exact(dim)
                .map(|q| (ivf.search(q, 10, 8, None), flat.search(q, 10, None))),
        );
        assert!(r >= 0.8, "recall {r}");
    }

    #[test]
    fn training_is_deterministic_and_filters_apply() {
        let dim = 8;
        let data = clustered(600, dim, 6);
        let a = IvfFlat::build(Metric::L2, dim, &data, &params(10), 1).unwrap();
        let b = IvfFlat::build(Metric::L2, dim, &data, &params(10), 3).unwrap();
        assert_eq!(a.coarse.centroids.as_f32(), b.coarse.centroids.as_f32());
        assert_eq!(a.coarse.ids, b.coarse.ids);
        let allowed = Bitset::from_fn(600, |i| i % 7 == 0);
        let got = a.search_filtered(&data[..dim], 5, 2, &allowed, allowed.count_ones());
        assert!(!got.is_empty() && got.iter().all(|x| x.0 % 7 == 0));
        let sparse = Bitset::from_fn(600, |i| i == 599);
        let got = a.search_filtered(&data[..dim], 5, 1, &sparse, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 599);
    }

    #[test]
    fn tiny_inputs() {
        let e = IvfFlat::build(Metric::L2, 3, &[], &params(4), 1).unwrap();
        assert_eq!(e.nlist(), 0);
        assert!(e.search(&[0.0; 3], 2, 4, None).is_empty());
        let two = IvfFlat::build(Metric::L2, 1, &[1.0, 2.0], &params(8), 1).unwrap();
        assert_eq!(two.nlist(), 2);
        let r = two.search(&[1.9], 1, 8, None);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, 1);
        assert!((r[0].1 - 0.01).abs() < 1e-5);
    }
}
