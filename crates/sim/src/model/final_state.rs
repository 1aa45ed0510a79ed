//! The end-of-run check: once the faults have healed, the keys a Strong scan sees are
//! judged against each key's state at the end of the history. Each rule has its own
//! module ([`super::lost_writes`], [`super::deletes`], [`super::phantoms`]); a key
//! breaks at most one of them, so asking them in turn reports it once.

use std::collections::BTreeSet;

use super::history::{History, Key, OpRecord};
use super::index::Index;
use super::violation::Violation;
use super::window::{View, Window};
use super::{deletes, lost_writes, phantoms};

/// One key as the end of the run leaves it.
pub(super) struct FinalKey<'h> {
    pub(super) key: Key,
    /// Whether the final scan saw it.
    pub(super) visible: bool,
    pub(super) view: View,
    pub(super) history: &'h History,
}

impl FinalKey<'_> {
    /// The only possible state at the end (true = present), if there is just one.
    pub(super) fn definite(&self) -> Option<bool> {
        self.view.definite()
    }

    /// The acknowledged write that last set the state definitely.
    pub(super) fn settled_by(&self) -> Option<&OpRecord> {
        self.view.settled_by.and_then(|id| self.history.op(id))
    }
}

impl History {
    /// Judges the keys visible at the end (read with Strong after faults healed).
    pub fn check_final(&self, final_visible: &BTreeSet<Key>) -> Vec<Violation> {
        let index = Index::new(self.ops());
        let win = Window::end();
        let keys: BTreeSet<Key> = index
            .by_key
            .keys()
            .chain(final_visible.iter())
            .copied()
            .collect();
        keys.into_iter()
            .filter_map(|key| {
                let k = FinalKey {
                    key,
                    visible: final_visible.contains(&key),
                    view: index.view(key, &win),
                    history: self,
                };
                lost_writes::judge(&k)
                    .or_else(|| deletes::judge(&k))
                    .or_else(|| phantoms::judge_final(&k))
            })
            .collect()
    }
}
