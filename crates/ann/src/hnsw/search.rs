//! Searching a built index: descent to level 1, then the level-0 beam search
//! (unfiltered) or the filtered walk, with any distance oracle.

use super::filtered::search_layer_filtered;
use super::graph::{F32Oracle, Graph, Oracle};
use super::walk::{greedy, search_layer};
use super::Hnsw;
use crate::util::{with_scratch, Scratch};

impl Hnsw {
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
}
