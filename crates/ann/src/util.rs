//! Internal building blocks shared by the indexes: a 64-byte aligned buffer for vectors
//! and codes, `Vec`s on huge pages where the kernel allows it (link arrays), the bounded
//! result lists and the HNSW candidate pool used by searches, the epoch-stamped visited
//! set, per-thread search scratch and software prefetch.

use std::cell::RefCell;
use std::fmt;

/// One cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A byte buffer whose start is 64-byte aligned, viewed as `f32`s (vectors) or bytes
/// (SQ8 codes). Rows are padded to a multiple of 8 elements, so with 128-dim vectors every
/// row starts on a cache line.
#[derive(Clone, Default)]
pub(crate) struct AlignedBuf {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedBuf {
    /// `bytes` zero bytes.
    pub(crate) fn zeroed(bytes: usize) -> Self {
        AlignedBuf {
            lines: huge_vec(bytes.div_ceil(64), || Line([0; 64])),
            len: bytes,
        }
    }

    /// `count` zero floats.
    pub(crate) fn zeroed_f32(count: usize) -> Self {
        Self::zeroed(count * 4)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        // SAFETY: `lines` holds at least `len` initialized bytes (each Line is 64 plain
        // bytes, no padding); for an empty Vec the pointer is dangling but aligned, which
        // is fine for a zero-length slice.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<u8>(), self.len) }
    }

    pub(crate) fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_bytes`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<u8>(), self.len) }
    }

    pub(crate) fn as_f32(&self) -> &[f32] {
        // SAFETY: the storage is 64-byte aligned (so 4-byte aligned), holds at least
        // `len / 4 * 4` initialized bytes, and every bit pattern is a valid f32.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<f32>(), self.len / 4) }
    }

    pub(crate) fn as_f32_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_f32`, and `&mut self` makes the borrow unique.
        unsafe {
            std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f32>(), self.len / 4)
        }
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.lines.capacity() * 64
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}

/// Size of a transparent huge page (x86-64 and most aarch64 kernels).
const HUGE_PAGE: usize = 2 << 20;

/// A vector of `len` values made by `fill`, whose memory the kernel is asked to back with
/// transparent huge pages before `fill` writes it (for fresh memory from `mmap`, as
/// allocations this large are, that is before its first touch).
///
/// Why: a graph search reads vectors, codes and neighbour lists at random across the
/// whole index, so with 4 KiB pages nearly every row read also misses the TLB (100k
/// rows of 384 bytes span ~9,400 pages; a core's second-level TLB holds a few thousand).
/// 2 MiB pages cut that to ~20. Kernels set to `transparent_hugepage=madvise` (e.g.
/// Ubuntu's default, and this project's CI machines) only do this for regions that ask.
/// It is a hint: where it is refused or unsupported, nothing changes but speed.
pub(crate) fn huge_vec<T>(len: usize, fill: impl FnMut() -> T) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(len);
    advise_huge_pages(v.as_ptr().cast::<u8>(), len * std::mem::size_of::<T>());
    v.resize_with(len, fill);
    v
}

