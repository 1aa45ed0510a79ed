//! Delete records as segments keep them: for each primary key, the timestamps at
//! which it was deleted. A row inserted at `t` is deleted as of read timestamp `r`
//! when some delete of its key has `t < d <= r`. (An upsert deletes and re-inserts at
//! the same timestamp, so its new row survives its own delete.)

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::batch::Pk;
use crate::tso::Timestamp;

/// One delete: key and timestamp.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeleteRecord {
    pub pk: Pk,
    pub ts: Timestamp,
}

/// The deletes that apply to one segment.
#[derive(Debug, Clone, Default)]
pub struct DeleteSet {
    by_pk: HashMap<Pk, Vec<Timestamp>>,
    len: usize,
}

impl DeleteSet {
    pub fn add(&mut self, pk: Pk, ts: Timestamp) {
        let v = self.by_pk.entry(pk).or_default();
        if let Err(pos) = v.binary_search(&ts) {
            v.insert(pos, ts);
            self.len += 1;
        }
    }

    /// Whether the row of `pk` inserted at `insert_ts` is deleted as seen at `read_ts`.
    pub fn is_deleted(&self, pk: &Pk, insert_ts: Timestamp, read_ts: Timestamp) -> bool {
        match self.by_pk.get(pk) {
            None => false,
            Some(ts) => {
                // The first delete after the insert; deleted if it is visible.
                let i = ts.partition_point(|d| *d <= insert_ts);
                ts.get(i).is_some_and(|d| *d <= read_ts)
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// All records, sorted (deterministic order for persistence).
    pub fn records(&self) -> Vec<DeleteRecord> {
        let mut out: Vec<DeleteRecord> = self
            .by_pk
            .iter()
            .flat_map(|(pk, ts)| {
                ts.iter().map(|t| DeleteRecord {
                    pk: pk.clone(),
                    ts: *t,
                })
            })
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_rules() {
        let mut d = DeleteSet::default();
        let pk = Pk::Int(1);
        d.add(pk.clone(), Timestamp(10));
        assert!(
            !d.is_deleted(&pk, Timestamp(5), Timestamp(9)),
            "delete not yet visible"
        );
        assert!(d.is_deleted(&pk, Timestamp(5), Timestamp(10)));
        assert!(
            !d.is_deleted(&pk, Timestamp(10), Timestamp(20)),
            "upsert row survives"
        );
        assert!(
            !d.is_deleted(&pk, Timestamp(11), Timestamp(20)),
            "later insert survives"
        );
        assert!(!d.is_deleted(&Pk::Int(2), Timestamp(1), Timestamp(20)));
        d.add(pk.clone(), Timestamp(30));
        d.add(pk.clone(), Timestamp(30));
        assert_eq!(d.len(), 2);
        assert!(d.is_deleted(&pk, Timestamp(11), Timestamp(30)));
    }
}
