//! Internal RPCs between roles: tonic services carrying versioned envelopes
//! ([`wire`]), a server for each role and a client implementing the same trait the
//! local role does, so a proxy talks to a coordinator or streaming node the same way
//! whether it is in-process or across the network.

pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use quiver_core::schema::CollectionSchema;
use quiver_core::tso::Timestamp;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response};

use crate::channels::ChannelAssignment;
use crate::coordinator::{CatalogChange, CollectionInfo, CoordinatorApi, DatabaseInfo};
use crate::leader::CoordinatorSeat;

use crate::error::{code, ApiError, ApiResult};
use crate::pb::internal::coordinator_client::CoordinatorClient;
use crate::pb::internal::coordinator_server::{Coordinator as CoordinatorRpc, CoordinatorServer};
use crate::pb::internal::streaming_client::StreamingClient;
use crate::pb::internal::streaming_server::{Streaming as StreamingRpc, StreamingServer};
use crate::pb::internal::Envelope;
use crate::streaming::StreamingNode;
use wire::{CoordRequest, CoordResponse, StreamRequest, StreamResponse, WireResult};

/// The generated server types differ between real tonic and madsim's (which adds an
/// interceptor parameter); these aliases name either.
#[cfg(not(madsim))]
pub type CoordinatorServerOf<T> = CoordinatorServer<T>;
#[cfg(madsim)]
pub type CoordinatorServerOf<T> = CoordinatorServer<T, tonic::codegen::IdentityInterceptor>;
#[cfg(not(madsim))]
pub type StreamingServerOf<T> = StreamingServer<T>;
#[cfg(madsim)]
pub type StreamingServerOf<T> = StreamingServer<T, tonic::codegen::IdentityInterceptor>;

/// How long an internal call may take before the caller gives up.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Coordinator
// ---------------------------------------------------------------------------------------

/// Serves the coordinator over RPC while its seat holds office; a standby answers
/// `NOT_LEADER`.
pub struct CoordinatorService(pub Arc<CoordinatorSeat>);

impl CoordinatorService {
    pub fn into_server(self) -> CoordinatorServerOf<Self> {
        CoordinatorServer::new(self)
    }

    async fn dispatch(&self, r: CoordRequest) -> ApiResult<CoordResponse> {
        let c = &self.0.current().await?;
        Ok(match r {
            CoordRequest::Heartbeat { node, fresh } => {
                CoordResponse::Assignments(c.heartbeat(&node, fresh).await?)
            }
            CoordRequest::Locate { vchannel } => {
                CoordResponse::Assignment(c.locate(&vchannel).await?)
            }
            CoordRequest::Reassign { vchannel, to } => {
                CoordResponse::Assignment(c.reassign(&vchannel, to.as_deref()).await?)
            }
            CoordRequest::Get { db, name } => {
                CoordResponse::Collection(CoordinatorApi::get(c.as_ref(), &db, &name).await?)
            }
            CoordRequest::List { db } => {
                CoordResponse::Collections(CoordinatorApi::list(c.as_ref(), &db).await?)
            }
            CoordRequest::Create {
                db,
                schema,
                shards,
                consistency_level,
                properties,
            } => CoordResponse::Collection(
                c.create(&db, schema, shards, consistency_level, properties)
                    .await?,
            ),
            CoordRequest::Drop { db, name } => CoordResponse::Dropped(
                CoordinatorApi::drop_collection(c.as_ref(), &db, &name).await?,
            ),
            CoordRequest::Change { db, name, change } => {
                CoordResponse::Collection(c.change(&db, &name, change).await?)
            }
            CoordRequest::Alloc { count } => CoordResponse::Timestamp(c.alloc(count).await?),
            CoordRequest::Database { name } => {
                CoordResponse::Database(CoordinatorApi::database(c.as_ref(), &name).await?)
            }
            CoordRequest::Databases => {
                CoordResponse::Databases(CoordinatorApi::databases(c.as_ref()).await?)
            }
            CoordRequest::CreateDatabase { name, properties } => CoordResponse::Database(
                CoordinatorApi::create_database(c.as_ref(), &name, properties).await?,
            ),
            CoordRequest::DropDatabase { name } => {
                CoordinatorApi::drop_database(c.as_ref(), &name).await?;
                CoordResponse::Done
            }
            CoordRequest::AlterDatabase { name, set, delete } => CoordResponse::Database(
                CoordinatorApi::alter_database(c.as_ref(), &name, set, delete).await?,
            ),
            CoordRequest::SetAlias {
                db,
                alias,
                collection,
                replace,
            } => {
                CoordinatorApi::set_alias(c.as_ref(), &db, &alias, &collection, replace).await?;
                CoordResponse::Done
            }
            CoordRequest::DropAlias { db, alias } => {
                CoordinatorApi::drop_alias(c.as_ref(), &db, &alias).await?;
                CoordResponse::Done
            }
            CoordRequest::DescribeAlias { db, alias } => {
                CoordResponse::Name(CoordinatorApi::describe_alias(c.as_ref(), &db, &alias).await?)
            }
            CoordRequest::All => CoordResponse::Collections(CoordinatorApi::all(c.as_ref()).await?),
            CoordRequest::AssignQueryNode {
                vchannel,
                candidates,
                avoid,
            } => CoordResponse::Name(c.assign_query_node(&vchannel, candidates, avoid).await?),
            CoordRequest::ListAliases { db, collection } => CoordResponse::Names(
                CoordinatorApi::list_aliases(c.as_ref(), &db, collection.as_deref()).await?,
            ),
        })
    }
}

