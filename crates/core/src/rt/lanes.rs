//! Fair scheduling of CPU-heavy work across requests: the compute seam's lanes.
//!
//! A heavy request (a search with a large `nq` over many rows) is cut into chunks of
//! about [`CHUNK_WORK`] multiply-adds, and every chunk waits for one of a few lanes
//! (as many as the machine has cores). Lanes are handed out first come, first served,
//! so a small request that arrives while a heavy one runs waits for one chunk, not for
//! the whole heavy request: the heavy request's next chunk queues behind it. Between
//! chunks a request checks its deadline, and a request whose future is dropped (the
//! client went away) simply asks for no more chunks — abandoned work stops within one
//! chunk.
//!
//! The number of requests admitted (queued or running) is bounded; past the bound a
//! request is refused at once ([`LaneError::Full`]) instead of queueing for ever.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Semaphore, SemaphorePermit};

use super::deadline::Deadline;

/// About how many multiply-adds one chunk does: a few milliseconds of one core, the
/// longest a small request waits behind a heavy one for a lane.
pub const CHUNK_WORK: usize = 1 << 21;

/// How many heavy requests a node admits at once (queued or running) by default.
pub const DEFAULT_MAX_ADMITTED: usize = 256;

/// Why a request got no lane.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaneError {
    #[error("request limit exceeded[limit={limit}]: {limit} CPU-heavy requests are already queued or running on this node; retry later")]
    Full { limit: usize },
    #[error("deadline exceeded before the work finished")]
    DeadlineExceeded,
}

/// The lanes CPU-heavy work runs in, and the bound on requests waiting for them.
#[derive(Debug)]
pub struct Lanes {
    slots: Semaphore,
    lanes: usize,
    admitted: AtomicUsize,
    max_admitted: usize,
}

impl Lanes {
    /// `lanes` chunks may run at once; at most `max_admitted` requests hold tickets.
    pub fn new(lanes: usize, max_admitted: usize) -> Self {
        crate::invariant_cheap!(lanes >= 1 && max_admitted >= 1, "lanes need room");
        Lanes {
            slots: Semaphore::new(lanes),
            lanes,
            admitted: AtomicUsize::new(0),
            max_admitted,
        }
    }

    /// One lane per core ([`super::compute_parallelism`]), the default admission bound.
    pub fn per_core() -> Self {
        Self::new(super::compute_parallelism(), DEFAULT_MAX_ADMITTED)
    }

    /// Admits a request that must finish by `deadline`, or refuses it when the bound
    /// is reached (or the deadline has already passed).
    pub fn admit(&self, deadline: Deadline) -> Result<Ticket<'_>, LaneError> {
        if deadline.expired() {
            return Err(LaneError::DeadlineExceeded);
        }
        let admitted = self
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_admitted).then_some(n + 1)
            });
        match admitted {
            Ok(_) => Ok(Ticket {
                lanes: self,
                deadline,
            }),
            Err(_) => Err(LaneError::Full {
                limit: self.max_admitted,
            }),
        }
    }

    /// Requests admitted now (queued or running).
    pub fn admitted(&self) -> usize {
        self.admitted.load(Ordering::Acquire)
    }

    /// How many lanes there are.
    pub fn lanes(&self) -> usize {
        self.lanes
    }
}

/// How many of `n` items go in one chunk when each costs about `unit_cost`
/// multiply-adds: enough to make a chunk about [`CHUNK_WORK`], at least one.
pub fn chunk_len(n: usize, unit_cost: usize) -> usize {
    (CHUNK_WORK / unit_cost.max(1)).clamp(1, n.max(1))
}

/// An admitted request: its place in the admission bound (given back on drop) and
/// its deadline.
#[derive(Debug)]
pub struct Ticket<'a> {
    lanes: &'a Lanes,
    deadline: Deadline,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let before = self.lanes.admitted.fetch_sub(1, Ordering::AcqRel);
        crate::invariant_cheap!(before >= 1, "a ticket was given back twice");
    }
}

impl Ticket<'_> {
    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// Waits (first come, first served) for a lane, until the deadline at most.
    async fn lane(&self) -> Result<SemaphorePermit<'_>, LaneError> {
        if self.deadline.expired() {
            return Err(LaneError::DeadlineExceeded);
        }
        match super::timeout(self.deadline.remaining(), self.lanes.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; a closed one could only mean shutdown.
            Ok(Err(_)) | Err(_) => Err(LaneError::DeadlineExceeded),
        }
    }

    /// Runs one chunk of owned work on the compute seam, in a lane.
    pub async fn compute<F, R>(&self, f: F) -> Result<R, LaneError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let lane = self.lane().await?;
        let r = super::compute(f).await;
        drop(lane);
        // Under the simulator the chunk ran inline: let the tasks it held up run.
        tokio::task::yield_now().await;
        Ok(r)
    }

    /// Runs one chunk of work over data borrowed under a lock, in a lane, off the
    /// async workers ([`super::compute_in_place`]): the chunk cannot move to another
    /// thread, so the thread it runs on stops being a worker for its length. Were it
    /// to run on the worker itself, the lanes (one per core, as many as the workers)
    /// could occupy every worker at once and starve the node's heartbeats, lease
    /// renewals and writes for as long as searches keep coming.
    pub async fn in_place<F: FnOnce() -> R, R>(&self, f: F) -> Result<R, LaneError> {
        let lane = self.lane().await?;
        let r = super::compute_in_place(f);
        drop(lane);
        // Inline under the simulator (and on a current-thread runtime): let the tasks
        // the chunk held up run.
        tokio::task::yield_now().await;
        Ok(r)
    }
}

#[cfg(test)]
mod tests;
