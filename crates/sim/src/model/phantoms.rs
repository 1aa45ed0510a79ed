//! Nothing appears from nowhere: a key visible at the end, or returned by any read or
//! search, had at least one insert or upsert that was not refused, invoked before it
//! was seen. A key only refused writes ever targeted names the last of them.

use super::final_state::FinalKey;
use super::history::{Key, Level, OpRecord};
use super::violation::Violation;
use super::window::{View, Window};

/// A [`Violation::RefusedWriteVisible`] or [`Violation::Phantom`] if `k` is visible at
/// the end although no write that may have landed created it.
pub(super) fn judge_final(k: &FinalKey) -> Option<Violation> {
    // A key an acknowledged delete settled is the delete rule's to report.
    if k.definite() != Some(false) || !k.visible || k.settled_by().is_some() {
        return None;
    }
    Some(match k.view.refused_put.and_then(|id| k.history.op(id)) {
        Some(op) => Violation::RefusedWriteVisible {
            key: k.key,
            op: op.id,
            client: op.client,
        },
        None => Violation::Phantom { key: k.key },
    })
}

/// A [`Violation::PhantomRead`] if `read` (a `what`: "read" or "search", at `level`)
/// returned `key` although `v`, the key's view in the read's window `win`, has no
/// write that could have created it.
pub(super) fn judge_read(
    read: &OpRecord,
    what: &'static str,
    level: Level,
    key: Key,
    v: &View,
    win: &Window,
) -> Option<Violation> {
    (!v.any_put).then_some(Violation::PhantomRead {
        read: read.id,
        key,
        what,
        level,
        client: read.client,
        refused: v.refused_put,
        invoked_at: read.invoked_at,
        completed_at: win.to,
    })
}