#[tonic::async_trait]
impl CoordinatorRpc for CoordinatorService {
    async fn call(&self, req: Request<Envelope>) -> Result<Response<Envelope>, tonic::Status> {
        let res: WireResult<CoordResponse> = match wire::open::<CoordRequest>(req.get_ref()) {
            Ok(r) => self.dispatch(r).await.map_err(Into::into),
            Err(e) => Err(e.into()),
        };
        Ok(Response::new(wire::seal(&res)))
    }
}

fn unreachable_role(role: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(code::UNAVAILABLE, format!("{role} unreachable: {e}"))
}

fn channel(addr: &str) -> ApiResult<Channel> {
    Ok(Endpoint::from_shared(addr.to_string())
        .map_err(|e| ApiError::internal(format!("bad address {addr}: {e}")))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(CALL_TIMEOUT)
        .connect_lazy())
}

/// The coordinator across the network: the active one of several seats. A call that
/// finds a standby or no answer tries the next address; after a full round without
/// an active coordinator it waits a little and tries once more.
#[derive(Clone)]
pub struct RemoteCoordinator {
    clients: Arc<Vec<CoordinatorClient<Channel>>>,
    /// The address that answered last.
    current: Arc<std::sync::atomic::AtomicUsize>,
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
        Ok(RemoteCoordinator {
            clients: Arc::new(
                addrs
                    .iter()
                    .map(|a| Ok(CoordinatorClient::new(channel(a)?)))
                    .collect::<ApiResult<Vec<_>>>()?,
            ),
            current: Default::default(),
        })
    }

    async fn call_one(&self, i: usize, r: &CoordRequest) -> ApiResult<CoordResponse> {
        let mut c = self.clients[i].clone();
        let resp = c
            .call(wire::seal(r))
            .await
            .map_err(|s| unreachable_role("coordinator", s))?;
        let res: WireResult<CoordResponse> = wire::open(resp.get_ref())?;
        res.map_err(Into::into)
    }

    async fn call(&self, r: CoordRequest) -> ApiResult<CoordResponse> {
        use std::sync::atomic::Ordering;
        let n = self.clients.len();
        let mut last = None;
        for round in 0..2 {
            if round > 0 {
                quiver_core::rt::sleep(crate::leader::TAKEOVER_AFTER).await;
            }
            let start = self.current.load(Ordering::Relaxed);
            for k in 0..n {
                let i = (start + k) % n;
                match self.call_one(i, &r).await {
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
        Err(last.unwrap_or_else(|| ApiError::new(code::UNAVAILABLE, "no coordinator")))
    }
}

fn expect_collection(r: CoordResponse) -> ApiResult<CollectionInfo> {
    match r {
        CoordResponse::Collection(c) => Ok(c),
        _ => Err(wire::unexpected("a collection request")),
    }
}

fn expect_database(r: CoordResponse) -> ApiResult<DatabaseInfo> {
    match r {
        CoordResponse::Database(d) => Ok(d),
        _ => Err(wire::unexpected("a database request")),
    }
}

#[async_trait::async_trait]
impl CoordinatorApi for RemoteCoordinator {
    async fn get(&self, db: &str, name: &str) -> ApiResult<CollectionInfo> {
        expect_collection(
            self.call(CoordRequest::Get {
                db: db.into(),
                name: name.into(),
            })
            .await?,
        )
    }
    async fn list(&self, db: &str) -> ApiResult<Vec<CollectionInfo>> {
        match self.call(CoordRequest::List { db: db.into() }).await? {
            CoordResponse::Collections(v) => Ok(v),
            _ => Err(wire::unexpected("list")),
        }
    }
    async fn all(&self) -> ApiResult<Vec<CollectionInfo>> {
        match self.call(CoordRequest::All).await? {
            CoordResponse::Collections(v) => Ok(v),
            _ => Err(wire::unexpected("all collections")),
        }
    }
    async fn create(
        &self,
        db: &str,
        schema: CollectionSchema,
        shards: u32,
        consistency_level: i32,
        properties: Vec<(String, String)>,
    ) -> ApiResult<CollectionInfo> {
        expect_collection(
            self.call(CoordRequest::Create {
                db: db.into(),
                schema,
                shards,
                consistency_level,
                properties,
            })
            .await?,
        )
    }
    async fn drop_collection(&self, db: &str, name: &str) -> ApiResult<Option<CollectionInfo>> {
        match self
            .call(CoordRequest::Drop {
                db: db.into(),
                name: name.into(),
            })
            .await?
        {
            CoordResponse::Dropped(v) => Ok(v),
            _ => Err(wire::unexpected("drop")),
        }
    }
    async fn database(&self, name: &str) -> ApiResult<DatabaseInfo> {
        expect_database(
            self.call(CoordRequest::Database { name: name.into() })
                .await?,
        )
    }
    async fn databases(&self) -> ApiResult<Vec<DatabaseInfo>> {
        match self.call(CoordRequest::Databases).await? {
            CoordResponse::Databases(v) => Ok(v),
            _ => Err(wire::unexpected("list databases")),
        }
    }
    async fn create_database(
        &self,
        name: &str,
        properties: Vec<(String, String)>,
    ) -> ApiResult<DatabaseInfo> {
        expect_database(
            self.call(CoordRequest::CreateDatabase {
                name: name.into(),
                properties,
            })
            .await?,
        )
    }
    async fn drop_database(&self, name: &str) -> ApiResult<()> {
        match self
            .call(CoordRequest::DropDatabase { name: name.into() })
            .await?
        {
            CoordResponse::Done => Ok(()),
            _ => Err(wire::unexpected("drop database")),
        }
    }
    async fn set_alias(
        &self,
        db: &str,
        alias: &str,
        collection: &str,
        replace: bool,
    ) -> ApiResult<()> {
        match self
            .call(CoordRequest::SetAlias {
                db: db.into(),
                alias: alias.into(),
                collection: collection.into(),
                replace,
            })
            .await?
        {
            CoordResponse::Done => Ok(()),
            _ => Err(wire::unexpected("set alias")),
        }
    }
    async fn drop_alias(&self, db: &str, alias: &str) -> ApiResult<()> {
        match self
            .call(CoordRequest::DropAlias {
                db: db.into(),
                alias: alias.into(),
            })
            .await?
        {
            CoordResponse::Done => Ok(()),
            _ => Err(wire::unexpected("drop alias")),
        }
    }
    async fn describe_alias(&self, db: &str, alias: &str) -> ApiResult<String> {
        match self
            .call(CoordRequest::DescribeAlias {
                db: db.into(),
                alias: alias.into(),
            })
            .await?
        {
            CoordResponse::Name(n) => Ok(n),
            _ => Err(wire::unexpected("describe alias")),
        }
    }
    async fn list_aliases(&self, db: &str, collection: Option<&str>) -> ApiResult<Vec<String>> {
        match self
            .call(CoordRequest::ListAliases {
                db: db.into(),
                collection: collection.map(Into::into),
            })
            .await?
        {
            CoordResponse::Names(v) => Ok(v),
            _ => Err(wire::unexpected("list aliases")),
        }
    }
    async fn alter_database(
        &self,
        name: &str,
        set: Vec<(String, String)>,
        delete: Vec<String>,
    ) -> ApiResult<DatabaseInfo> {
        expect_database(
            self.call(CoordRequest::AlterDatabase {
                name: name.into(),
                set,
                delete,
            })
            .await?,
        )
    }
    async fn change(
        &self,
        db: &str,
        name: &str,
        change: CatalogChange,
    ) -> ApiResult<CollectionInfo> {
        expect_collection(
            self.call(CoordRequest::Change {
                db: db.into(),
                name: name.into(),
                change,
            })
            .await?,
        )
    }
    async fn alloc(&self, count: u32) -> ApiResult<Timestamp> {
        match self.call(CoordRequest::Alloc { count }).await? {
            CoordResponse::Timestamp(t) => Ok(t),
            _ => Err(wire::unexpected("alloc")),
        }
    }
    async fn heartbeat(&self, node: &str, fresh: bool) -> ApiResult<Vec<ChannelAssignment>> {
        match self
            .call(CoordRequest::Heartbeat {
                node: node.into(),
                fresh,
            })
            .await?
        {
            CoordResponse::Assignments(v) => Ok(v),
            _ => Err(wire::unexpected("heartbeat")),
        }
    }
    async fn locate(&self, vchannel: &str) -> ApiResult<ChannelAssignment> {
        match self
            .call(CoordRequest::Locate {
                vchannel: vchannel.into(),
            })
            .await?
        {
            CoordResponse::Assignment(a) => Ok(a),
            _ => Err(wire::unexpected("locate")),
        }
    }
    async fn assign_query_node(
        &self,
        vchannel: &str,
        candidates: Vec<String>,
        avoid: Option<String>,
    ) -> ApiResult<String> {
        match self
            .call(CoordRequest::AssignQueryNode {
                vchannel: vchannel.into(),
                candidates,
                avoid,
            })
            .await?
        {
            CoordResponse::Name(n) => Ok(n),
            _ => Err(wire::unexpected("assign query node")),
        }
    }
    async fn reassign(&self, vchannel: &str, to: Option<&str>) -> ApiResult<ChannelAssignment> {
        match self
            .call(CoordRequest::Reassign {
                vchannel: vchannel.into(),
                to: to.map(Into::into),
            })
            .await?
        {
            CoordResponse::Assignment(a) => Ok(a),
            _ => Err(wire::unexpected("reassign")),
        }
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

// ---------------------------------------------------------------------------------------
// Streaming node
// ---------------------------------------------------------------------------------------

/// What the proxy needs from streaming nodes; served locally or over RPC.
#[async_trait::async_trait]
pub trait StreamingApi: Send + Sync {
    async fn call(&self, req: StreamRequest) -> ApiResult<StreamResponse>;
}

#[async_trait::async_trait]
impl StreamingApi for StreamingNode {
    async fn call(&self, req: StreamRequest) -> ApiResult<StreamResponse> {
        self.handle(req).await
    }
}

/// Serves a [`StreamingNode`] over RPC.
pub struct StreamingService(pub Arc<StreamingNode>);

impl StreamingService {
    pub fn into_server(self) -> StreamingServerOf<Self> {
        StreamingServer::new(self)
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20)
    }
}

#[tonic::async_trait]
impl StreamingRpc for StreamingService {
    async fn call(&self, req: Request<Envelope>) -> Result<Response<Envelope>, tonic::Status> {
        let res: WireResult<StreamResponse> = match wire::open::<StreamRequest>(req.get_ref()) {
            Ok(r) => self.0.handle(r).await.map_err(Into::into),
            Err(e) => Err(e.into()),
        };
        Ok(Response::new(wire::seal(&res)))
    }
}

/// A streaming node across the network.
#[derive(Clone)]
pub struct RemoteStreaming {
    client: StreamingClient<Channel>,
}

impl RemoteStreaming {
    pub fn new(addr: &str) -> ApiResult<Self> {
        Ok(RemoteStreaming {
            client: StreamingClient::new(channel(addr)?)
                .max_decoding_message_size(256 << 20)
                .max_encoding_message_size(256 << 20),
        })
    }
}

#[async_trait::async_trait]
impl StreamingApi for RemoteStreaming {
    async fn call(&self, req: StreamRequest) -> ApiResult<StreamResponse> {
        let mut c = self.client.clone();
        let resp = c
            .call(wire::seal(&req))
            .await
            .map_err(|s| unreachable_role("streaming node", s))?;
        let res: WireResult<StreamResponse> = wire::open(resp.get_ref())?;
        res.map_err(Into::into)
    }
}

// ---------------------------------------------------------------------------------------
// Query node
// ---------------------------------------------------------------------------------------

use crate::pb::internal::query_node_client::QueryNodeClient;
use crate::pb::internal::query_node_server::{QueryNode as QueryNodeRpc, QueryNodeServer};
use crate::querynode::QueryNode;
use wire::QueryNodeRequest;

#[cfg(not(madsim))]
pub type QueryNodeServerOf<T> = QueryNodeServer<T>;
#[cfg(madsim)]
pub type QueryNodeServerOf<T> = QueryNodeServer<T, tonic::codegen::IdentityInterceptor>;

/// What a delegator needs from a query node; served locally or over RPC.
#[async_trait::async_trait]
pub trait QueryNodeApi: Send + Sync {
    async fn call(&self, req: QueryNodeRequest) -> ApiResult<StreamResponse>;
}

#[async_trait::async_trait]
impl QueryNodeApi for QueryNode {
    async fn call(&self, req: QueryNodeRequest) -> ApiResult<StreamResponse> {
        self.handle(req).await
    }
}

/// Serves a [`QueryNode`] over RPC.
pub struct QueryNodeService(pub Arc<QueryNode>);

impl QueryNodeService {
    pub fn into_server(self) -> QueryNodeServerOf<Self> {
        QueryNodeServer::new(self)
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20)
    }
}

#[tonic::async_trait]
impl QueryNodeRpc for QueryNodeService {
    async fn call(&self, req: Request<Envelope>) -> Result<Response<Envelope>, tonic::Status> {
        let res: WireResult<StreamResponse> = match wire::open::<QueryNodeRequest>(req.get_ref()) {
            Ok(r) => self.0.handle(r).await.map_err(Into::into),
            Err(e) => Err(e.into()),
        };
        Ok(Response::new(wire::seal(&res)))
    }
}

/// A query node across the network.
#[derive(Clone)]
pub struct RemoteQueryNode {
    client: QueryNodeClient<Channel>,
}

impl RemoteQueryNode {
    pub fn new(addr: &str) -> ApiResult<Self> {
        Ok(RemoteQueryNode {
            client: QueryNodeClient::new(channel(addr)?)
                .max_decoding_message_size(256 << 20)
                .max_encoding_message_size(256 << 20),
        })
    }
}

#[async_trait::async_trait]
impl QueryNodeApi for RemoteQueryNode {
    async fn call(&self, req: QueryNodeRequest) -> ApiResult<StreamResponse> {
        let mut c = self.client.clone();
        let resp = c
            .call(wire::seal(&req))
            .await
            .map_err(|s| unreachable_role("query node", s))?;
        let res: WireResult<StreamResponse> = wire::open(resp.get_ref())?;
        res.map_err(Into::into)
    }
}

// ---------------------------------------------------------------------------------------
// Data node
// ---------------------------------------------------------------------------------------

use crate::datanode::DataNode;
use crate::pb::internal::data_node_client::DataNodeClient;
use crate::pb::internal::data_node_server::{DataNode as DataNodeRpc, DataNodeServer};
use wire::DataNodeRequest;

#[cfg(not(madsim))]
pub type DataNodeServerOf<T> = DataNodeServer<T>;
#[cfg(madsim)]
pub type DataNodeServerOf<T> = DataNodeServer<T, tonic::codegen::IdentityInterceptor>;

/// What a streaming node needs from a data node; served locally or over RPC.
#[async_trait::async_trait]
pub trait DataNodeApi: Send + Sync {
    async fn call(&self, req: DataNodeRequest) -> ApiResult<StreamResponse>;
}

#[async_trait::async_trait]
impl DataNodeApi for DataNode {
    async fn call(&self, req: DataNodeRequest) -> ApiResult<StreamResponse> {
        self.handle(req).await
    }
}

/// Serves a [`DataNode`] over RPC.
pub struct DataNodeService(pub Arc<DataNode>);

impl DataNodeService {
    pub fn into_server(self) -> DataNodeServerOf<Self> {
        DataNodeServer::new(self)
    }
}

#[tonic::async_trait]
impl DataNodeRpc for DataNodeService {
    async fn call(&self, req: Request<Envelope>) -> Result<Response<Envelope>, tonic::Status> {
        let res: WireResult<StreamResponse> = match wire::open::<DataNodeRequest>(req.get_ref()) {
            Ok(r) => self.0.handle(r).await.map_err(Into::into),
            Err(e) => Err(e.into()),
        };
        Ok(Response::new(wire::seal(&res)))
    }
}

/// A data node across the network. Index builds take a while: its calls get a long
/// deadline.
#[derive(Clone)]
pub struct RemoteDataNode {
    client: DataNodeClient<Channel>,
}

impl RemoteDataNode {
    pub fn new(addr: &str) -> ApiResult<Self> {
        let ch = Endpoint::from_shared(addr.to_string())
            .map_err(|e| ApiError::internal(format!("bad address {addr}: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(3600))
            .connect_lazy();
        Ok(RemoteDataNode {
            client: DataNodeClient::new(ch),
        })
    }
}

#[async_trait::async_trait]
impl DataNodeApi for RemoteDataNode {
    async fn call(&self, req: DataNodeRequest) -> ApiResult<StreamResponse> {
        let mut c = self.client.clone();
        let resp = c
            .call(wire::seal(&req))
            .await
            .map_err(|s| unreachable_role("data node", s))?;
        let res: WireResult<StreamResponse> = wire::open(resp.get_ref())?;
        res.map_err(Into::into)
    }
}

// ---------------------------------------------------------------------------------------
// WAL store
// ---------------------------------------------------------------------------------------

use crate::pb::internal::wal_store_client::WalStoreClient;
use crate::pb::internal::wal_store_server::{WalStore as WalStoreRpc, WalStoreServer};
use crate::walstore::{WalRequest, WalResponse, WalStore, WalStoreApi};

#[cfg(not(madsim))]
pub type WalStoreServerOf<T> = WalStoreServer<T>;
#[cfg(madsim)]
pub type WalStoreServerOf<T> = WalStoreServer<T, tonic::codegen::IdentityInterceptor>;

/// Serves a [`WalStore`] over RPC.
pub struct WalStoreService(pub Arc<WalStore>);

impl WalStoreService {
    pub fn into_server(self) -> WalStoreServerOf<Self> {
        WalStoreServer::new(self)
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20)
    }
}

#[tonic::async_trait]
impl WalStoreRpc for WalStoreService {
    async fn call(&self, req: Request<Envelope>) -> Result<Response<Envelope>, tonic::Status> {
        let res: WireResult<WalResponse> = match wire::open::<WalRequest>(req.get_ref()) {
            Ok(r) => self.0.handle(r).await.map_err(Into::into),
            Err(e) => Err(e.into()),
        };
        Ok(Response::new(wire::seal(&res)))
    }
}

/// A WAL store across the network.
#[derive(Clone)]
pub struct RemoteWalStore {
    client: WalStoreClient<Channel>,
}

impl RemoteWalStore {
    pub fn new(addr: &str) -> ApiResult<Self> {
        Ok(RemoteWalStore {
            client: WalStoreClient::new(channel(addr)?)
                .max_decoding_message_size(256 << 20)
                .max_encoding_message_size(256 << 20),
        })
    }
}

#[async_trait::async_trait]
impl WalStoreApi for RemoteWalStore {
    async fn call(&self, req: WalRequest) -> ApiResult<WalResponse> {
        let mut c = self.client.clone();
        let resp = c
            .call(wire::seal(&req))
            .await
            .map_err(|s| unreachable_role("WAL store", s))?;
        let res: WireResult<WalResponse> = wire::open(resp.get_ref())?;
        res.map_err(Into::into)
    }
}
