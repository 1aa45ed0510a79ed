//! The query delegator: a streaming node is the delegator of every shard it owns
//! (Milvus keeps it in `internal/querynodev2/delegator/`, behind `ShardDelegator`).
//! The delegator serves a shard's reads — growing segments, and sealed ones not yet
//! handed off, here; handed-off ones on the query node the coordinator assigned —
//! hands sealed segments off once their indexes are built, and forwards deletes that
//! hit handed-off segments.
//!
//! - [`targets`]: the distribution — which query node serves each shard copy's
//!   handed-off segments, and when it may change;
//! - [`read`]: the one generic split read every read goes through; [`search`] and
//!   [`rows`] are the reads (search; query, count, fetch);
//! - [`handoff`]: index builds and the handoff of sealed segments; [`builds`]: the
//!   builds that failed (retried with backoff, or final and reported);
//! - [`progress`]: how far an index is built and served (what `describe_index` says);
//! - [`forward`]: deletes forwarded to the query node.
//!
//! The shard side of these (taking the split under one lock, handing off under the
//! write lock, taking segments back) lives with the shard in `quiver_core::shard`.

pub mod builds;
pub mod forward;
pub mod handoff;
pub mod progress;
pub mod read;
pub mod rows;
pub mod search;
pub mod targets;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use quiver_core::ids::SegmentId;
use quiver_core::rt::Lanes;
use quiver_core::shard::{DeleteForwarder, Shard};

use crate::coordinator::CollectionInfo;
use crate::error::ApiResult;
use crate::rpc::{CoordinatorApi, DataNodeApi, QueryNodeApi, ShardRef, WireScope};
pub use targets::{QueryNodeLink, QueryTargets};

/// How long a read waits for its shard's safe timestamp to reach its guarantee before
/// answering with a retriable error (a tick normally comes within one tick interval,
/// sooner when asked for).
const TSAFE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// (segment, index id).
type IndexKey = (SegmentId, i64);

/// The delegation state a streaming node keeps for all its shards.
pub struct Delegation {
    targets: Arc<QueryTargets>,
    coord: Arc<dyn CoordinatorApi>,
    /// Who builds indexes for sealed segments; `None` leaves them to exact search.
    data_node: Option<Arc<dyn DataNodeApi>>,
    /// Indexes known to be built.
    built: Mutex<BTreeSet<IndexKey>>,
    /// Indexes the query node has for handed-off segments.
    served_with: Mutex<BTreeSet<IndexKey>>,
    /// Builds that failed: when to retry them, or why they never will be.
    failures: Mutex<builds::BuildFailures>,
    /// The lanes this node's searches of local segments take turns in.
    lanes: Lanes,
    /// The last id given to a read sent to a query node.
    read_ids: std::sync::atomic::AtomicU64,
}

impl Delegation {
    /// A fresh id for a read sent to a query node.
    fn next_read_id(&self) -> u64 {
        self.read_ids
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }

    pub fn new(
        coord: Arc<dyn CoordinatorApi>,
        query_nodes: Vec<QueryNodeLink>,
        data_node: Option<Arc<dyn DataNodeApi>>,
    ) -> Self {
        Delegation {
            targets: Arc::new(QueryTargets::new(query_nodes)),
            coord,
            data_node,
            built: Default::default(),
            served_with: Default::default(),
            failures: Default::default(),
            lanes: Lanes::per_core(),
            read_ids: Default::default(),
        }
    }

    /// The delegator of one open shard copy, serving under the catalog entry `info`.
    pub fn of(&self, info: CollectionInfo, at: ShardRef, shard: Arc<Shard>) -> ShardDelegator<'_> {
        ShardDelegator {
            d: self,
            info,
            at,
            shard,
        }
    }

    /// The delete forwarder of a shard copy, when segments can be handed off.
    pub fn forwarder(
        &self,
        at: ShardRef,
        vchannel: &str,
        epoch: u64,
    ) -> Option<Arc<dyn DeleteForwarder>> {
        if !self.targets.any() {
            return None;
        }
        Some(Arc::new(forward::Forwarder {
            targets: self.targets.clone(),
            vchannel: vchannel.to_string(),
            at,
            epoch,
        }))
    }

    /// Tells every query node a collection was dropped. A node that does not hear it
    /// keeps orphaned copies until it restarts (they are never read again).
    pub async fn drop_collection(&self, info: &CollectionInfo) {
        for (id, qn) in self.targets.all() {
            if let Err(e) = qn.drop_collection(info.id).await {
                tracing::warn!(query_node = %id, error = %e.reason, "query node did not drop the collection; its copies are orphaned");
            }
        }
    }

    fn built(&self) -> MutexGuard<'_, BTreeSet<IndexKey>> {
        self.built.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn failures(&self) -> MutexGuard<'_, builds::BuildFailures> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn served_with(&self) -> MutexGuard<'_, BTreeSet<IndexKey>> {
        self.served_with.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Segments just handed off: the query node loaded every index built for them.
    fn note_served(&self, ids: &[SegmentId]) {
        let built = self.built().clone();
        self.served_with()
            .extend(built.into_iter().filter(|(seg, _)| ids.contains(seg)));
    }
}

/// One shard copy's delegator.
pub struct ShardDelegator<'a> {
    d: &'a Delegation,
    info: CollectionInfo,
    at: ShardRef,
    shard: Arc<Shard>,
}

impl ShardDelegator<'_> {
    fn vchannel(&self) -> &str {
        &self.shard.config().vchannel.0
    }

    /// The query node serving this copy's handed-off segments.
    fn target(&self) -> Option<Arc<dyn QueryNodeApi>> {
        self.d.targets.get(self.vchannel(), self.shard.epoch())
    }

    /// The target failed a read, delete or load: the next handoff may choose another.
    fn suspect(&self) {
        self.d.targets.suspect(self.vchannel(), self.shard.epoch());
    }

    /// Picks the snapshot a read executes at: the shard's safe timestamp once it has
    /// reached the read's guarantee, waiting for the pchannel's next time tick (asked
    /// for at once) when it has not.
    async fn snapshot(&self, mut scope: WireScope) -> ApiResult<WireScope> {
        scope.read_ts = self
            .shard
            .wait_tsafe(scope.guarantee_ts, TSAFE_WAIT)
            .await?;
        quiver_core::invariant!(
            scope.read_ts >= scope.guarantee_ts,
            "a read would run at {:?}, below its guarantee {:?}",
            scope.read_ts,
            scope.guarantee_ts
        );
        Ok(scope)
    }
}
