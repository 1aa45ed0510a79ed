//! The operator's check of an object-storage log (`quiver inspect`): reads it without
//! writing, as recovery would from the flush checkpoint.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::path::Path;
use object_store::ObjectStore;

use super::{ObjectWal, ObjectWalOptions};
use crate::wal::{FrameError, Offset, Wal, WalCheck, WalDamage, WalError};

fn damage(location: String, problem: FrameError) -> WalDamage {
    WalDamage {
        file: PathBuf::from(location),
        byte: 0,
        record: None,
        problem,
        intact_beyond: None,
    }
}

/// Checks the log under `prefix`: every block from `from` (the shard's flush
/// checkpoint) to the end decodes and chains, and the log reaches back to `from`.
/// `Err` only for a store that could not be read (not damage; try again).
pub async fn check_object_wal(
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    from: Option<Offset>,
) -> Result<WalCheck, WalError> {
    let mut out = WalCheck {
        first: 0,
        next: 0,
        segment_files: 0,
        torn_tail_bytes: 0,
        damage: None,
    };
    let wal = match ObjectWal::open(store, prefix.clone(), ObjectWalOptions::default()).await {
        Ok(w) => w,
        Err(WalError::Corrupt { location, source }) => {
            out.damage = Some(damage(location, source));
            return Ok(out);
        }
        Err(e) => return Err(e),
    };
    (out.first, out.next) = (wal.first_offset().await, wal.next_offset().await);
    out.segment_files = wal.live_blocks();
    let start = from.unwrap_or(out.first);
    if start < out.first || start > out.next {
        let missing = FrameError::Missing {
            needed: start,
            first: out.first,
            next: out.next,
        };
        out.damage = Some(damage(prefix.to_string(), missing));
        return Ok(out);
    }
    match wal.read_from(start, usize::MAX).await {
        Ok(_) => Ok(out),
        Err(WalError::Corrupt { location, source }) => {
            out.damage = Some(damage(location, source));
            Ok(out)
        }
        Err(e) => Err(e),
    }
}
