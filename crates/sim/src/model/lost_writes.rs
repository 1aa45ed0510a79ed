//! Nothing acknowledged is lost: a key whose last write, an acknowledged insert or
//! upsert, definitely made it present is visible at the end of the run.

use super::final_state::FinalKey;
use super::violation::Violation;

/// A [`Violation::LostWrite`] if `k` must be present at the end but is not.
pub(super) fn judge(k: &FinalKey) -> Option<Violation> {
    if k.definite() != Some(true) || k.visible {
        return None;
    }
    let op = k.settled_by()?;
    Some(Violation::LostWrite {
        key: k.key,
        op: op.id,
        client: op.client,
        acked_at: op.completed_at.unwrap_or(op.invoked_at),
    })
}
