//! Shards whose stored data is damaged (a WAL, manifest or segment object that fails
//! its checksum or format, a missing segment object): the node keeps serving every
//! other shard and answers for a damaged one with [`code::SEGMENT_LOAD_FAILED`], naming the file
//! and the problem, until an operator repairs it (`quiver inspect`, `quiver repair`).
//! The damage is remembered, not retried: reopening cannot fix it, and each attempt
//! would replay the whole log again. Transient store errors are never damage.

use quiver_core::shard::ShardError;
use quiver_core::wal::WalError;

use super::{Opened, StreamingNode};
use crate::coordinator::CollectionInfo;
use crate::error::{code, ApiError, ApiResult, ErrorKind};
use quiver_core::ids::CollectionId;

/// The status of a request to a damaged shard.
pub(super) fn damaged(info: &CollectionInfo, shard: u32, problem: &str) -> ApiError {
    ApiError::with_kind(
        code::SEGMENT_LOAD_FAILED,
        ErrorKind::Internal,
        format!(
            "collection {} is damaged: shard {shard} ({}): {problem}; its other shards and \
             every other collection are served. Stop the server, run `quiver inspect \
             --data-dir <data dir>`, then `quiver repair --data-dir <data dir> --collection {} \
             --truncate-wal` or `--drop-damaged-segments` (or drop the collection)",
            info.name(),
            info.vchannels()
                .get(shard as usize)
                .map_or_else(String::new, |v| v.0.clone()),
            info.name(),
        ),
    )
}

/// What a failed open of shard `shard` means: damage is recorded on the collection and
/// reported as [`code::SEGMENT_LOAD_FAILED`]; anything else is returned as it is.
pub(super) fn open_failed(o: &mut Opened, shard: u32, e: ShardError) -> ApiError {
    if !e.is_damage() {
        return e.into();
    }
    let problem = e.to_string();
    tracing::error!(collection = o.info.name(), shard, error = %problem, "shard is damaged; not serving it");
    let err = damaged(&o.info, shard, &problem);
    o.damaged.insert(shard, problem);
    err
}

/// The same for a WAL that could not be opened.
pub(super) fn wal_open_failed(o: &mut Opened, shard: u32, e: WalError) -> ApiError {
    if e.is_damage() {
        return open_failed(o, shard, ShardError::Wal(e));
    }
    ApiError::internal(format!("WAL of shard {shard} of {}: {e}", o.info.name()))
}

/// The recorded damage of shard `shard`, as the error a request to it gets.
pub(super) fn check(o: &Opened, shard: u32) -> ApiResult<()> {
    match o.damaged.get(&shard) {
        Some(problem) => Err(damaged(&o.info, shard, problem)),
        None => Ok(()),
    }
}

impl StreamingNode {
    /// The recorded damage of any shard of the collection, as the error a request to it
    /// gets (loading a collection checks this).
    pub(super) async fn check_damage(&self, collection: CollectionId) -> ApiResult<()> {
        let all = self.shards.read().await;
        match all.get(&collection) {
            Some(o) => match o.damaged.keys().next() {
                Some(&s) => check(o, s),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }
}
