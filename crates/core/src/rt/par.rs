//! Data parallelism for CPU-heavy work (index builds), the only place in Quiver that
//! starts OS threads.
//!
//! Callers pass `threads = rt::compute_parallelism()`, which is 1 under the
//! madsim simulator; with one thread (or under `cfg(madsim)` whatever the argument) every
//! function here runs inline on the calling thread, in index order, so simulated runs stay
//! deterministic and never touch OS threads. Otherwise work is spread over scoped threads
//! (`std::thread::scope`, joined before returning; the caller's thread works too), which
//! is how the build runs inside `rt::compute`'s blocking pool in production.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

fn inline(threads: usize, items: usize) -> bool {
    threads <= 1 || items <= 1 || cfg!(madsim)
}

/// Calls `f(i)` for every `i` in `0..n`, on up to `threads` threads. Items are handed out
/// one at a time from a shared counter, so give it coarse items when they are cheap.
pub fn parallel_for<F>(threads: usize, n: usize, f: F)
where
    F: Fn(usize) + Sync,
{
    if inline(threads, n) {
        for i in 0..n {
            f(i);
        }
        return;
    }
    let next = AtomicUsize::new(0);
    let worker = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            break;
        }
        f(i);
    };
    std::thread::scope(|s| {
        for _ in 1..threads.min(n) {
            s.spawn(worker);
        }
        worker();
    });
}

/// Splits `data` into `chunk`-sized pieces and calls `f(chunk_index, piece)` for each, on
/// up to `threads` threads. Chunk `i` starts at element `i * chunk`.
pub fn parallel_chunks_mut<T, F>(threads: usize, data: &mut [T], chunk: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    let chunk = chunk.max(1);
    let chunks = data.len().div_ceil(chunk);
    if inline(threads, chunks) {
        for (i, c) in data.chunks_mut(chunk).enumerate() {
            f(i, c);
        }
        return;
    }
    let work = Mutex::new(data.chunks_mut(chunk).enumerate());
    let worker = || loop {
        let next = work.lock().unwrap_or_else(|e| e.into_inner()).next();
        match next {
            Some((i, c)) => f(i, c),
            None => break,
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads.min(chunks) {
            s.spawn(worker);
        }
        worker();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_for_visits_every_item_once() {
        for threads in [1, 2, 4] {
            let hits: Vec<AtomicUsize> = (0..1000).map(|_| AtomicUsize::new(0)).collect();
            parallel_for(threads, hits.len(), |i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn parallel_chunks_cover_the_slice() {
        for threads in [1, 3] {
            let mut v = vec![0usize; 1001];
            parallel_chunks_mut(threads, &mut v, 64, |ci, c| {
                for (j, x) in c.iter_mut().enumerate() {
                    *x = ci * 64 + j;
                }
            });
            assert!(v.iter().enumerate().all(|(i, &x)| i == x));
        }
    }
}
