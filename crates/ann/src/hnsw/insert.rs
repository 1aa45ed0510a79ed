//! Inserting one node into a graph under construction: its links on every level it
//! has, chosen by hnswlib's heuristic, and the pruned reverse links.

use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::sync::{Mutex, MutexGuard};

use super::build::{capacity, check_list, lock};
use super::graph::{F32Oracle, Graph, Oracle};
use super::walk::{greedy, search_layer};
use crate::distance::Space;
use crate::util::with_scratch;

/// Shared state of one build.
pub(super) struct Builder<'a> {
    pub(super) space: &'a Space,
    pub(super) vectors: &'a [f32],
    pub(super) stride: usize,
    pub(super) graph: Graph<'a, [AtomicU32]>,
    pub(super) levels: &'a [u8],
    pub(super) efc: usize,
    pub(super) locks: &'a [Mutex<()>],
    /// (entry point, its level).
    pub(super) top: &'a Mutex<(u32, usize)>,
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
    pub(super) fn insert(&self, q: u32) {
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
        check_list(
            self.levels,
            self.graph.m,
            u,
            level,
            ids.len(),
            ids.iter().copied(),
        );
        let (store, base, _) = self.graph.list(u, level);
        for (slot, &v) in store[base..base + ids.len()].iter().zip(ids) {
            slot.store(v, AtomicOrdering::Relaxed);
        }
        store[base - 1].store(ids.len() as u32, AtomicOrdering::Relaxed);
    }

    /// Adds the reverse link `e -> q` at `level`, pruning `e`'s list by the heuristic when
    /// it is full.
    fn connect(&self, e: u32, q: u32, level: usize) {
        let cap = capacity(self.graph.m, level);
        let _guard = self.lock_node(e);
        let (store, base, cnt) = self.graph.list(e, level);
        if cnt < cap {
            check_list(
                self.levels,
                self.graph.m,
                e,
                level,
                cnt + 1,
                std::iter::once(q),
            );
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
