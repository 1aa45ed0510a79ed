//! The coordinator's API: catalog (DDL), TSO, pchannel assignment and query
//! coordination, defined once; the local [`Coordinator`](crate::coordinator::Coordinator)
//! implements it, [`CoordinatorService`] serves it for whichever seat holds office, and
//! [`RemoteCoordinator`] reaches it across the network (moving between seats).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use quiver_core::schema::CollectionSchema;
use quiver_core::tso::Timestamp;
use serde::de::DeserializeOwned;
use tonic::transport::Channel;
use tonic::{Request, Response};

use super::service::{rpc_service, serve_envelope, RequestDeadline, RpcClient, CALL_TIMEOUT};
use super::streaming::ShardRef;
use crate::channels::ChannelAssignment;
use crate::coordinator::{CatalogChange, CollectionInfo, DatabaseInfo};
use crate::error::{code, ApiError, ApiResult};
use crate::leader::CoordinatorSeat;
use crate::pb::internal::coordinator_client::CoordinatorClient;
use crate::pb::internal::coordinator_server::{Coordinator as CoordinatorRpc, CoordinatorServer};
use crate::pb::internal::Envelope;

rpc_service! {
    /// What other roles need from the coordinator; served locally or over RPC.
    pub trait CoordinatorApi;
    /// The coordinator's requests on the wire.
    pub enum CoordRequest;
    client RemoteCoordinator;
    local crate::coordinator::Coordinator;

    fn get(db: &str => String, name: &str => String) -> CollectionInfo;
    fn list(db: &str => String) -> Vec<CollectionInfo>;
    /// Every collection of every database, in one snapshot.
    fn all() -> Vec<CollectionInfo>;
    fn create(
        db: &str => String,
        schema: CollectionSchema,
        shards: u32,
        consistency_level: i32,
        properties: Vec<(String, String)>,
    ) -> CollectionInfo;
    /// The dropped collection, or `None` if there was none of that name.
    fn drop_collection(db: &str => String, name: &str => String) -> Option<CollectionInfo>;
    fn database(name: &str => String) -> DatabaseInfo;
    fn databases() -> Vec<DatabaseInfo>;
    fn create_database(name: &str => String, properties: Vec<(String, String)>) -> DatabaseInfo;
    fn drop_database(name: &str => String) -> ();
    /// CreateAlias (`replace` false) or AlterAlias (`replace` true).
    fn set_alias(db: &str => String, alias: &str => String, collection: &str => String, replace: bool) -> ();
    fn drop_alias(db: &str => String, alias: &str => String) -> ();
    /// The collection an alias names.
    fn describe_alias(db: &str => String, alias: &str => String) -> String;
    fn list_aliases(db: &str => String, collection: Option<&str> => Option<String>) -> Vec<String>;
    fn alter_database(
        name: &str => String,
        set: Vec<(String, String)>,
        delete: Vec<String>,
    ) -> DatabaseInfo;
    fn change(db: &str => String, name: &str => String, change: CatalogChange) -> CollectionInfo;
    /// Allocates `count` timestamps; returns the last.
    fn alloc(count: u32) -> Timestamp;
    /// A streaming node's heartbeat (`fresh` on its first after starting); returns
    /// the pchannels it owns.
    fn heartbeat(node: &str => String, fresh: bool) -> Vec<ChannelAssignment>;
    /// Who owns the pchannel a collection's shard rides on (assigning it if nobody
    /// live does).
    fn locate(at: ShardRef) -> ChannelAssignment;
    /// Moves `pchannel` to another live streaming node (`to`, or the coordinator's
    /// choice) under a new epoch.
    fn reassign(pchannel: &str => String, to: Option<&str> => Option<String>) -> ChannelAssignment;
    /// The query node to serve `vchannel`'s sealed segments, among `candidates`, not
    /// `avoid` (see [`crate::querycoord`]).
    fn assign_query_node(
        vchannel: &str => String,
        candidates: Vec<String>,
        avoid: Option<String>,
    ) -> String;

    provided {
        /// A fresh timestamp: "now" in the cluster's order.
        async fn now(&self) -> ApiResult<Timestamp> {
            self.alloc(1).await
        }
    }
}

/// Carries no deadline: its calls use the client's timeout.
impl RequestDeadline for CoordRequest {}

