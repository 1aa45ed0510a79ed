//! The query node's API, defined once: what a delegator asks of the node serving its
//! shard's sealed segments. [`QueryNode`](crate::querynode::QueryNode) implements it,
//! [`QueryNodeService`] serves it and [`RemoteQueryNode`] reaches it.
//!
//! Reads name the segments the delegator expects the node to serve; a segment it does
//! not have is an error, never a silent omission. Requests that change what a node
//! serves carry the delegator's owner epoch: once a newer owner of the shard has
//! spoken, an older one is refused (a deposed delegator must not replace the new
//! owner's segments).

use std::sync::Arc;

use quiver_core::batch::{Batch, Pk};
use quiver_core::ids::{CollectionId, SegmentId};
use quiver_core::search::Hit;
use quiver_core::segment::storage::SegmentFiles;
use quiver_core::segment::DeleteRecord;
use tonic::transport::Channel;
use tonic::{Request, Response};

use super::service::{rpc_service, serve_envelope, RequestDeadline, RpcClient, CALL_TIMEOUT};
use super::streaming::ShardRef;
use super::types::{VectorSearch, WireScope};
use crate::coordinator::{CollectionInfo, IndexInfo};
use crate::error::ApiResult;
use crate::pb::internal::query_node_client::QueryNodeClient;
use crate::pb::internal::query_node_server::{QueryNode as QueryNodeRpc, QueryNodeServer};
use crate::pb::internal::Envelope;

/// Sealed segments handed to a query node: each with its files and the deletes not
/// yet in a delete log.
pub type Handoff = Vec<(SegmentFiles, Vec<DeleteRecord>)>;

rpc_service! {
    /// What a delegator needs from a query node; served locally or over RPC.
    pub trait QueryNodeApi;
    /// The query node's requests on the wire.
    pub enum QueryNodeRequest;
    client RemoteQueryNode;

    /// Serve these segments of the shard (loading them from object storage).
    fn load(info: CollectionInfo, at: ShardRef, segments: Handoff, epoch: u64) -> ();
    fn release(at: ShardRef, segments: Vec<SegmentId>, epoch: u64) -> ();
    /// Load an index built after its segment was handed off.
    fn load_index(
        info: Box<CollectionInfo>,
        at: ShardRef,
        files: Box<SegmentFiles>,
        index: Box<IndexInfo>,
        epoch: u64,
    ) -> ();
    fn drop_collection(collection: CollectionId) -> ();
    /// Deletes that hit served segments (forwarded before the delete is acknowledged).
    fn delete(at: ShardRef, deletes: Vec<(SegmentId, DeleteRecord)>, epoch: u64) -> ();
    fn search(at: ShardRef, segments: Vec<SegmentId>, search: VectorSearch) -> Vec<Vec<Hit>>;
    fn query_rows(
        at: ShardRef,
        segments: Vec<SegmentId>,
        scope: WireScope,
        limit: Option<u64>,
    ) -> Vec<(Pk, SegmentId, u32)>;
    fn count(at: ShardRef, segments: Vec<SegmentId>, scope: WireScope) -> u64;
    fn fetch(at: ShardRef, refs: Vec<(SegmentId, u32)>) -> Batch;
    /// Answers at once whether the node is still working on the delegator's read
    /// `read_id` of shard `at`: a read that runs long is busy (true), or was lost on
    /// the way or with a restart (false); no answer means the node is gone.
    fn reading(at: ShardRef, read_id: u64) -> bool;
}

impl RequestDeadline for QueryNodeRequest {
    /// Reads carry their client's deadline in their scope.
    fn deadline(&self) -> Option<quiver_core::rt::Deadline> {
        match self {
            QueryNodeRequest::search { search, .. } => Some(search.scope.deadline),
            QueryNodeRequest::query_rows { scope, .. } | QueryNodeRequest::count { scope, .. } => {
                Some(scope.deadline)
            }
            _ => None,
        }
    }
}

#[cfg(not(madsim))]
pub type QueryNodeServerOf<T> = QueryNodeServer<T>;
#[cfg(madsim)]
pub type QueryNodeServerOf<T> = QueryNodeServer<T, tonic::codegen::IdentityInterceptor>;

/// Serves a query node over RPC.
pub struct QueryNodeService(pub Arc<dyn QueryNodeApi>);

impl QueryNodeService {
    pub fn into_server(self) -> QueryNodeServerOf<Self> {
        QueryNodeServer::new(self)
            .max_decoding_message_size(super::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(super::MAX_MESSAGE_BYTES)
    }
}

#[tonic::async_trait]
impl QueryNodeRpc for QueryNodeService {
    async fn call(&self, req: Request<Envelope>) -> Result<Response<Envelope>, tonic::Status> {
        serve_envelope!(req, QueryNodeRequest, self.0.as_ref())
    }
}

/// A query node across the network.
pub type RemoteQueryNode = RpcClient<QueryNodeClient<Channel>>;

impl RemoteQueryNode {
    pub fn new(addr: &str) -> ApiResult<Self> {
        RpcClient::connect("query node", addr, CALL_TIMEOUT)
    }
}
