//! The WAL store's API, defined once: per-log operations with the log's own refusals
//! (fenced, truncated) as typed outcomes. [`WalStore`](crate::walstore::WalStore)
//! implements it, [`WalStoreService`] serves it and [`RemoteWalStore`] reaches it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tonic::transport::Channel;
use tonic::{Request, Response};

use super::service::{rpc_service, serve_envelope, RequestDeadline, RpcClient, CALL_TIMEOUT};
use crate::error::ApiResult;
use crate::pb::internal::wal_store_client::WalStoreClient;
use crate::pb::internal::wal_store_server::{WalStore as WalStoreRpc, WalStoreServer};
use crate::pb::internal::Envelope;

/// A log's refusal that its writer acts on (not a failure of the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WalRefusal {
    /// A newer epoch holds the log.
    Fenced { attempted: u64, current: u64 },
    /// The offset asked for was truncated away.
    Truncated { requested: u64, first: u64 },
}

/// What a log operation gave: its value, or the log's refusal.
pub type WalOutcome<T> = Result<T, WalRefusal>;

/// A log's (next offset, first offset, epoch).
pub type WalState = (u64, u64, u64);

rpc_service! {
    /// The WAL store's operations, by log name; served locally or over RPC.
    pub trait WalStoreApi;
    /// The WAL store's requests on the wire.
    pub enum WalStoreRequest;
    client RemoteWalStore;

    fn fence(log: String, epoch: u64) -> WalOutcome<()>;
    /// Appends under `epoch`; `writer` names the shard copy (for audits, not fencing).
    fn append(log: String, epoch: u64, payload: Vec<u8>, writer: String) -> WalOutcome<u64>;
    /// Up to `max` records from `from`: (offset, epoch, payload).
    fn read(log: String, from: u64, max: u32) -> WalOutcome<Vec<(u64, u64, Vec<u8>)>>;
    fn truncate(log: String, before: u64) -> WalOutcome<()>;
    fn state(log: String) -> WalState;
    fn remove(log: String) -> ();
}

/// Carries no deadline: its calls use the client's timeout.
impl RequestDeadline for WalStoreRequest {}

#[cfg(not(madsim))]
pub type WalStoreServerOf<T> = WalStoreServer<T>;
#[cfg(madsim)]
pub type WalStoreServerOf<T> = WalStoreServer<T, tonic::codegen::IdentityInterceptor>;

/// Serves a WAL store over RPC.
pub struct WalStoreService(pub Arc<dyn WalStoreApi>);

impl WalStoreService {
    pub fn into_server(self) -> WalStoreServerOf<Self> {
        WalStoreServer::new(self)
            .max_decoding_message_size(super::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(super::MAX_MESSAGE_BYTES)
    }
}

#[tonic::async_trait]
impl WalStoreRpc for WalStoreService {
    async fn call(&self, req: Request<Envelope>) -> Result<Response<Envelope>, tonic::Status> {
        serve_envelope!(req, WalStoreRequest, self.0.as_ref())
    }
}

/// A WAL store across the network.
pub type RemoteWalStore = RpcClient<WalStoreClient<Channel>>;

impl RemoteWalStore {
    pub fn new(addr: &str) -> ApiResult<Self> {
        RpcClient::connect("WAL store", addr, CALL_TIMEOUT)
    }
}
