//! Operation histories and the checks that judge them.
//!
//! A workload records each operation when it is invoked and again when it completes:
//! acknowledged, refused (a definite error: the operation did not happen), or unknown
//! (a timeout, a crash, an I/O failure after the WAL may already hold it). The checker
//! compares the final visible state with what the history allows.
//!
//! The key workload writes every key once and deletes only keys whose insert was
//! acknowledged, so the rules are exact:
//! * an acknowledged insert whose key no delete touched is visible (nothing
//!   acknowledged is lost);
//! * a key with an acknowledged delete is not visible (deletes are never undone);
//! * every visible key was inserted by some operation that was at least attempted and
//!   not refused (nothing appears from nowhere).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// How an operation ended, as the client saw it (shared with the cluster model).
pub use crate::model::Outcome;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    Insert(Vec<i64>),
    Delete(Vec<i64>),
    Flush,
}

#[derive(Debug, Clone)]
pub struct OpRecord {
    pub id: u64,
    pub kind: OpKind,
    pub outcome: Outcome,
}

/// The history of one run.
#[derive(Debug, Default, Clone)]
pub struct History {
    ops: Vec<OpRecord>,
}

/// A broken invariant, with the operation that shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    LostAcknowledgedInsert { key: i64, op: u64 },
    DeleteUndone { key: i64, op: u64 },
    PhantomKey { key: i64 },
    RefusedInsertVisible { key: i64, op: u64 },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::LostAcknowledgedInsert { key, op } => {
                write!(f, "acknowledged insert of key {key} (op {op}) is lost")
            }
            Violation::DeleteUndone { key, op } => {
                write!(
                    f,
                    "key {key} is visible after its acknowledged delete (op {op})"
                )
            }
            Violation::PhantomKey { key } => {
                write!(f, "key {key} is visible but was never inserted")
            }
            Violation::RefusedInsertVisible { key, op } => {
                write!(
                    f,
                    "key {key} is visible but its insert (op {op}) was refused"
                )
            }
        }
    }
}

impl History {
    /// Records an invocation; returns its id.
    pub fn invoke(&mut self, kind: OpKind) -> u64 {
        let id = self.ops.len() as u64;
        self.ops.push(OpRecord {
            id,
            kind,
            outcome: Outcome::Pending,
        });
        id
    }

    pub fn complete(&mut self, id: u64, outcome: Outcome) {
        self.ops[id as usize].outcome = outcome;
    }

    pub fn ops(&self) -> &[OpRecord] {
        &self.ops
    }

    /// Keys whose insert was acknowledged (candidates for deletes).
    pub fn acked_keys(&self) -> Vec<i64> {
        self.ops
            .iter()
            .filter(|o| o.outcome == Outcome::Acked)
            .filter_map(|o| match &o.kind {
                OpKind::Insert(ks) => Some(ks.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Judges the final visible keys. Operations still pending count as unknown.
    pub fn check(&self, visible: &BTreeSet<i64>) -> Vec<Violation> {
        let mut inserted_by: BTreeMap<i64, &OpRecord> = BTreeMap::new();
        let mut deleted_acked: BTreeMap<i64, u64> = BTreeMap::new();
        let mut delete_touched: BTreeSet<i64> = BTreeSet::new();
        for op in &self.ops {
            match &op.kind {
                OpKind::Insert(ks) => {
                    for k in ks {
                        inserted_by.insert(*k, op);
                    }
                }
                OpKind::Delete(ks) => {
                    if op.outcome != Outcome::Refused {
                        delete_touched.extend(ks.iter().copied());
                    }
                    if op.outcome == Outcome::Acked {
                        for k in ks {
                            deleted_acked.insert(*k, op.id);
                        }
                    }
                }
                OpKind::Flush => {}
            }
        }
        let mut out = Vec::new();
        for (k, op) in &inserted_by {
            if op.outcome == Outcome::Acked && !delete_touched.contains(k) && !visible.contains(k) {
                out.push(Violation::LostAcknowledgedInsert { key: *k, op: op.id });
            }
        }
        for k in visible {
            match inserted_by.get(k) {
                None => out.push(Violation::PhantomKey { key: *k }),
                Some(op) if op.outcome == Outcome::Refused => {
                    out.push(Violation::RefusedInsertVisible { key: *k, op: op.id })
                }
                _ => {}
            }
            if let Some(op) = deleted_acked.get(k) {
                out.push(Violation::DeleteUndone { key: *k, op: *op });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_fires() {
        let mut h = History::default();
        let a = h.invoke(OpKind::Insert(vec![1, 2]));
        h.complete(a, Outcome::Acked);
        let b = h.invoke(OpKind::Insert(vec![3]));
        h.complete(b, Outcome::Refused);
        let c = h.invoke(OpKind::Delete(vec![2]));
        h.complete(c, Outcome::Acked);
        let d = h.invoke(OpKind::Insert(vec![4]));
        h.complete(d, Outcome::Unknown);

        assert!(h.check(&[1].into()).is_empty());
        assert!(h.check(&[1, 4].into()).is_empty());
        assert_eq!(
            h.check(&[].into()),
            vec![Violation::LostAcknowledgedInsert { key: 1, op: 0 }]
        );
        assert_eq!(
            h.check(&[1, 2, 3, 9].into()),
            vec![
                Violation::DeleteUndone { key: 2, op: 2 },
                Violation::RefusedInsertVisible { key: 3, op: 1 },
                Violation::PhantomKey { key: 9 },
            ]
        );
    }
}
