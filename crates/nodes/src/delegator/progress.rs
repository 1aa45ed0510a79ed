//! How far an index is built and served on one shard copy: what `describe_index`
//! (and so `wait_for_index_building_complete`) reports. A sealed segment counts as
//! indexed only once its searches go through the index: it was handed off to the query
//! node and the query node serves it with that index. Until then it is searched
//! exactly, and the index is honestly in progress. Growing segments are not counted
//! (as in Milvus: they are searched exactly whatever the index).

use quiver_core::segment::storage::SegmentFiles;

use super::ShardDelegator;
use crate::rpc::IndexProgress;

impl ShardDelegator<'_> {
    /// The progress of index `index_id` over this shard's sealed segments.
    pub async fn index_state(&self, index_id: i64) -> IndexProgress {
        let local = self.shard.local_sealed_files().await;
        let remote = self.shard.remote_files().await;
        let total_rows = local.iter().chain(&remote).map(|f| f.num_rows).sum();
        let Some(index) = self.info.indexes.iter().find(|i| i.id == index_id) else {
            // This copy has not heard of the index yet (its catalog entry is older):
            // nothing of it is built here.
            return IndexProgress {
                total_rows,
                indexed_rows: 0,
                pending_segments: (local.len() + remote.len()) as u64,
                failure: None,
            };
        };
        if !crate::datanode::needs_build(index) || !self.builds_indexes() {
            // Nothing to build (FLAT is the exact search itself), or a deployment
            // without a data node or query node, which searches every segment exactly
            // by design: nothing will ever be waited for.
            return IndexProgress {
                total_rows,
                indexed_rows: total_rows,
                pending_segments: 0,
                failure: None,
            };
        }
        let served: Vec<&SegmentFiles> = {
            let served_with = self.d.served_with();
            remote
                .iter()
                .filter(|f| served_with.contains(&(f.id, index_id)))
                .collect()
        };
        let progress = IndexProgress {
            total_rows,
            indexed_rows: served.iter().map(|f| f.num_rows).sum(),
            pending_segments: (local.len() + remote.len() - served.len()) as u64,
            failure: self.index_failure(index_id).await,
        };
        quiver_core::invariant!(
            progress.indexed_rows <= progress.total_rows,
            "index {index_id}: {} rows indexed of {}",
            progress.indexed_rows,
            progress.total_rows
        );
        progress
    }

    /// Whether this node builds indexes and hands segments to a query node that
    /// searches through them.
    fn builds_indexes(&self) -> bool {
        self.d.data_node.is_some() && self.d.targets.any()
    }
}

// A real standalone instance: real tokio and the loopback services.
#[cfg(all(test, not(madsim)))]
mod tests;
