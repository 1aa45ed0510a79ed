//! Deletes that hit handed-off segments: the shard hands them to the delegator, which
//! forwards them to the query node serving those segments before the delete is
//! acknowledged. If forwarding fails, the shard takes the segments back (so no read
//! can miss the delete) and the target is marked suspect.

use std::sync::Arc;

use quiver_core::ids::SegmentId;
use quiver_core::segment::DeleteRecord;
use quiver_core::shard::{DeleteForwarder, RemoteError};

use super::targets::QueryTargets;
use crate::rpc::ShardRef;

/// Forwards one shard copy's deletes to its query node.
pub struct Forwarder {
    pub targets: Arc<QueryTargets>,
    pub vchannel: String,
    pub at: ShardRef,
    pub epoch: u64,
}

#[async_trait::async_trait]
impl DeleteForwarder for Forwarder {
    async fn forward(&self, deletes: &[(SegmentId, DeleteRecord)]) -> Result<(), RemoteError> {
        // Deletes reach here only for remote segments, which exist only on a target.
        let Some(qn) = self.targets.get(&self.vchannel, self.epoch) else {
            return Err(RemoteError::Unavailable(
                "no query node serves this shard's segments".into(),
            ));
        };
        let res = qn
            .delete(self.at, deletes.to_vec(), self.epoch)
            .await
            .map_err(remote_error);
        if res.is_err() {
            // The shard takes the segments back; the next handoff chooses again.
            self.targets.suspect(&self.vchannel, self.epoch);
        }
        res
    }
}

/// A failed call to the query node, as the shard sees it: not reached (it may not have
/// arrived), or refused.
pub(super) fn remote_error(e: crate::error::ApiError) -> RemoteError {
    if e.code == crate::error::code::UNAVAILABLE {
        RemoteError::Unavailable(e.reason)
    } else {
        RemoteError::Refused(e.reason)
    }
}
