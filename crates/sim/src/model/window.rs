//! A key's possible states in a window of real time (see the model in the module
//! docs): [`Window`] says which writes are settled before it opens and which may show
//! inside it, [`view`] walks a key's writes to the [`View`] the checkers judge.

use super::history::{Nanos, OpRecord, Outcome};
use super::index::KeyWrite;

/// A stretch of real time in which a reader observes the collection.
#[derive(Clone, Copy)]
pub(super) struct Window {
    /// Writes acknowledged before this are in effect.
    pub(super) from: Nanos,
    /// Writes invoked after this are invisible.
    pub(super) to: Nanos,
    /// The reading op's (client, id): orders its own client's writes exactly.
    pub(super) reader: Option<(u32, u64)>,
    /// The end of the run: every acknowledged write is in effect.
    at_end: bool,
}

impl Window {
    pub(super) fn end() -> Self {
        Window {
            from: Nanos::MAX,
            to: Nanos::MAX,
            reader: None,
            at_end: true,
        }
    }

    /// The interval of a completed acknowledged op.
    pub(super) fn of(op: &OpRecord) -> Option<Self> {
        if op.outcome != Outcome::Acked {
            return None;
        }
        Some(Window {
            from: op.invoked_at,
            to: op.completed_at?,
            reader: Some((op.client, op.id)),
            at_end: false,
        })
    }

    /// The same window, opening at `from` instead: writes acknowledged before `from`
    /// are the ones in effect.
    pub(super) fn as_of(self, from: Nanos) -> Self {
        Window { from, ..self }
    }

    /// Whether `w` definitely took effect before the window opened.
    fn settled_before(&self, w: &OpRecord) -> bool {
        if w.outcome != Outcome::Acked {
            return false;
        }
        if self.at_end {
            return true;
        }
        let Some(done) = w.completed_at else {
            return false;
        };
        match self.reader {
            // The reader's client is sequential: its earlier op finished before.
            Some((c, id)) if c == w.client && w.id < id => done <= self.from,
            _ => done < self.from,
        }
    }

    /// Whether `w` was invoked before the window closed, so it may show inside it.
    fn may_precede(&self, w: &OpRecord) -> bool {
        match self.reader {
            _ if self.at_end => true,
            Some((c, id)) if c == w.client => w.id < id,
            _ => w.invoked_at <= self.to,
        }
    }
}

/// What a key may look like inside a window.
#[derive(Clone, Copy)]
pub(super) struct View {
    pub(super) present: bool,
    pub(super) absent: bool,
    /// The acknowledged write that last set the state definitely.
    pub(super) settled_by: Option<u64>,
    /// A non-refused insert or upsert may precede the window's end (the phantom rule).
    pub(super) any_put: bool,
    /// The last refused insert or upsert that precedes the window's end.
    pub(super) refused_put: Option<u64>,
}

impl View {
    /// Before any write: absent.
    pub(super) const INITIAL: View = View {
        present: false,
        absent: true,
        settled_by: None,
        any_put: false,
        refused_put: None,
    };

    /// The only possible state (true = present), if there is just one.
    pub(super) fn definite(&self) -> Option<bool> {
        (self.present != self.absent).then_some(self.present)
    }
}

/// Walks a key's writes in invocation order, tracking the possible states in `win`.
pub(super) fn view(writes: &[KeyWrite], win: &Window) -> View {
    let mut v = View::INITIAL;
    // The latest moment an earlier write may still land (MAX once one may land any time).
    let mut earlier_land: Nanos = 0;
    for w in writes {
        if !win.may_precede(w.op) {
            continue;
        }
        match w.op.outcome {
            Outcome::Refused => {
                if w.present {
                    v.refused_put = Some(w.op.id);
                }
                continue;
            }
            Outcome::Acked | Outcome::Pending | Outcome::Unknown => {}
        }
        v.any_put |= w.present;
        // The write overrides what came before only if it is in effect and nothing
        // earlier can land after it.
        if win.settled_before(w.op) && earlier_land <= w.op.invoked_at {
            v.present = w.present;
            v.absent = !w.present;
            v.settled_by = Some(w.op.id);
        } else if w.present {
            v.present = true;
        } else {
            v.absent = true;
        }
        let lands_by = match (w.op.outcome, w.op.completed_at) {
            (Outcome::Acked, Some(done)) => done,
            _ => Nanos::MAX,
        };
        earlier_land = earlier_land.max(lands_by);
    }
    // Every step leaves at least one state possible; `definite` relies on it.
    quiver_core::invariant!(v.present || v.absent, "a view with no possible state");
    v
}
