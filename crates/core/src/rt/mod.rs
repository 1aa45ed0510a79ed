//! The runtime seam. Every source of nondeterminism that node code needs — clocks,
//! sleeping, spawning, randomness, fault points, CPU-heavy work and local disk — is
//! reached through this module, so the same code runs on real tokio in production and
//! inside the madsim simulator with reproducible seeds. `clippy.toml` forbids the direct
//! std/tokio/rand calls everywhere else.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod buggify;
pub mod deadline;
pub mod disk;
pub mod lanes;
pub mod par;
mod rng;

use std::future::Future;
use std::time::Duration;

pub use buggify::buggify;
pub use deadline::Deadline;
pub use lanes::{LaneError, Lanes, Ticket};
pub use rng::Rng;

/// Monotonic instant; simulated time under madsim.
pub type Instant = tokio::time::Instant;

/// Error returned by [`timeout`] when the deadline passes first.
pub type Elapsed = tokio::time::error::Elapsed;

/// Handle to a spawned task.
pub type JoinHandle<T> = tokio::task::JoinHandle<T>;

/// The current monotonic time.
pub fn now() -> Instant {
    tokio::time::Instant::now()
}

/// Milliseconds since the Unix epoch from the wall clock. Under madsim this is the
/// simulated wall clock (a per-seed point in 2022), so it replays bit for bit.
pub fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Sleeps for `d` (simulated time under madsim).
pub async fn sleep(d: Duration) {
    tokio::time::sleep(d).await
}

/// Lets other ready tasks run before this one continues.
pub async fn yield_now() {
    tokio::task::yield_now().await
}

/// Runs `f` with a deadline.
pub async fn timeout<F: Future>(d: Duration, f: F) -> Result<F::Output, Elapsed> {
    tokio::time::timeout(d, f).await
}

/// Spawns an async task on the current runtime (the current simulated node under madsim).
pub fn spawn<F>(f: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(f)
}

/// Runs CPU-heavy work (index builds, large scans) off the async workers. In production
/// this is tokio's blocking pool; under madsim it runs inline on the simulator thread,
/// because the simulator has no OS threads and must stay deterministic.
pub async fn compute<F, R>(f: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    #[cfg(madsim)]
    {
        f()
    }
    #[cfg(not(madsim))]
    {
        match tokio::task::spawn_blocking(f).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: the runtime is shutting down and drops this task too; there
            // is no result to give, so never resolve (`into_panic` would panic here).
            Err(_) => std::future::pending().await,
        }
    }
}

/// Runs CPU-heavy work over data borrowed by the calling task (segments read under a
/// lock) off the async workers: on tokio's multi-threaded runtime the calling worker
/// hands its other tasks to a fresh worker and becomes a blocking thread for the length
/// of `f` (`block_in_place`), so heartbeats, leases and writes keep being served while
/// `f` runs. Inline where that is impossible: under madsim (deterministic, one thread)
/// and on a current-thread runtime (tests), which has no other worker to hand to.
pub fn compute_in_place<F: FnOnce() -> R, R>(f: F) -> R {
    // `doctest`: rustdoc does not see `--cfg madsim` but links the simulator's tokio,
    // which has no runtime flavours; doctests never call this.
    #[cfg(any(madsim, doctest))]
    {
        f()
    }
    #[cfg(not(any(madsim, doctest)))]
    {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
            _ => f(),
        }
    }
}

/// How many threads CPU-heavy work may use at once: the machine's parallelism in
/// production, one under madsim.
pub fn compute_parallelism() -> usize {
    #[cfg(madsim)]
    {
        1
    }
    #[cfg(not(madsim))]
    {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    }
}

/// Runs a future to completion on a fresh single-threaded runtime: a simulated one
/// (seed 0) under madsim, real tokio otherwise. For tests and tools that start outside
/// any runtime, such as property tests.
pub fn block_on<F: Future>(f: F) -> F::Output {
    #[cfg(madsim)]
    {
        madsim::runtime::Runtime::with_seed_and_config(0, madsim::Config::default()).block_on(f)
    }
    #[cfg(not(madsim))]
    {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("cannot build a tokio runtime")
            .block_on(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn compute_returns_the_closure_result() {
        assert_eq!(compute(|| 6 * 7).await, 42);
    }

    #[tokio::test]
    async fn timeout_fires_on_a_slow_future() {
        let r = timeout(Duration::from_millis(5), sleep(Duration::from_secs(10))).await;
        assert!(r.is_err());
    }

    #[test]
    fn wall_clock_is_after_2020() {
        assert!(wall_clock_ms() > 1_577_836_800_000);
    }
}
