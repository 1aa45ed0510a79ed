//! The data node's API, defined once: index builds for sealed segments.
//! [`DataNode`](crate::datanode::DataNode) implements it, [`DataNodeService`] serves it
//! and [`RemoteDataNode`] reaches it.

use std::sync::Arc;
use std::time::Duration;

use quiver_core::segment::storage::SegmentFiles;
use tonic::transport::Channel;
use tonic::{Request, Response};

use super::service::{rpc_service, serve_envelope, RequestDeadline, RpcClient};
use crate::coordinator::{CollectionInfo, IndexInfo};
use crate::error::ApiResult;
use crate::pb::internal::data_node_client::DataNodeClient;
use crate::pb::internal::data_node_server::{DataNode as DataNodeRpc, DataNodeServer};
use crate::pb::internal::Envelope;

rpc_service! {
    /// What a streaming node needs from a data node; served locally or over RPC.
    pub trait DataNodeApi;
    /// The data node's requests on the wire.
    pub enum DataNodeRequest;
    client RemoteDataNode;

    /// Builds `index` for a sealed segment and writes it to object storage.
    fn build_index(info: CollectionInfo, files: SegmentFiles, index: IndexInfo) -> ();
}

/// Carries no deadline: its calls use the client's timeout.
impl RequestDeadline for DataNodeRequest {}

#[cfg(not(madsim))]
pub type DataNodeServerOf<T> = DataNodeServer<T>;
#[cfg(madsim)]
pub type DataNodeServerOf<T> = DataNodeServer<T, tonic::codegen::IdentityInterceptor>;

/// Serves a data node over RPC.
pub struct DataNodeService(pub Arc<dyn DataNodeApi>);

impl DataNodeService {
    pub fn into_server(self) -> DataNodeServerOf<Self> {
        DataNodeServer::new(self)
    }
}

#[tonic::async_trait]
impl DataNodeRpc for DataNodeService {
    async fn call(&self, req: Request<Envelope>) -> Result<Response<Envelope>, tonic::Status> {
        serve_envelope!(req, DataNodeRequest, self.0.as_ref())
    }
}

/// A data node across the network.
pub type RemoteDataNode = RpcClient<DataNodeClient<Channel>>;

/// Index builds take a while: data-node calls get a long deadline.
const BUILD_TIMEOUT: Duration = Duration::from_secs(3600);

impl RemoteDataNode {
    pub fn new(addr: &str) -> ApiResult<Self> {
        RpcClient::connect("data node", addr, BUILD_TIMEOUT)
    }
}
