//! The index every checker starts from: each key's writes in invocation order
//! ([`KeyHistory`]), and the keys each client wrote.

use std::collections::{BTreeMap, BTreeSet};

use super::history::{Key, Nanos, OpRecord};
use super::window::{view, View, Window};

/// One write's effect on one key.
pub(super) struct KeyWrite<'a> {
    pub(super) op: &'a OpRecord,
    /// Whether the write leaves the key present.
    pub(super) present: bool,
}

/// A key's writes, sorted by (invocation, id), and what they leave behind.
pub(super) struct KeyHistory<'a> {
    pub(super) writes: Vec<KeyWrite<'a>>,
    /// Every write was invoked, and completed if it ever did, by this moment.
    quiet_since: Nanos,
    /// The largest id among the writes.
    last_id: u64,
    /// The view at the end of the run.
    end: View,
}

impl KeyHistory<'_> {
    /// The key's possible states in `win`.
    pub(super) fn view(&self, win: &Window) -> View {
        // Most keys went quiet long before most reads: such a window sees every write
        // settled or still uncertain exactly as the end of the run does, so skip the walk.
        // (The id test keeps the reader's own-client ordering rule out of it.)
        let after_all = win.reader.is_none_or(|(_, id)| self.last_id < id);
        if win.from > self.quiet_since && after_all {
            return self.end;
        }
        view(&self.writes, win)
    }
}

/// The history of each key, and the keys each client wrote.
pub(super) struct Index<'a> {
    pub(super) by_key: BTreeMap<Key, KeyHistory<'a>>,
    pub(super) by_client: BTreeMap<u32, BTreeSet<Key>>,
}

impl<'a> Index<'a> {
    pub(super) fn new(ops: &'a [OpRecord]) -> Self {
        let mut writes_of: BTreeMap<Key, Vec<KeyWrite<'a>>> = BTreeMap::new();
        let mut by_client: BTreeMap<u32, BTreeSet<Key>> = BTreeMap::new();
        for op in ops {
            let Some((keys, present)) = op.kind.write() else {
                continue;
            };
            // A key listed twice in one op is one write.
            let keys: BTreeSet<Key> = keys.iter().copied().collect();
            for &key in &keys {
                writes_of
                    .entry(key)
                    .or_default()
                    .push(KeyWrite { op, present });
            }
            by_client.entry(op.client).or_default().extend(keys);
        }
        let by_key = writes_of
            .into_iter()
            .map(|(key, mut writes)| {
                writes.sort_by_key(|w| (w.op.invoked_at, w.op.id));
                let last = |w: &KeyWrite| w.op.completed_at.unwrap_or(0).max(w.op.invoked_at);
                let hist = KeyHistory {
                    quiet_since: writes.iter().map(last).max().unwrap_or(0),
                    last_id: writes.iter().map(|w| w.op.id).max().unwrap_or(0),
                    end: view(&writes, &Window::end()),
                    writes,
                };
                (key, hist)
            })
            .collect();
        Index { by_key, by_client }
    }

    /// The possible states of `key` in `win`.
    pub(super) fn view(&self, key: Key, win: &Window) -> View {
        self.by_key.get(&key).map_or(View::INITIAL, |h| h.view(win))
    }
}