/// Asks for huge pages on the whole 2 MiB pages inside `[p, p + bytes)`.
fn advise_huge_pages(p: *const u8, bytes: usize) {
    #[cfg(target_os = "linux")]
    {
        let start = (p as usize).next_multiple_of(HUGE_PAGE);
        let end = (p as usize + bytes) / HUGE_PAGE * HUGE_PAGE;
        if end > start {
            // SAFETY: the range lies inside one live allocation of ours, and MADV_HUGEPAGE
            // only changes how the kernel backs it, never its contents or validity. The
            // result is ignored on purpose: a refusal just leaves 4 KiB pages.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (p, bytes, HUGE_PAGE);
    }
}

/// Software prefetch of `lines` cache lines starting at `p` into L1. A hint only: it never
/// faults, whatever the address, so `p` may be computed with wrapping arithmetic.
#[inline(always)]
pub(crate) fn prefetch_lines(p: *const u8, lines: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for l in 0..lines {
            // SAFETY: PREFETCHT0 is architecturally a hint and cannot fault.
            unsafe { _mm_prefetch(p.wrapping_add(l * 64).cast::<i8>(), _MM_HINT_T0) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (p, lines);
    }
}

/// The best `k` (distance, id) pairs seen, ascending by distance then id, so results are
/// exact and deterministic whatever the scan order. Used by exact scans, IVF and re-ranking.
pub(crate) struct KBest {
    k: usize,
    items: Vec<(f32, u32)>,
}

impl KBest {
    pub(crate) fn new(k: usize) -> Self {
        KBest {
            k,
            items: Vec::with_capacity(k.saturating_add(1).min(1 << 16)),
        }
    }

    /// A candidate must be at most this far to enter (ties are settled by id in `push`).
    #[inline]
    pub(crate) fn worst(&self) -> f32 {
        if self.k == 0 {
            f32::NEG_INFINITY
        } else if self.items.len() < self.k {
            f32::INFINITY
        } else {
            self.items[self.k - 1].0
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, d: f32, id: u32) {
        if self.k == 0 {
            return;
        }
        if self.items.len() >= self.k {
            let (wd, wid) = self.items[self.k - 1];
            if !(d < wd || (d == wd && id < wid)) {
                return;
            }
            self.items.truncate(self.k - 1);
        }
        let pos = self
            .items
            .partition_point(|&(x, i)| x < d || (x == d && i < id));
        self.items.insert(pos, (d, id));
    }

    /// Best first, as (id, distance).
    pub(crate) fn into_pairs(self) -> Vec<(u32, f32)> {
        self.items.into_iter().map(|(d, id)| (id, d)).collect()
    }
}

/// Bit 31 of a pool id marks a candidate as expanded; row ids stay below 2^31.
const CHECKED: u32 = 1 << 31;

/// The bounded candidate list of a graph search (the "linear pool" of NGT/glass): the
/// best `cap` nodes found so far, sorted by distance, with a cursor at the best one not
/// yet expanded. It replaces hnswlib's two heaps: a node worse than the `cap`-th is never
/// expanded by hnswlib either, so the search visits the same nodes with less work.
#[derive(Default)]
pub(crate) struct Pool {
    /// (distance, id) pairs, best first: one array, so an insertion shifts once.
    items: Vec<(f32, u32)>,
    size: usize,
    cur: usize,
    cap: usize,
}

impl Pool {
    pub(crate) fn reset(&mut self, cap: usize) {
        self.cap = cap.max(1);
        self.size = 0;
        self.cur = 0;
        if self.items.len() < self.cap + 1 {
            self.items.resize(self.cap + 1, (0.0, 0));
        }
    }

    /// Offers a node; false if it is not among the best `cap`.
    #[inline]
    pub(crate) fn insert(&mut self, id: u32, d: f32) -> bool {
        // A NaN distance (inf - inf from overflowing inputs) ranks last, so the pool
        // stays sorted: compared as is, it would stop every later offer moving past it.
        let d = if d.is_nan() { f32::INFINITY } else { d };
        let size = self.size;
        if size == self.cap && d >= self.items[size - 1].0 {
            // Not strictly better than the worst kept.
            return false;
        }
        // Insertion-sort step from the back: most offers that get in land near the
        // end, so this walks a few slots where a binary search plus a memmove call
        // cost a fixed ~50 cycles.
        let mut lo = if size == self.cap { size - 1 } else { size };
        while lo > 0 && self.items[lo - 1].0 > d {
            self.items[lo] = self.items[lo - 1];
            lo -= 1;
        }
        self.items[lo] = (d, id);
        if size < self.cap {
            self.size = size + 1;
        }
        if lo < self.cur {
            self.cur = lo;
        }
        true
    }

    /// The best node not yet expanded, marking it expanded.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<u32> {
        if self.cur >= self.size {
            return None;
        }
        let id = self.items[self.cur].1;
        self.items[self.cur].1 = id | CHECKED;
        let mut c = self.cur + 1;
        while c < self.size && self.items[c].1 & CHECKED != 0 {
            c += 1;
        }
        self.cur = c;
        Some(id)
    }

    /// The node `pop` would return next, if any.
    #[inline]
    pub(crate) fn peek(&self) -> Option<u32> {
        if self.cur < self.size {
            Some(self.items[self.cur].1)
        } else {
            None
        }
    }

    /// The pool, best first, as (id, distance).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, f32)> + '_ {
        self.items[..self.size]
            .iter()
            .map(|&(d, id)| (id & !CHECKED, d))
    }
}

/// Visited marks for a graph search: one u16 stamp per node, compared against the
/// current epoch, so clearing is a counter increment (a full reset every 65535 searches).
/// u16 rather than u32 halves the footprint (hnswlib does the same), which matters
/// because these reads are random.
#[derive(Default)]
pub(crate) struct Visited {
    marks: Vec<u16>,
    epoch: u16,
}

impl Visited {
    pub(crate) fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        if self.epoch == u16::MAX {
            self.marks.fill(0);
            self.epoch = 1;
        } else {
            self.epoch += 1;
        }
    }

    /// Marks `i`; true if it was not marked in this epoch. Stores the mark either way,
    /// so callers can use the answer without branching on it.
    #[inline(always)]
    pub(crate) fn insert(&mut self, i: u32) -> bool {
        let m = &mut self.marks[i as usize];
        let new = *m != self.epoch;
        *m = self.epoch;
        new
    }
}

