//! Deletes are never undone: a key whose last definite write was an acknowledged
//! delete is not visible at the end of the run.

use super::final_state::FinalKey;
use super::violation::Violation;

/// A [`Violation::DeleteUndone`] if an acknowledged delete settled `k` absent but it
/// is visible.
pub(super) fn judge(k: &FinalKey) -> Option<Violation> {
    if k.definite() != Some(false) || !k.visible {
        return None;
    }
    let op = k.settled_by()?;
    Some(Violation::DeleteUndone {
        key: k.key,
        op: op.id,
        client: op.client,
        acked_at: op.completed_at.unwrap_or(op.invoked_at),
    })
}
