//! A FLAT search equals brute force: once the visible set is known exactly (after the
//! final Strong scan), a search's answer is judged against the exact top-k by squared
//! L2 distance, up to ties and float summation order.

use std::collections::{BTreeMap, BTreeSet};

use super::history::Key;
use super::violation::Violation;

/// Squared L2 distance; vectors of different lengths are infinitely far apart.
pub fn squared_l2(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Rank order: nearer first, ties by key ascending.
fn rank_order(a: &(Key, f32), b: &(Key, f32)) -> std::cmp::Ordering {
    a.1.total_cmp(&b.1).then(a.0.cmp(&b.0))
}

/// The exact top-k of `candidates` by squared L2 distance to `probe_vec`, ties broken
/// by key ascending.
pub fn brute_force_topk(
    candidates: &BTreeSet<Key>,
    probe_vec: &[f32],
    k: usize,
    vector_of: impl Fn(Key) -> Vec<f32>,
) -> Vec<(Key, f32)> {
    let mut all: Vec<(Key, f32)> = candidates
        .iter()
        .map(|&c| (c, squared_l2(probe_vec, &vector_of(c))))
        .collect();
    if k == 0 {
        return Vec::new();
    }
    if k < all.len() {
        // Partition first so a small k over many candidates doesn't sort them all.
        all.select_nth_unstable_by(k - 1, rank_order);
        all.truncate(k);
    }
    all.sort_by(rank_order);
    all
}

/// Whether two distances agree: within `eps`, relative to the magnitude above 1 (a
/// server summing in another order drifts in proportion to the distance).
fn close(a: f32, b: f32, eps: f32) -> bool {
    (a - b).abs() <= eps * 1f32.max(a.abs()).max(b.abs())
}

/// Accepts `got` if it is as good as the exact top-k `expected`: the same length, the
/// distances equal rank by rank within `eps` (so tied keys may come in either order),
/// no key twice, and each key's distance equal to its expected one; a key outside
/// `expected` is allowed only at the cut-off distance (a tie broken the other way).
/// It can't tell whether such a key is a real candidate: [`check_search_exact`] does.
pub fn compare_topk(expected: &[(Key, f32)], got: &[(Key, f32)], eps: f32) -> Result<(), String> {
    if got.len() != expected.len() {
        return Err(format!(
            "{} results where the exact top-k has {}",
            got.len(),
            expected.len()
        ));
    }
    for (rank, (e, g)) in expected.iter().zip(got).enumerate() {
        if !close(e.1, g.1, eps) {
            return Err(format!(
                "rank {rank}: key {} at distance {} where the exact top-k has key {} at {}",
                g.0, g.1, e.0, e.1
            ));
        }
    }
    let want: BTreeMap<Key, f32> = expected.iter().copied().collect();
    let cutoff = expected.last().map(|e| e.1);
    let mut seen = BTreeSet::new();
    for &(key, d) in got {
        if !seen.insert(key) {
            return Err(format!("key {key} returned twice"));
        }
        match want.get(&key) {
            Some(&w) if !close(w, d, eps) => {
                return Err(format!("key {key} at distance {d}, expected {w}"));
            }
            Some(_) => {}
            None if cutoff.is_some_and(|c| close(c, d, eps)) => {}
            None => {
                return Err(format!(
                    "key {key} at distance {d} is not in the exact top-k and not tied at its cut-off"
                ));
            }
        }
    }
    Ok(())
}

/// Judges one search result (keys with the distances the server returned) against a
/// brute-force search over `candidates`, the keys known to be visible: every key must
/// be a candidate at its true distance, and the whole must match the exact top-k up to
/// ties (see [`compare_topk`]). Meant for searches run when the visible set is known
/// exactly, e.g. after the final Strong read.
pub fn check_search_exact(
    op: u64,
    candidates: &BTreeSet<Key>,
    probe_vec: &[f32],
    k: usize,
    got: &[(Key, f32)],
    eps: f32,
    vector_of: impl Fn(Key) -> Vec<f32>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let bad = |reason| Violation::BadSearchResult { op, reason };
    for &(key, d) in got {
        if !candidates.contains(&key) {
            out.push(bad(format!("key {key} is not in the collection")));
            continue;
        }
        let true_d = squared_l2(probe_vec, &vector_of(key));
        if !close(true_d, d, eps) {
            out.push(bad(format!(
                "key {key} reported at distance {d}, its true distance is {true_d}"
            )));
        }
    }
    let expected = brute_force_topk(candidates, probe_vec, k, &vector_of);
    if let Err(reason) = compare_topk(&expected, got, eps) {
        out.push(bad(reason));
    }
    out
}