/// The generated server type differs between real tonic and madsim's (which adds an
/// interceptor parameter); this alias names either.
#[cfg(not(madsim))]
pub type CoordinatorServerOf<T> = CoordinatorServer<T>;
#[cfg(madsim)]
pub type CoordinatorServerOf<T> = CoordinatorServer<T, tonic::codegen::IdentityInterceptor>;

/// Serves the coordinator over RPC while its seat holds office; a standby answers
/// `NOT_LEADER`.
pub struct CoordinatorService(pub Arc<CoordinatorSeat>);

impl CoordinatorService {
    pub fn into_server(self) -> CoordinatorServerOf<Self> {
        CoordinatorServer::new(self)
    }
}

#[tonic::async_trait]
impl CoordinatorRpc for CoordinatorService {
    async fn call(&self, req: Request<Envelope>) -> Result<Response<Envelope>, tonic::Status> {
        match self.0.current().await {
            Ok(c) => serve_envelope!(req, CoordRequest, c.as_ref()),
            Err(e) => Ok(Response::new(super::envelope::seal_result::<()>(Err(e)))),
        }
    }
}

/// The coordinator across the network: the active one of several seats. A call that
/// finds a standby or no answer tries the next address; after a full round without
/// an active coordinator it waits a little and tries once more.
#[derive(Clone)]
pub struct RemoteCoordinator {
    seats: Arc<Vec<RpcClient<CoordinatorClient<Channel>>>>,
    /// The seat that answered last.
    current: Arc<AtomicUsize>,
}

impl RemoteCoordinator {
    /// `addr` like `http://10.0.0.1:7000`; connects on first use.
    pub fn new(addr: &str) -> ApiResult<Self> {
        Self::with_seats(&[addr])
    }

    /// Every coordinator seat's address.
    pub fn with_seats(addrs: &[&str]) -> ApiResult<Self> {
        if addrs.is_empty() {
            return Err(ApiError::internal("no coordinator address"));
        }
        let seats = addrs
            .iter()
            .map(|a| RpcClient::connect("coordinator", a, CALL_TIMEOUT))
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(RemoteCoordinator {
            seats: Arc::new(seats),
            current: Default::default(),
        })
    }

    /// Sends a request (catalog requests carry no deadline: see [`RequestDeadline`]).
    async fn send_until<R: DeserializeOwned>(
        &self,
        req: CoordRequest,
        _no_deadline: Option<quiver_core::rt::Deadline>,
    ) -> ApiResult<R> {
        self.send(req).await
    }

    /// Sends to the active seat, moving on from standbys and silent seats. A call made
    /// for a client's request ([`crate::deadline::carried`]) to a lone seat waits as
    /// long as the request may, not the fixed [`CALL_TIMEOUT`]: there is no other seat
    /// to try, and giving up earlier would fail a request the client still waits for.
    /// With several seats each try keeps the fixed bound, so a silent seat does not
    /// eat the request's whole time before the next seat is asked.
    async fn send<R: DeserializeOwned>(&self, req: CoordRequest) -> ApiResult<R> {
        let n = self.seats.len();
        let lone = (n == 1).then(crate::deadline::carried).flatten();
        let mut last = None;
        for round in 0..2 {
            if round > 0 {
                quiver_core::rt::sleep(crate::leader::TAKEOVER_AFTER).await;
            }
            let start = self.current.load(Ordering::Relaxed);
            for k in 0..n {
                let i = (start + k) % n;
                match self.seats[i].send_until::<_, R>(&req, lone).await {
                    Err(e) if e.code == code::NOT_LEADER || e.code == code::UNAVAILABLE => {
                        last = Some(e)
                    }
                    other => {
                        self.current.store(i, Ordering::Relaxed);
                        return other;
                    }
                }
            }
            if n == 1 && last.as_ref().is_some_and(|e| e.code == code::UNAVAILABLE) {
                break;
            }
        }
        Err(last.unwrap_or_else(|| ApiError::unavailable("no coordinator", true)))
    }
}

/// A streaming node elsewhere takes its timestamps from the coordinator.
#[async_trait::async_trait]
impl quiver_core::tso::TimestampOracle for RemoteCoordinator {
    async fn alloc(&self, count: u32) -> Result<Timestamp, quiver_core::tso::TsoError> {
        CoordinatorApi::alloc(self, count)
            .await
            .map_err(|e| quiver_core::tso::TsoError::Unavailable(e.reason))
    }
}
