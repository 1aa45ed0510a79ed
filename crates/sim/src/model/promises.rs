//! The workload's promises (see the module docs): one client writes a key, its writes
//! on the key do not overlap, and nothing is written after a write that ended unknown.
//! The other checkers lean on these; a history that breaks one is a harness bug.

use super::history::{History, OpRecord, Outcome};
use super::index::Index;
use super::violation::Violation;

impl History {
    /// Reports writes that break the workload's promises: two clients writing one key,
    /// overlapping writes on one key, a write after an unknown (or pending) one.
    pub fn check_promises(&self) -> Vec<Violation> {
        let index = Index::new(self.ops());
        let mut out = Vec::new();
        for (&key, hist) in &index.by_key {
            let writes = &hist.writes;
            let owner = writes.first().map(|w| w.op.client);
            let mut prev: Option<&OpRecord> = None;
            for w in writes {
                let broken = |reason| Violation::WorkloadPromiseBroken {
                    op: w.op.id,
                    key,
                    reason,
                };
                if Some(w.op.client) != owner {
                    out.push(broken("a second client writes this key"));
                } else if let Some(p) = prev {
                    if matches!(p.outcome, Outcome::Unknown | Outcome::Pending) {
                        out.push(broken("written again after a write that ended unknown"));
                    } else if p.completed_at.is_some_and(|c| c > w.op.invoked_at) {
                        out.push(broken("overlaps the previous write of this key"));
                    }
                }
                prev = Some(w.op);
            }
        }
        out
    }
}
