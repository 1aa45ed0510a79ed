//! A request's deadline: the instant by which its answer is of no use to the client.
//! Every hop of a read carries it, so each internal call is given the time left and
//! work whose client has given up stops. On the wire it travels as the time left (like
//! gRPC's `grpc-timeout`), never as an instant: roles do not share a clock, and under
//! the simulator each node's clock is its own.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{now, Instant};

/// The instant a request stops being worth answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        // An absurd budget (a hostile header) must not overflow the clock.
        let budget = budget.min(Duration::from_secs(365 * 24 * 3600));
        Deadline { at: now() + budget }
    }

    /// The time left; zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(now())
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        now() >= self.at
    }

    /// The earlier of two deadlines.
    pub fn min(self, other: Deadline) -> Deadline {
        if other.at < self.at {
            other
        } else {
            self
        }
    }
}

impl Serialize for Deadline {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let micros = u64::try_from(self.remaining().as_micros()).unwrap_or(u64::MAX);
        s.serialize_u64(micros)
    }
}

impl<'de> Deserialize<'de> for Deadline {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let micros = u64::deserialize(d)?;
        Ok(Deadline::after(Duration::from_micros(micros)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_deadline_travels_as_the_time_left() {
        let d = Deadline::after(Duration::from_millis(300));
        let bytes = postcard::to_allocvec(&d).unwrap();
        super::super::sleep(Duration::from_millis(100)).await;
        // Opened later, the copy ends later than the original: the time left is what
        // travels (the transit itself is the receiver's slack).
        let copy: Deadline = postcard::from_bytes(&bytes).unwrap();
        assert!(copy > d);
        assert!(copy.remaining() > Duration::from_millis(250));
        assert!(d.remaining() <= Duration::from_millis(200));
        super::super::sleep(Duration::from_millis(250)).await;
        assert!(d.expired());
        assert_eq!(d.remaining(), Duration::ZERO);
        assert!(!copy.expired());
    }

    #[tokio::test]
    async fn a_hostile_budget_does_not_overflow() {
        let d = Deadline::after(Duration::MAX);
        assert!(!d.expired());
        let soon = Deadline::after(Duration::ZERO);
        assert_eq!(d.min(soon), soon);
        assert!(soon.expired());
    }
}
