//! Commit timestamps rise in real-time order: if acknowledged write A completed before
//! acknowledged write B was invoked, A's commit timestamp is smaller than B's.

use std::collections::BTreeMap;

use super::history::{History, Nanos, OpRecord, Outcome};
use super::violation::Violation;

impl History {
    /// Commit timestamps respect real time: if acknowledged write A completed before
    /// acknowledged write B was invoked, A's timestamp is smaller. Sweeps the writes in
    /// invocation order with the running maximum over those completed before (strictly
    /// before for other clients; for the same client, any earlier op, since a client is
    /// sequential and its next call often starts at the same simulated instant).
    /// Lists the first few regressions only.
    pub fn check_timestamps(&self) -> Vec<Violation> {
        const LISTED: usize = 5;
        let writes = self.stamped();
        let mut by_invoke: Vec<&Stamped> = writes.iter().collect();
        by_invoke.sort_by_key(|w| (w.op.invoked_at, w.op.id));
        let mut by_done: Vec<&Stamped> = writes.iter().collect();
        by_done.sort_by_key(|w| (w.done, w.op.id));

        let mut next_done = 0;
        let mut global: Option<&Stamped> = None;
        // Per client: its best finished op, and its ops not yet known to be finished.
        let mut own_best: BTreeMap<u32, Option<&Stamped>> = BTreeMap::new();
        let mut own_open: BTreeMap<u32, Vec<&Stamped>> = BTreeMap::new();
        let mut out = Vec::new();
        let mut found = 0usize;
        for b in by_invoke {
            while let Some(a) = by_done.get(next_done).filter(|a| a.done < b.op.invoked_at) {
                fold(&mut global, a);
                next_done += 1;
            }
            let best = own_best.entry(b.op.client).or_default();
            let open = own_open.entry(b.op.client).or_default();
            open.retain(|a| {
                let finished = a.op.id < b.op.id && a.done <= b.op.invoked_at;
                if finished {
                    fold(best, a);
                }
                !finished
            });
            let mut witness = global;
            if let Some(a) = *best {
                fold(&mut witness, a);
            }
            if let Some(a) = witness.filter(|a| a.ts >= b.ts) {
                found += 1;
                if found <= LISTED {
                    out.push(Violation::TimestampRegressed {
                        earlier: a.op.id,
                        later: b.op.id,
                        earlier_ts: a.ts,
                        later_ts: b.ts,
                        earlier_completed_at: a.done,
                        later_invoked_at: b.op.invoked_at,
                    });
                }
            }
            open.push(b);
        }
        if found > LISTED {
            out.push(Violation::TimestampRegressionsOmitted {
                omitted: found - LISTED,
            });
        }
        out
    }

    /// The acknowledged writes that carry a commit timestamp.
    fn stamped(&self) -> Vec<Stamped<'_>> {
        self.ops()
            .iter()
            .filter(|o| o.outcome == Outcome::Acked && o.kind.write().is_some())
            .filter_map(|op| {
                Some(Stamped {
                    op,
                    ts: op.ack_ts?,
                    done: op.completed_at?,
                })
            })
            .collect()
    }
}

/// An acknowledged write with its commit timestamp, for [`History::check_timestamps`].
struct Stamped<'a> {
    op: &'a OpRecord,
    ts: u64,
    done: Nanos,
}

/// Keeps the write with the largest timestamp; the first one on ties.
fn fold<'a, 'b>(best: &mut Option<&'b Stamped<'a>>, w: &'b Stamped<'a>) {
    if best.is_none_or(|b| w.ts > b.ts) {
        *best = Some(w);
    }
}