/// Reusable per-thread search state, so a search allocates nothing but its result.
#[derive(Default)]
pub(crate) struct Scratch {
    pub(crate) visited: Visited,
    pub(crate) pool: Pool,
    /// The prepared (padded, normalized) query.
    pub(crate) query: Vec<f32>,
    /// The 16-bit query table of an integer SQ8 search.
    pub(crate) itable: Vec<i16>,
    /// Unvisited neighbours of the node being expanded.
    pub(crate) buf: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch (a fresh one if it is already in use, e.g. when a
/// filter callback searches another index).
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut guard) => f(&mut guard),
        Err(_) => f(&mut Scratch::default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_core::rt::Rng;

    #[test]
    fn pool_keeps_the_best_sorted_and_expands_in_order() {
        let mut rng = Rng::seed_from_u64(3);
        let mut p = Pool::default();
        p.reset(8);
        let mut all = vec![];
        for id in 0..100u32 {
            let d = rng.next_f32();
            all.push((d, id));
            p.insert(id, d);
        }
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        let got: Vec<u32> = p.iter().map(|x| x.0).collect();
        let want: Vec<u32> = all[..8].iter().map(|x| x.1).collect();
        assert_eq!(got, want);
        // Expansion goes best first; a better insert rewinds the cursor.
        assert_eq!(p.pop(), Some(want[0]));
        assert_eq!(p.pop(), Some(want[1]));
        p.insert(1000, -1.0);
        assert_eq!(p.peek(), Some(1000));
        assert_eq!(p.pop(), Some(1000));
        assert_eq!(p.pop(), Some(want[2]));
        // The full pool dropped its worst entry for 1000: want[3..7] remain.
        let mut rest = vec![];
        while let Some(id) = p.pop() {
            rest.push(id);
        }
        assert_eq!(rest, want[3..7].to_vec());
    }

    #[test]
    fn kbest_orders_by_distance_then_id() {
        let mut k = KBest::new(3);
        for (d, id) in [(2.0, 9), (1.0, 5), (1.0, 3), (3.0, 1), (1.0, 4), (0.5, 7)] {
            if d <= k.worst() {
                k.push(d, id);
            }
        }
        assert_eq!(k.into_pairs(), vec![(7, 0.5), (3, 1.0), (4, 1.0)]);
        let mut z = KBest::new(0);
        z.push(1.0, 1);
        assert!(z.into_pairs().is_empty());
    }

    #[test]
    fn pool_matches_a_sorted_list_with_ties_and_pops() {
        let mut rng = Rng::seed_from_u64(9);
        for cap in [1usize, 2, 5, 33] {
            let mut p = Pool::default();
            p.reset(cap);
            // The model: best `cap` by distance, later equal offers after earlier ones.
            let mut model: Vec<(f32, u32)> = vec![];
            let mut popped = std::collections::HashSet::new();
            for id in 0..400u32 {
                // Ties, and now and then a NaN, which must rank as +inf.
                let offered = if rng.index(50) == 0 {
                    f32::NAN
                } else {
                    rng.index(12) as f32
                };
                let d = if offered.is_nan() {
                    f32::INFINITY
                } else {
                    offered
                };
                let full = model.len() == cap;
                let admitted = p.insert(id, offered);
                assert_eq!(admitted, !full || d < model[cap - 1].0, "cap {cap} id {id}");
                if admitted {
                    let at = model.partition_point(|x| x.0 <= d);
                    model.insert(at, (d, id));
                    model.truncate(cap);
                }
                let got: Vec<(f32, u32)> = p.iter().map(|(i, d)| (d, i)).collect();
                assert_eq!(got, model, "cap {cap} id {id}");
                if rng.index(4) == 0 {
                    // Expansion takes the best entry not yet expanded.
                    let want = model.iter().map(|x| x.1).find(|i| !popped.contains(i));
                    assert_eq!(p.pop(), want, "cap {cap} id {id}");
                    popped.extend(want);
                }
            }
        }
    }

    #[test]
    fn huge_vec_holds_what_it_was_filled_with() {
        // Small (no whole huge page inside) and large (several) allocations alike.
        for len in [0usize, 1, 1000, 3 << 20] {
            let mut next = 0u32;
            let v = huge_vec(len, || {
                next = next.wrapping_add(7);
                next
            });
            assert_eq!(v.len(), len);
            assert!(v.iter().enumerate().all(|(i, &x)| x == (i as u32 + 1) * 7));
        }
        let b = AlignedBuf::zeroed(5 << 20);
        assert!(b.as_bytes().iter().all(|&x| x == 0));
    }

    #[test]
    fn visited_epochs_wrap() {
        let mut v = Visited::default();
        for _ in 0..70_000 {
            v.reset(4);
            assert!(v.insert(2));
            assert!(!v.insert(2));
        }
    }

    #[test]
    fn aligned_buf_is_aligned() {
        let mut b = AlignedBuf::zeroed_f32(10);
        assert_eq!(b.as_f32().as_ptr() as usize % 64, 0);
        b.as_f32_mut()[9] = 1.5;
        assert_eq!(b.as_f32().len(), 10);
        assert_eq!(b.as_bytes().len(), 40);
        assert_eq!(b.as_f32()[9], 1.5);
    }
}
