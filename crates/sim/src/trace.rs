//! Trace hashing. Every event a scenario records is folded into one hash; the scenario
//! prints `trace-hash <scenario> seed=<seed> <hex>`. The same seed must print the same
//! line on every run: if it does not, something escaped the runtime seam.

use std::fmt::Debug;

/// A running hash over a scenario's events.
#[derive(Debug, Clone)]
pub struct TraceHash {
    state: u64,
    events: u64,
}

impl Default for TraceHash {
    fn default() -> Self {
        TraceHash {
            state: 0xcbf2_9ce4_8422_2325,
            events: 0,
        }
    }
}

impl TraceHash {
    /// Folds one event (its `Debug` text) into the hash.
    pub fn record(&mut self, event: &impl Debug) {
        let text = format!("{event:?}");
        let h = xxhash_rust::xxh3::xxh3_64(text.as_bytes());
        self.state =
            xxhash_rust::xxh3::xxh3_64(&[self.state.to_le_bytes(), h.to_le_bytes()].concat());
        self.events += 1;
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn hex(&self) -> String {
        format!("{:016x}", self.state)
    }

    /// The line a scenario prints.
    pub fn line(&self, scenario: &str, seed: u64) -> String {
        format!("trace-hash {scenario} seed={seed} {}", self.hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_matters_and_equal_traces_hash_equal() {
        let mut a = TraceHash::default();
        let mut b = TraceHash::default();
        a.record(&(1, "x"));
        a.record(&(2, "y"));
        b.record(&(1, "x"));
        b.record(&(2, "y"));
        assert_eq!(a.hex(), b.hex());
        let mut c = TraceHash::default();
        c.record(&(2, "y"));
        c.record(&(1, "x"));
        assert_ne!(a.hex(), c.hex());
        assert_eq!(a.line("s", 7), format!("trace-hash s seed=7 {}", a.hex()));
    }
}
