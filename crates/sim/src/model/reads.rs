//! Reads agree with the model: each acknowledged scan is judged on the keys its level
//! promises ([`super::levels`]). A judged key whose state was definite must be seen if
//! present and not seen if deleted; at every level a key seen must have been created
//! by a write the read could see ([`super::phantoms`]), and no key comes twice.

use super::history::{History, Key, Level, OpKind, OpRecord};
use super::index::{Index, KeyHistory};
use super::levels::{Judged, Scopes};
use super::phantoms;
use super::violation::Violation;
use super::window::{View, Window};
use super::CheckConfig;

impl History {
    /// Judges every acknowledged `Read` by its level (see the module docs).
    pub fn check_reads(&self, cfg: &CheckConfig) -> Vec<Violation> {
        let index = Index::new(self.ops());
        let scopes = Scopes::new(&index);
        let mut out = Vec::new();
        for op in self.ops() {
            let (OpKind::Read { level, seen }, Some(win)) = (&op.kind, Window::of(op)) else {
                continue;
            };
            let (judged, win) = scopes.judged(op, *level, win, cfg);
            let read = Read {
                op,
                level: *level,
                win,
            };
            let seen = read.distinct(seen, &mut out);
            for looked in Merge::new(judged, &seen, &index) {
                out.extend(read.judge(&looked));
            }
        }
        out
    }
}

/// One acknowledged read and the window it is judged in.
struct Read<'o> {
    op: &'o OpRecord,
    level: Level,
    win: Window,
}

impl Read<'_> {
    /// The keys the read returned, sorted, each once; reports each repeat (primary keys
    /// are unique).
    fn distinct(&self, seen: &[Key], out: &mut Vec<Violation>) -> Vec<Key> {
        let mut seen = seen.to_vec();
        seen.sort_unstable();
        for pair in seen.windows(2).filter(|p| p[0] == p[1]) {
            out.push(Violation::DuplicateInRead {
                read: self.op.id,
                key: pair[0],
                level: self.level,
                client: self.op.client,
            });
        }
        seen.dedup();
        seen
    }

    /// Judges one key: the phantom rule if the read saw it, else (or if it was
    /// created) whether a judged key's definite state matches what the read saw.
    fn judge(&self, looked: &Looked) -> Option<Violation> {
        let v = looked.hist.map_or(View::INITIAL, |h| h.view(&self.win));
        if looked.saw && !v.any_put {
            return phantoms::judge_read(self.op, "read", self.level, looked.key, &v, &self.win);
        }
        match v.definite() {
            Some(present) if looked.judged && present != looked.saw => Some(Violation::StaleRead {
                read: self.op.id,
                key: looked.key,
                expected_present: present,
                level: self.level,
                client: self.op.client,
                because: v.settled_by,
                as_of: self.win.from,
                invoked_at: self.op.invoked_at,
                completed_at: self.win.to,
            }),
            _ => None,
        }
    }
}

/// A key a read is judged on or returned (or both).
struct Looked<'i, 'a> {
    key: Key,
    hist: Option<&'i KeyHistory<'a>>,
    /// The read's level judges this key.
    judged: bool,
    /// The read returned it.
    saw: bool,
}

/// Merges the judged keys with the keys a read returned (both sorted, each once), so
/// each key is looked at once, in key order.
struct Merge<'s, 'i, 'a> {
    judged: &'s [Judged<'i, 'a>],
    seen: &'s [Key],
    index: &'i Index<'a>,
    i: usize,
    j: usize,
    /// The last key yielded: keys come strictly ascending.
    last: Option<Key>,
}

impl<'s, 'i, 'a> Merge<'s, 'i, 'a> {
    fn new(judged: &'s [Judged<'i, 'a>], seen: &'s [Key], index: &'i Index<'a>) -> Self {
        Merge {
            judged,
            seen,
            index,
            i: 0,
            j: 0,
            last: None,
        }
    }
}

impl<'i, 'a> Iterator for Merge<'_, 'i, 'a> {
    type Item = Looked<'i, 'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let looked = self.step()?;
        // Both inputs are sorted and distinct, so no key is judged twice.
        quiver_core::invariant!(
            self.last.is_none_or(|l| l < looked.key),
            "merged keys out of order: {:?} then {}",
            self.last,
            looked.key
        );
        self.last = Some(looked.key);
        Some(looked)
    }
}

impl<'i, 'a> Merge<'_, 'i, 'a> {
    /// The next key from whichever list is behind (both, if they agree).
    fn step(&mut self) -> Option<Looked<'i, 'a>> {
        match (self.judged.get(self.i), self.seen.get(self.j)) {
            (Some(&(key, hist)), s) if s.is_none_or(|&s| key <= s) => {
                self.i += 1;
                let saw = s == Some(&key);
                self.j += usize::from(saw);
                Some(Looked {
                    key,
                    hist: Some(hist),
                    judged: true,
                    saw,
                })
            }
            (_, Some(&key)) => {
                self.j += 1;
                Some(Looked {
                    key,
                    hist: self.index.by_key.get(&key),
                    judged: false,
                    saw: true,
                })
            }
            _ => None,
        }
    }
}
