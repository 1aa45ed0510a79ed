//! The streaming node's API: the writes and reads of the shards it owns, defined once;
//! [`StreamingNode`](crate::streaming::StreamingNode) implements it,
//! [`StreamingService`] serves it and [`RemoteStreaming`] reaches it across the network.
//! The proxy's [`ShardRouter`](crate::proxy::router::ShardRouter) implements it too,
//! sending each request to the node that owns the shard's vchannel.

use std::sync::Arc;

use quiver_core::batch::{Batch, Pk};
use quiver_core::ids::{CollectionId, PartitionId, SegmentId};
use quiver_core::search::Hit;
use quiver_core::shard::MutationAck;
use tonic::transport::Channel;
use tonic::{Request, Response};

use super::service::{rpc_service, serve_envelope, RequestDeadline, RpcClient, CALL_TIMEOUT};
use super::types::{IndexProgress, VectorSearch, WireScope};
use crate::coordinator::CollectionInfo;
use crate::error::ApiResult;
use crate::pb::internal::streaming_client::StreamingClient;
use crate::pb::internal::streaming_server::{Streaming as StreamingRpc, StreamingServer};
use crate::pb::internal::Envelope;

/// One shard of one collection: the unit a streaming node owns (through its vchannel).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ShardRef {
    pub collection: CollectionId,
    pub shard: u32,
}

rpc_service! {
    /// What the proxy needs from streaming nodes; served locally or over RPC.
    pub trait StreamingApi;
    /// The streaming node's requests on the wire.
    pub enum StreamRequest;
    client RemoteStreaming;

    /// Registers (or refreshes) a collection's catalog entry; its shards open on use.
    fn open(info: CollectionInfo) -> ();
    /// Closes a dropped collection's shards and deletes their WALs and manifests.
    fn drop_collection(info: CollectionInfo) -> ();
    /// Inserts (or, `upsert`, replaces by primary key) a batch; acknowledged once in
    /// the WAL.
    fn insert(at: ShardRef, partition: PartitionId, batch: Batch, upsert: bool) -> MutationAck;
    fn delete(at: ShardRef, pks: Vec<Pk>) -> MutationAck;
    /// Seals and flushes the shard's growing data; returns its sealed segments.
    fn flush(at: ShardRef) -> Vec<SegmentId>;
    /// Top-k per query over the whole shard (growing, sealed and handed-off segments).
    fn search(at: ShardRef, search: VectorSearch) -> Vec<Vec<Hit>>;
    /// The rows in scope (primary key, segment, row), sorted by key, at most `limit`.
    fn query_rows(at: ShardRef, scope: WireScope, limit: Option<u64>) -> Vec<(Pk, SegmentId, u32)>;
    fn count(at: ShardRef, scope: WireScope) -> u64;
    /// Whole rows by (segment, row), in the order asked.
    fn fetch(at: ShardRef, refs: Vec<(SegmentId, u32)>) -> Batch;
    /// How far index `index` is built and served over the shard's sealed segments,
    /// and why it failed for good if it did (see `delegator::progress`).
    fn index_state(at: ShardRef, index: i64) -> IndexProgress;
}

impl RequestDeadline for StreamRequest {
    /// Reads carry their client's deadline in their scope.
    fn deadline(&self) -> Option<quiver_core::rt::Deadline> {
        match self {
            StreamRequest::search { search, .. } => Some(search.scope.deadline),
            StreamRequest::query_rows { scope, .. } | StreamRequest::count { scope, .. } => {
                Some(scope.deadline)
            }
            _ => None,
        }
    }
}

impl StreamRequest {
    /// The shard the request is for, if it is for one.
    pub fn target(&self) -> Option<ShardRef> {
        match self {
            StreamRequest::open { .. } | StreamRequest::drop_collection { .. } => None,
            StreamRequest::insert { at, .. }
            | StreamRequest::delete { at, .. }
            | StreamRequest::flush { at }
            | StreamRequest::search { at, .. }
            | StreamRequest::query_rows { at, .. }
            | StreamRequest::count { at, .. }
            | StreamRequest::fetch { at, .. }
            | StreamRequest::index_state { at, .. } => Some(*at),
        }
    }
}

#[cfg(not(madsim))]
pub type StreamingServerOf<T> = StreamingServer<T>;
#[cfg(madsim)]
pub type StreamingServerOf<T> = StreamingServer<T, tonic::codegen::IdentityInterceptor>;

/// Serves a streaming node over RPC.
pub struct StreamingService(pub Arc<dyn StreamingApi>);

impl StreamingService {
    pub fn into_server(self) -> StreamingServerOf<Self> {
        StreamingServer::new(self)
            .max_decoding_message_size(super::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(super::MAX_MESSAGE_BYTES)
    }
}

#[tonic::async_trait]
impl StreamingRpc for StreamingService {
    async fn call(&self, req: Request<Envelope>) -> Result<Response<Envelope>, tonic::Status> {
        serve_envelope!(req, StreamRequest, self.0.as_ref())
    }
}

/// A streaming node across the network.
pub type RemoteStreaming = RpcClient<StreamingClient<Channel>>;

impl RemoteStreaming {
    pub fn new(addr: &str) -> ApiResult<Self> {
        RpcClient::connect("streaming node", addr, CALL_TIMEOUT)
    }
}
