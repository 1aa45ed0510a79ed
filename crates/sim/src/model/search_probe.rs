//! Searches agree with the model: every acknowledged search returns at most k keys,
//! each once, each created by a write it could see ([`super::phantoms`]). A Strong
//! search, whose query is its probe key's own vector (distance 0 from itself; distinct
//! keys have distinct vectors), ranks a definitely present probe first and does not
//! return a definitely deleted one.

use std::collections::BTreeSet;

use super::history::{History, Key, Level, OpKind, OpRecord};
use super::index::Index;
use super::phantoms;
use super::violation::Violation;
use super::window::Window;

impl History {
    /// Judges every acknowledged `Search`: length, duplicates and the phantom rule for
    /// all; for Strong ones also that a present probe comes first and a deleted one not
    /// at all (the query is the probe's own vector, at distance 0 from itself; this
    /// assumes distinct keys have distinct vectors).
    pub fn check_searches(&self) -> Vec<Violation> {
        let index = Index::new(self.ops());
        let mut out = Vec::new();
        for op in self.ops() {
            let (
                OpKind::Search {
                    level,
                    probe,
                    k,
                    result,
                },
                Some(win),
            ) = (&op.kind, Window::of(op))
            else {
                continue;
            };
            let search = Search {
                op,
                level: *level,
                probe: *probe,
                k: *k,
                result,
                win,
            };
            search.well_formed(&index, &mut out);
            if search.level == Level::Strong && search.k > 0 {
                out.extend(search.probe_rule(&index));
            }
        }
        out
    }
}

/// One acknowledged search and its window.
struct Search<'o> {
    op: &'o OpRecord,
    level: Level,
    probe: Key,
    k: usize,
    result: &'o [Key],
    win: Window,
}

impl Search<'_> {
    fn bad(&self, reason: String) -> Violation {
        Violation::BadSearchResult {
            op: self.op.id,
            reason,
        }
    }

    /// At most k keys, none twice, none from nowhere.
    fn well_formed(&self, index: &Index, out: &mut Vec<Violation>) {
        if self.result.len() > self.k {
            let n = self.result.len();
            out.push(self.bad(format!("{n} results for a top-{} search", self.k)));
        }
        let mut seen = BTreeSet::new();
        for &key in self.result {
            if !seen.insert(key) {
                out.push(self.bad(format!("key {key} returned twice")));
                continue;
            }
            let v = index.view(key, &self.win);
            let op = self.op;
            out.extend(phantoms::judge_read(
                op, "search", self.level, key, &v, &self.win,
            ));
        }
    }

    /// A Strong search ranks a definitely present probe first and leaves a definitely
    /// deleted one out.
    fn probe_rule(&self, index: &Index) -> Option<Violation> {
        let v = index.view(self.probe, &self.win);
        let first = self.result.first().copied();
        match v.definite() {
            Some(true) if first != Some(self.probe) => Some(Violation::SearchMissedSelf {
                op: self.op.id,
                probe: self.probe,
                client: self.op.client,
                first,
                because: v.settled_by,
                invoked_at: self.op.invoked_at,
                completed_at: self.win.to,
            }),
            // A probe never created is already reported by the phantom rule.
            Some(false) if v.any_put => {
                let rank = self.result.iter().position(|&k| k == self.probe)?;
                Some(Violation::SearchFoundDeleted {
                    op: self.op.id,
                    probe: self.probe,
                    client: self.op.client,
                    rank,
                    because: v.settled_by,
                    invoked_at: self.op.invoked_at,
                    completed_at: self.win.to,
                })
            }
            _ => None,
        }
    }
}
