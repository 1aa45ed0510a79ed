//! Operation histories recorded by simulated clients, and the checks that judge them
//! against a reference model of the collection.
//!
//! A client records each operation when it invokes it ([`History::invoke`]) and again
//! when it learns how it ended: acknowledged ([`History::ack`], [`History::ack_read`]),
//! refused (a definite error: the operation did not happen, [`History::refuse`]) or
//! unknown (a timeout, a crash, an I/O error after the WAL may already hold it: the
//! operation may take effect, possibly much later, [`History::unknown`]). An operation
//! still pending when the checks run is treated as unknown.
//!
//! # The model
//!
//! A key is either present or absent. Inserts and upserts make it present (a key's
//! vector is a pure function of the key, so both write the same value), deletes make it
//! absent. Before any write a key is absent. For a window of real time (a read's
//! `[invoked, completed]`, or the end of the run) each key has a set of possible states:
//! * an acknowledged write that completed before the window opened is in effect: it sets
//!   the state definitely (unless an earlier write may still land, see below);
//! * a refused write changes nothing;
//! * a write invoked before the window closed but not completed before it opened may or
//!   may not be visible inside it, so its state joins the possible set;
//! * a pending or unknown write may land at any later moment, so from its invocation on
//!   its state stays possible for ever.
//!
//! A state is *definite* when only one is possible; the checks judge definite states and
//! leave uncertain ones alone, except for the phantom rule: a key seen anywhere must
//! have had at least one non-refused insert or upsert invoked before it was seen.
//!
//! # What the workload promises (the checks rely on it)
//!
//! * Each client owns a disjoint set of keys and runs one operation at a time, so the
//!   writes on one key are totally ordered by invocation and never overlap.
//! * After a write on a key ends unknown, the client never writes that key again (the
//!   key's state is uncertain for ever after). Deletes are only sent for keys the client
//!   believes present, inserts only for keys never written before; upserts may target
//!   any owned key.
//! * Reads and searches may overlap writes of other clients, never of their own client.
//!
//! The checks lean on one writer per key, no overlapping writes on a key and nothing
//! written after an unknown write; [`History::check_promises`] reports a history that
//! breaks those (the other checks stay conservative on it, but it is a harness bug).
//! The insert and delete rules only keep the workload inside what the model describes
//! (an insert of an existing key would make a duplicate row in Milvus).
//!
//! # Cost
//!
//! Each read is judged against every key it must agree with, so a run costs about
//! (reads x keys); keys whose writes all ended before a read began take a shortcut.
//! 500 full scans of 5,000 keys check in about half a second unoptimised.
//!
//! # Equal timestamps
//!
//! Simulated time does not move between a response and the client's next call, so two
//! events often share an instant. Between different clients an equal time is
//! ambiguous and is treated as overlap; within one client the operation ids (assigned
//! in invocation order) give the true order, since a client is sequential.

//!
//! # Layout
//!
//! [`History`] and the operation types live in `history`; `index` and `window` work out
//! a key's possible states in a window of real time, which every checker shares. Each
//! rule has its own module: `promises` (the workload kept its promises),
//! `final_state` with `lost_writes`, `deletes` and `phantoms` (the state at the end),
//! `reads` with `levels` (what each consistency level must agree with), `search_probe`
//! (a Strong search finds its probe), `timestamps` (commit timestamps rise in real-time
//! order) and `exact_search` (a FLAT search equals brute force). [`Violation`] and its
//! one-line messages are in `violation`.

mod deletes;
mod exact_search;
mod final_state;
mod history;
mod index;
mod levels;
mod lost_writes;
mod phantoms;
mod promises;
mod reads;
mod search_probe;
mod timestamps;
mod violation;
mod window;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

pub use exact_search::{brute_force_topk, check_search_exact, compare_topk, squared_l2};
pub use history::{History, Key, Level, Nanos, OpKind, OpRecord, Outcome};
pub use violation::Violation;

/// Knobs for the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckConfig {
    /// The staleness bound the server promises for Bounded reads.
    pub staleness: Nanos,
    /// Extra allowance on top of `staleness` (time-tick granularity, scheduling).
    pub slack: Nanos,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            staleness: 5_000_000_000,
            slack: 1_000_000_000,
        }
    }
}

impl History {
    /// Runs every check.
    pub fn check_all(&self, final_visible: &BTreeSet<Key>, cfg: &CheckConfig) -> Vec<Violation> {
        let mut out = self.check_promises();
        out.extend(self.check_final(final_visible));
        out.extend(self.check_reads(cfg));
        out.extend(self.check_searches());
        out.extend(self.check_timestamps());
        out
    }
}
