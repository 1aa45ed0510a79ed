//! The query node's part of a long read: waited for while the node says it is still
//! working on it, abandoned (as unreachable) when it stops answering or no longer
//! knows the read.

use std::sync::Arc;

use quiver_core::batch::{Batch, Pk};
use quiver_core::ids::CollectionId;
use quiver_core::search::Hit;
use quiver_core::segment::storage::SegmentFiles;
use quiver_core::segment::DeleteRecord;

use super::*;
use crate::coordinator::{CollectionInfo, IndexInfo};
use crate::error::code;
use crate::rpc::{Handoff, ShardRef, VectorSearch, WireScope};

/// A query node whose count takes `work`, and which, asked after the read, answers
/// `knows_read` or (`None`) hangs.
struct SlowNode {
    work: Duration,
    knows_read: Option<bool>,
}

fn nothing<T>() -> ApiResult<T> {
    Err(ApiError::internal("not part of this test"))
}

#[async_trait::async_trait]
impl QueryNodeApi for SlowNode {
    async fn load(&self, _: CollectionInfo, _: ShardRef, _: Handoff, _: u64) -> ApiResult<()> {
        nothing()
    }
    async fn release(&self, _: ShardRef, _: Vec<SegmentId>, _: u64) -> ApiResult<()> {
        nothing()
    }
    async fn load_index(
        &self,
        _: Box<CollectionInfo>,
        _: ShardRef,
        _: Box<SegmentFiles>,
        _: Box<IndexInfo>,
        _: u64,
    ) -> ApiResult<()> {
        nothing()
    }
    async fn drop_collection(&self, _: CollectionId) -> ApiResult<()> {
        nothing()
    }
    async fn delete(
        &self,
        _: ShardRef,
        _: Vec<(SegmentId, DeleteRecord)>,
        _: u64,
    ) -> ApiResult<()> {
        nothing()
    }
    async fn search(
        &self,
        _: ShardRef,
        _: Vec<SegmentId>,
        _: VectorSearch,
    ) -> ApiResult<Vec<Vec<Hit>>> {
        nothing()
    }
    async fn query_rows(
        &self,
        _: ShardRef,
        _: Vec<SegmentId>,
        _: WireScope,
        _: Option<u64>,
    ) -> ApiResult<Vec<(Pk, SegmentId, u32)>> {
        nothing()
    }
    async fn count(&self, _: ShardRef, segments: Vec<SegmentId>, _: WireScope) -> ApiResult<u64> {
        rt::sleep(self.work).await;
        Ok(segments.len() as u64)
    }
    async fn fetch(&self, _: ShardRef, _: Vec<(SegmentId, u32)>) -> ApiResult<Batch> {
        nothing()
    }
    async fn reading(&self, _: ShardRef, read_id: u64) -> ApiResult<bool> {
        assert_eq!(read_id, READ_ID);
        match self.knows_read {
            Some(known) => Ok(known),
            None => std::future::pending().await,
        }
    }
}

/// The empty filter.
fn match_all() -> quiver_core::expr::Predicate {
    use quiver_core::schema::{CollectionSchema, DataType, FieldSchema};
    let fields = vec![
        FieldSchema::new("id", DataType::Int64).primary(false),
        FieldSchema::new("v", DataType::FloatVector { dim: 2 }),
    ];
    let schema = CollectionSchema::new("t", fields, false).unwrap();
    quiver_core::expr::compile("", &schema, &Default::default()).unwrap()
}

/// The remote half of a count.
struct RemoteCount;

#[async_trait::async_trait]
impl SplitRead for RemoteCount {
    type Out = u64;
    const NAME: &'static str = "count";

    async fn local(&self, _: &Shard) -> ApiResult<(u64, Vec<(SegmentId, bool)>)> {
        Ok((0, Vec::new()))
    }

    async fn remote(
        &self,
        qn: &dyn QueryNodeApi,
        segments: Vec<SegmentId>,
        read_id: u64,
    ) -> ApiResult<u64> {
        let scope = WireScope {
            guarantee_ts: Default::default(),
            read_ts: Default::default(),
            partitions: Vec::new(),
            filter: match_all(),
            deadline: rt::Deadline::after(Duration::from_secs(60)),
            read_id,
        };
        let at = ShardRef {
            collection: CollectionId(1),
            shard: 0,
        };
        qn.count(at, segments, scope).await
    }

    fn merge(&self, local: u64, remote: u64) -> u64 {
        local + remote
    }
}

const READ_ID: u64 = 7;
const ID: (ShardRef, u64) = (
    ShardRef {
        collection: CollectionId(1),
        shard: 0,
    },
    READ_ID,
);

const QUICK: Liveness = Liveness {
    period: Duration::from_millis(20),
    ping_timeout: Duration::from_millis(20),
};

#[tokio::test]
async fn a_busy_node_is_waited_for() {
    let qn: Arc<dyn QueryNodeApi> = Arc::new(SlowNode {
        work: Duration::from_millis(150),
        knows_read: Some(true),
    });
    let segs = vec![SegmentId(1), SegmentId(2)];
    let n = remote_while_alive(&RemoteCount, qn.as_ref(), ID, segs, QUICK).await;
    assert_eq!(n.unwrap(), 2);
}

#[tokio::test]
async fn a_silent_node_is_given_up_on() {
    let qn: Arc<dyn QueryNodeApi> = Arc::new(SlowNode {
        work: Duration::from_secs(600),
        knows_read: None,
    });
    let e = remote_while_alive(&RemoteCount, qn.as_ref(), ID, vec![SegmentId(1)], QUICK)
        .await
        .unwrap_err();
    assert_eq!(e.code, code::UNAVAILABLE);
    assert!(!e.is_deadline());
}

/// A read the node never received (lost on the way) or forgot (a restart) is not
/// waited for until its deadline: the node says so when asked.
#[tokio::test]
async fn a_read_the_node_does_not_know_is_given_up_on() {
    let qn: Arc<dyn QueryNodeApi> = Arc::new(SlowNode {
        work: Duration::from_secs(600),
        knows_read: Some(false),
    });
    let e = remote_while_alive(&RemoteCount, qn.as_ref(), ID, vec![SegmentId(1)], QUICK)
        .await
        .unwrap_err();
    assert_eq!(e.code, code::UNAVAILABLE);
    assert!(e.reason.contains("not running this read"), "{}", e.reason);
}
