//! Index builds that failed, per (segment, index): when to try again and what to tell
//! users. A failure the data node calls deterministic (the build parameters or the
//! data make the build impossible: [`ErrorKind::InvalidInput`]) is final for that
//! index id: it is not retried, `describe_index` reports the index Failed with the
//! reason and searches of its field say so. Only dropping the index and creating it
//! again (a new id) clears it; a restart tries it once more. Any other failure (object
//! storage, a data node that is down) is retried with exponential backoff, never in a
//! hot loop, and meanwhile the segment is searched exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use quiver_core::ids::SegmentId;
use quiver_core::rt::Instant;

use super::IndexKey;
use crate::error::{ApiError, ErrorKind};

/// The first retry after a transient failure; each further failure doubles it.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two tries of a transiently failing build.
pub const MAX_RETRY: Duration = Duration::from_secs(60);

/// One build's last failure.
#[derive(Debug, Clone, PartialEq)]
struct Failure {
    reason: String,
    /// Deterministic: trying again cannot help.
    fatal: bool,
    /// Failures in a row.
    attempts: u32,
    /// Not tried again before this.
    retry_at: Instant,
}

/// The failed builds of every shard a streaming node owns.
#[derive(Debug, Default)]
pub struct BuildFailures {
    failed: BTreeMap<IndexKey, Failure>,
}

impl BuildFailures {
    /// Whether the build of `key` may be tried at `now`.
    pub fn may_try(&self, key: IndexKey, now: Instant) -> bool {
        match self.failed.get(&key) {
            None => true,
            Some(f) => !f.fatal && now >= f.retry_at,
        }
    }

    /// The build of `key` failed at `now` with `err`; returns when it may be tried
    /// again (`None`: never, for this index id).
    pub fn record(&mut self, key: IndexKey, err: &ApiError, now: Instant) -> Option<Instant> {
        let fatal = err.kind == ErrorKind::InvalidInput;
        let attempts = self.failed.get(&key).map_or(0, |f| f.attempts) + 1;
        let wait = FIRST_RETRY
            .saturating_mul(1 << (attempts - 1).min(16))
            .min(MAX_RETRY);
        let retry_at = now + wait;
        self.failed.insert(
            key,
            Failure {
                reason: err.reason.clone(),
                fatal,
                attempts,
                retry_at,
            },
        );
        quiver_core::invariant_cheap!(
            fatal || !self.may_try(key, now),
            "a transient failure is not retried at once"
        );
        (!fatal).then_some(retry_at)
    }

    /// The build of `key` succeeded: its failures are forgotten.
    pub fn clear(&mut self, key: IndexKey) {
        self.failed.remove(&key);
    }

    /// The final failure of index `index` on any of `segments`, if there is one: the
    /// segment and the reason.
    pub fn fatal_of(
        &self,
        index: i64,
        mut segments: impl Iterator<Item = SegmentId>,
    ) -> Option<(SegmentId, String)> {
        segments.find_map(|seg| {
            self.failed
                .get(&(seg, index))
                .filter(|f| f.fatal)
                .map(|f| (seg, f.reason.clone()))
        })
    }
}

#[cfg(test)]
mod tests;
