//! The shard's safe timestamp and time ticks.
//!
//! tsafe advances two ways: a mutation advances it to its own timestamp once applied
//! (under the write lock, so everything before it is applied too), and a time tick of
//! the shard's pchannel advances it to the tick's timestamp. A read that needs a
//! snapshot newer than tsafe (a Strong read's guarantee is "now") waits for it,
//! asking the pchannel's ticker for an early tick rather than waiting out the interval.
//!
//! Why a tick at `T` may advance tsafe to `T` ([`Shard::advance_tick`]): the ticker took
//! `T` from the TSO, then appended the tick under the shard's epoch, and the append
//! succeeded, so no newer owner had fenced the log when `T` was issued and any newer
//! owner's mutations take later timestamps. Within this copy, a mutation takes its
//! timestamp while holding the write lock and releases it only once applied (or the
//! copy retired); the tick takes the write lock after `T` was issued, so a mutation
//! with a timestamp below `T` has been applied by then, and every later one takes a
//! timestamp above `T`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{Shard, ShardError, State};
use crate::tso::Timestamp;

/// Asks a pchannel's ticker for a tick now (the shards of one pchannel share one).
#[derive(Debug, Default)]
pub struct TickRequests {
    wake: tokio::sync::Notify,
}

impl TickRequests {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A reader is waiting: tick without waiting out the interval.
    pub fn request(&self) {
        self.wake.notify_one();
    }

    /// Waits for a request or `interval`, whichever comes first.
    pub async fn wait(&self, interval: Duration) {
        let _ = crate::rt::timeout(interval, self.wake.notified()).await;
    }
}

/// What readers waiting for tsafe watch: tsafe and whether the copy retired, as last
/// published, and a wake-up when either changes. (Not `tokio::sync::watch`: it spreads
/// its waiters over several queues at random, which a simulation cannot replay.)
#[derive(Debug, Default)]
pub(super) struct Watched {
    tsafe: AtomicU64,
    retired: AtomicBool,
    moved: tokio::sync::Notify,
}

impl Watched {
    fn seen(&self) -> (Timestamp, bool) {
        (
            Timestamp(self.tsafe.load(Ordering::Acquire)),
            self.retired.load(Ordering::Acquire),
        )
    }
}

impl Shard {
    /// Tells waiting readers what changed.
    pub(super) fn publish(&self, st: &State) {
        self.watch.tsafe.store(st.tsafe().0, Ordering::Release);
        self.watch.retired.store(st.retired, Ordering::Release);
        self.watch.moved.notify_waiters();
    }

    /// Advances tsafe to the time tick `ts` (see the module's note on why that is
    /// safe). A retired copy answers [`ShardError::Retired`].
    pub async fn advance_tick(&self, ts: Timestamp) -> Result<(), ShardError> {
        let mut st = self.state.write().await;
        self.check_live(&st)?;
        if ts > st.tsafe() {
            st.advance_tsafe(ts);
            self.publish(&st);
        }
        Ok(())
    }

    /// Stops this copy (its pchannel was fenced by a newer owner): nothing more runs on
    /// it and waiting readers are told at once.
    pub async fn retire(&self) {
        let mut st = self.state.write().await;
        st.retired = true;
        self.publish(&st);
    }

    /// Waits until tsafe reaches `at_least`, asking the pchannel's ticker for an early
    /// tick, and returns tsafe. Gives up after `timeout` (the pchannel's ticks fail, or
    /// its owner cannot reach the store) with a retriable error.
    pub async fn wait_tsafe(
        &self,
        at_least: Timestamp,
        timeout: Duration,
    ) -> Result<Timestamp, ShardError> {
        let deadline = crate::rt::now() + timeout;
        let mut asked = false;
        loop {
            // Registered before the check, so a change between the two still wakes us.
            let moved = self.watch.moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            match self.watch.seen() {
                (_, true) => return Err(self.retired()),
                (now, false) if now >= at_least => return Ok(now),
                _ => {}
            }
            if !asked {
                if let Some(t) = &self.deps.ticks {
                    t.request();
                }
                asked = true;
            }
            let left = deadline.saturating_duration_since(crate::rt::now());
            if crate::rt::timeout(left, moved).await.is_err() {
                return Err(ShardError::TsafeLag {
                    vchannel: self.cfg.vchannel.0.clone(),
                    wanted: at_least.0,
                    tsafe: self.watch.seen().0 .0,
                });
            }
        }
    }

    fn retired(&self) -> ShardError {
        ShardError::Retired {
            vchannel: self.cfg.vchannel.0.clone(),
        }
    }

    /// The shard's safe timestamp.
    pub async fn tsafe(&self) -> Timestamp {
        self.state.read().await.tsafe()
    }
}
