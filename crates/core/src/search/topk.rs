//! Top-k selection and reduce. Order is by distance (smaller better, see
//! [`Metric::to_distance`](super::Metric::to_distance)), ties broken by primary key
//! ascending, so results are exact and deterministic however segments are split.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};

use crate::batch::Pk;
use crate::ids::SegmentId;

/// One search result.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hit {
    pub pk: Pk,
    /// The score the user sees (squared L2, IP or cosine).
    pub score: f32,
    /// Smaller is better; derived from `score` and the metric.
    pub distance: f32,
    pub segment: SegmentId,
    pub row: u32,
}

/// The total order of hits: best first.
pub fn hit_order(a: &Hit, b: &Hit) -> Ordering {
    a.distance
        .total_cmp(&b.distance)
        .then_with(|| a.pk.cmp(&b.pk))
}

struct Worst(Hit);
impl PartialEq for Worst {
    fn eq(&self, o: &Self) -> bool {
        hit_order(&self.0, &o.0) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Worst {
    fn cmp(&self, o: &Self) -> Ordering {
        hit_order(&self.0, &o.0)
    }
}

/// Keeps the best `k` hits seen, at most one per primary key (a key inserted twice
/// must not crowd out other keys, or a reduce of several lists could return fewer
/// than `k` results while more exist).
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Worst>,
    members: HashMap<Pk, f32>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
            members: HashMap::with_capacity(k + 1),
        }
    }

    /// The distance a new hit must beat (or tie) to enter, once full.
    #[inline]
    pub fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::INFINITY
        } else {
            self.heap.peek().map_or(f32::INFINITY, |w| w.0.distance)
        }
    }

    pub fn push(&mut self, hit: Hit) {
        if self.k == 0 {
            return;
        }
        if let Some(&have) = self.members.get(&hit.pk) {
            if have.total_cmp(&hit.distance) != Ordering::Greater {
                return;
            }
            // A better row of a key already held: replace it (rare, so O(k) is fine).
            self.heap.retain(|w| w.0.pk != hit.pk);
            self.members.remove(&hit.pk);
        }
        if self.heap.len() >= self.k {
            match self.heap.peek() {
                Some(top) if hit_order(&hit, &top.0) == Ordering::Less => {
                    if let Some(out) = self.heap.pop() {
                        self.members.remove(&out.0.pk);
                    }
                }
                _ => return,
            }
        }
        self.members.insert(hit.pk.clone(), hit.distance);
        self.heap.push(Worst(hit));
    }

    /// Best first.
    pub fn into_sorted(self) -> Vec<Hit> {
        let mut v: Vec<Hit> = self.heap.into_iter().map(|w| w.0).collect();
        v.sort_by(hit_order);
        v
    }
}

/// Merges result lists (each for the same query) into the best `k`, keeping only the
/// best hit of each primary key.
pub fn reduce(lists: Vec<Vec<Hit>>, k: usize) -> Vec<Hit> {
    let mut all: Vec<Hit> = lists.into_iter().flatten().collect();
    all.sort_by(hit_order);
    let mut seen = HashSet::new();
    all.retain(|h| seen.insert(h.pk.clone()));
    all.truncate(k);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hit(pk: i64, d: f32) -> Hit {
        Hit {
            pk: Pk::Int(pk),
            score: d,
            distance: d,
            segment: SegmentId(0),
            row: 0,
        }
    }

    proptest! {
        #[test]
        fn split_then_reduce_equals_global_topk(
            ds in proptest::collection::vec(0u8..20, 0..200),
            parts in 1usize..6,
            k in 0usize..30,
        ) {
            // Keys repeat (i % 37) so duplicates of a key land in different lists.
            let hits: Vec<Hit> = ds.iter().enumerate().map(|(i, &d)| hit((i % 37) as i64, d as f32)).collect();
            let mut global = TopK::new(k);
            for h in &hits { global.push(h.clone()); }
            let want = global.into_sorted();
            let mut brute = hits.clone();
            brute.sort_by(hit_order);
            let mut seen = HashSet::new();
            brute.retain(|h| seen.insert(h.pk.clone()));
            brute.truncate(k);
            prop_assert_eq!(&want, &brute);
            let mut lists = vec![];
            for p in 0..parts {
                let mut t = TopK::new(k);
                for h in hits.iter().skip(p).step_by(parts) { t.push(h.clone()); }
                lists.push(t.into_sorted());
            }
            prop_assert_eq!(reduce(lists, k), want);
        }
    }

    #[test]
    fn ties_break_by_pk_and_duplicates_collapse() {
        let r = reduce(
            vec![
                vec![hit(5, 1.0), hit(3, 1.0)],
                vec![hit(3, 0.5), hit(9, 2.0)],
            ],
            3,
        );
        assert_eq!(
            r.iter().map(|h| h.pk.clone()).collect::<Vec<_>>(),
            vec![Pk::Int(3), Pk::Int(5), Pk::Int(9)]
        );
        assert_eq!(r[0].distance, 0.5);
    }
}
