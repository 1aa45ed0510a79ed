//! A Quiver cluster on simulated nodes: every role is the real code from
//! `quiver-nodes`, on its own madsim node with its own IP, talking over the internal
//! RPCs.
//!
//! Every role is started exactly as standalone and the cluster binaries start it:
//! through its own `start` in `quiver-nodes`, with the loops it needs (recovery,
//! heartbeats, flushes, garbage collection).
//!
//! | role | nodes | address |
//! |---|---|---|
//! | coordinator (active + standby seats) | 2 | 10.0.1.x:7000 |
//! | streaming node | 1–3 | 10.0.2.x:7001 |
//! | proxy | 1–2 | 10.0.3.x (in-process API, no listener) |
//! | query node | 1–3 | 10.0.4.x:7002 |
//! | data node | 1 | 10.0.5.1:7003 |
//!
//! The meta store (our etcd) and the object store (our S3) are in-process services the
//! harness can fail and slow down ([`FaultyMeta`], [`FaultyStore`]); they keep
//! everything acknowledged, as etcd and S3 do, and the object store can also fail a
//! put after it took effect. The WALs live in that object store ([`ObjectWals`]: the
//! zero-disk WAL), so no node keeps anything local: a restart recovers from the meta
//! store and object storage, and no single node's loss stops every write.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use madsim::runtime::{Handle, NodeHandle};
use object_store::memory::InMemory;
use object_store::ObjectStore;
use quiver_core::meta::MetaStore;
use quiver_core::objstore::{FaultConfig, FaultyStore};
use quiver_core::wal::ObjectWalOptions;
use quiver_nodes::coordinator::{self, CoordinatorApi, CoordinatorConfig};
use quiver_nodes::datanode::{self, DataNodeDeps};
use quiver_nodes::delegator::QueryNodeLink;
use quiver_nodes::proxy::router::Connect;
use quiver_nodes::proxy::{self, Proxy, ProxyConfig, ProxyDeps};
use quiver_nodes::querynode::{self, QueryNodeDeps};
use quiver_nodes::rpc::{
    CoordinatorService, DataNodeService, QueryNodeApi, QueryNodeService, RemoteCoordinator,
    RemoteDataNode, RemoteQueryNode, RemoteStreaming, StreamingApi, StreamingService,
};
use quiver_nodes::streaming::{self, ObjectWals, Recovery, StreamingConfig, StreamingDeps};

use crate::faulty_meta::FaultyMeta;

const COORDINATOR_PORT: u16 = 7000;
const STREAMING_PORT: u16 = 7001;
const QUERY_NODE_PORT: u16 = 7002;
const DATA_NODE_PORT: u16 = 7003;

/// The cluster's shape.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub coordinators: usize,
    pub proxies: usize,
    pub streaming_nodes: usize,
    pub query_nodes: usize,
    /// Rows at which a growing segment is sealed (small, so flushes and handoffs are
    /// frequent).
    pub seal_rows: usize,
    pub idle_flush: Duration,
    /// How often each streaming node sweeps dropped collections (besides at start and
    /// after a drop); `None` runs no garbage collection.
    pub gc_every: Option<Duration>,
    /// The cluster's pchannels: fewer than the shards of all collections, so that
    /// collections share logs.
    pub pchannels: u32,
    pub tick_interval: Duration,
    /// How often an idle shard moves its checkpoint up (short, so shared logs are
    /// truncated within a run).
    pub checkpoint_every: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            coordinators: 2,
            proxies: 2,
            streaming_nodes: 2,
            query_nodes: 2,
            seal_rows: 120,
            idle_flush: Duration::from_secs(2),
            // Short, so sweeps run (under faults) within a scenario.
            gc_every: Some(Duration::from_secs(20)),
            pchannels: 2,
            tick_interval: streaming::DEFAULT_TICK_INTERVAL,
            checkpoint_every: Duration::from_secs(3),
        }
    }
}

/// The object store outside brownouts: a put or get takes a few milliseconds, as on
/// S3, so WAL blocks are in flight long enough for a kill or a fence to land on them.
pub fn store_baseline() -> FaultConfig {
    FaultConfig {
        base_latency: Duration::from_millis(3),
        ..FaultConfig::default()
    }
}

/// A role's kind, for fault injection and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Coordinator,
    Streaming,
    QueryNode,
    DataNode,
    Proxy,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Coordinator => "coordinator",
            Role::Streaming => "streaming",
            Role::QueryNode => "query",
            Role::DataNode => "data",
            Role::Proxy => "proxy",
        }
    }
}

pub struct Cluster {
    pub handle: Handle,
    pub cfg: ClusterConfig,
    pub meta: FaultyMeta,
    pub store: FaultyStore,
    /// The object store without faults, for the harness's own reads (the WAL audit).
    pub raw_store: Arc<InMemory>,
    pub coordinators: Vec<NodeHandle>,
    pub streaming: Vec<NodeHandle>,
    pub query_nodes: Vec<NodeHandle>,
    pub data_node: NodeHandle,
    pub proxy_nodes: Vec<NodeHandle>,
    pub proxies: Vec<Arc<Proxy>>,
    /// A node for the harness's own calls (the nemesis's coordinator requests).
    pub control: NodeHandle,
}

fn ip(subnet: u8, i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, subnet, i as u8 + 1)
}

fn url(ip: Ipv4Addr, port: u16) -> String {
    format!("http://{}", SocketAddr::new(IpAddr::V4(ip), port))
}

pub fn coordinator_urls(n: usize) -> Vec<String> {
    (0..n).map(|i| url(ip(1, i), COORDINATOR_PORT)).collect()
}

pub fn streaming_url(i: usize) -> String {
    url(ip(2, i), STREAMING_PORT)
}

fn remote_coordinator(n: usize) -> RemoteCoordinator {
    let urls = coordinator_urls(n);
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    RemoteCoordinator::with_seats(&refs).expect("coordinator addresses")
}

/// Serves one tonic service on `addr` for as long as the node lives.
macro_rules! serve {
    ($svc:expr, $addr:expr) => {
        tonic::transport::Server::builder()
            .add_service($svc)
            .serve($addr)
            .await
            .expect("server")
    };
}

fn coordinator_node(handle: &Handle, meta: &FaultyMeta, i: usize, pchannels: u32) -> NodeHandle {
    let m = meta.clone();
    let addr = SocketAddr::new(IpAddr::V4(ip(1, i)), COORDINATOR_PORT);
    handle
        .create_node()
        .name(format!("coordinator-{}", i + 1))
        .ip(IpAddr::V4(ip(1, i)))
        .init(move || {
            let meta: Arc<dyn MetaStore> = Arc::new(m.clone());
            async move {
                let cfg = CoordinatorConfig {
                    seat: format!("coordinator-{}", i + 1),
                    pchannels,
                };
                let seat = coordinator::start(cfg, meta);
                serve!(CoordinatorService(seat).into_server(), addr);
            }
        })
        .build()
}

fn query_node(handle: &Handle, objects: &Arc<dyn ObjectStore>, i: usize) -> NodeHandle {
    let s = objects.clone();
    handle
        .create_node()
        .name(format!("query-{}", i + 1))
        .ip(IpAddr::V4(ip(4, i)))
        .init(move || {
            let store = s.clone();
            async move {
                let qn = querynode::start(QueryNodeDeps { store });
                let addr = SocketAddr::new(IpAddr::V4(ip(4, i)), QUERY_NODE_PORT);
                serve!(QueryNodeService(qn).into_server(), addr);
            }
        })
        .build()
}

fn data_node(handle: &Handle, objects: &Arc<dyn ObjectStore>) -> NodeHandle {
    let s = objects.clone();
    handle
        .create_node()
        .name("data-1")
        .ip(IpAddr::V4(ip(5, 0)))
        .init(move || {
            let store = s.clone();
            async move {
                let dn = datanode::start(DataNodeDeps { store });
                let addr = SocketAddr::new(IpAddr::V4(ip(5, 0)), DATA_NODE_PORT);
                serve!(DataNodeService(dn).into_server(), addr);
            }
        })
        .build()
}

/// A streaming node's dependencies: every other role through its RPC client.
fn streaming_deps(
    meta: Arc<dyn MetaStore>,
    store: Arc<dyn ObjectStore>,
    cfg: &ClusterConfig,
) -> StreamingDeps {
    let coord = Arc::new(remote_coordinator(cfg.coordinators));
    let query_nodes: Vec<QueryNodeLink> = (0..cfg.query_nodes)
        .map(|q| {
            let addr = url(ip(4, q), QUERY_NODE_PORT);
            let client = RemoteQueryNode::new(&addr).expect("address");
            (addr, Arc::new(client) as Arc<dyn QueryNodeApi>)
        })
        .collect();
    let data_node = RemoteDataNode::new(&url(ip(5, 0), DATA_NODE_PORT)).expect("address");
    StreamingDeps {
        meta,
        wals: Arc::new(ObjectWals::new(store.clone(), ObjectWalOptions::default())),
        store,
        tso: coord.clone(),
        coord,
        query_nodes,
        data_node: Some(Arc::new(data_node)),
    }
}

fn streaming_node(
    handle: &Handle,
    meta: &FaultyMeta,
    objects: &Arc<dyn ObjectStore>,
    cfg: &ClusterConfig,
    i: usize,
) -> NodeHandle {
    let (m, s, c) = (meta.clone(), objects.clone(), cfg.clone());
    handle
        .create_node()
        .name(format!("streaming-{}", i + 1))
        .ip(IpAddr::V4(ip(2, i)))
        .init(move || {
            let meta: Arc<dyn MetaStore> = Arc::new(m.clone());
            let (store, cfg) = (s.clone(), c.clone());
            async move {
                let scfg = StreamingConfig {
                    node_id: streaming_url(i),
                    seal_rows: cfg.seal_rows,
                    idle_flush: cfg.idle_flush,
                    gc_every: cfg.gc_every,
                    recovery: Recovery::Retry,
                    tick_interval: cfg.tick_interval,
                    checkpoint_every: cfg.checkpoint_every,
                };
                let deps = streaming_deps(meta, store, &cfg);
                let node = streaming::start(scfg, deps)
                    .await
                    .expect("retries until it starts");
                let addr = SocketAddr::new(IpAddr::V4(ip(2, i)), STREAMING_PORT);
                serve!(StreamingService(node).into_server(), addr);
            }
        })
        .build()
}

/// A proxy node; the proxy itself is called in process (no listener).
async fn proxy_node(handle: &Handle, coordinators: usize, i: usize) -> (NodeHandle, Arc<Proxy>) {
    let node = handle
        .create_node()
        .name(format!("proxy-{}", i + 1))
        .ip(IpAddr::V4(ip(3, i)))
        .build();
    let proxy = node
        .spawn(async move {
            let coord: Arc<dyn CoordinatorApi> = Arc::new(remote_coordinator(coordinators));
            let connect: Connect = Box::new(|node: &str| {
                Ok(Arc::new(RemoteStreaming::new(node)?) as Arc<dyn StreamingApi>)
            });
            proxy::start(ProxyConfig::default(), ProxyDeps { coord, connect })
        })
        .await
        .expect("proxy");
    (node, proxy)
}

impl Cluster {
    /// Starts every role through its own entry point (`quiver_nodes::<role>::start`),
    /// each on its own node; returns once the proxies exist (the roles come up
    /// concurrently; a workload retries until they answer).
    pub async fn start(seed: u64, cfg: ClusterConfig) -> Cluster {
        let handle = Handle::current();
        let meta = FaultyMeta::new(seed ^ 0x6d65_7461);
        let raw_store = Arc::new(InMemory::new());
        let store = FaultyStore::new(raw_store.clone(), seed ^ 0x7333);
        store.set_config(store_baseline());
        let objects: Arc<dyn ObjectStore> = Arc::new(store.clone());
        let coordinators = (0..cfg.coordinators)
            .map(|i| coordinator_node(&handle, &meta, i, cfg.pchannels))
            .collect();
        let query_nodes = (0..cfg.query_nodes)
            .map(|i| query_node(&handle, &objects, i))
            .collect();
        let data_node = data_node(&handle, &objects);
        let streaming = (0..cfg.streaming_nodes)
            .map(|i| streaming_node(&handle, &meta, &objects, &cfg, i))
            .collect();
        let mut proxy_nodes = Vec::new();
        let mut proxies = Vec::new();
        for i in 0..cfg.proxies {
            let (node, proxy) = proxy_node(&handle, cfg.coordinators, i).await;
            proxy_nodes.push(node);
            proxies.push(proxy);
        }
        let control = handle
            .create_node()
            .name("control")
            .ip(IpAddr::V4(ip(9, 0)))
            .build();
        Cluster {
            handle,
            cfg,
            meta,
            store,
            raw_store,
            coordinators,
            streaming,
            query_nodes,
            data_node,
            proxy_nodes,
            proxies,
            control,
        }
    }

    /// The nodes of a role.
    pub fn nodes(&self, role: Role) -> Vec<&NodeHandle> {
        match role {
            Role::Coordinator => self.coordinators.iter().collect(),
            Role::Streaming => self.streaming.iter().collect(),
            Role::QueryNode => self.query_nodes.iter().collect(),
            Role::DataNode => vec![&self.data_node],
            Role::Proxy => self.proxy_nodes.iter().collect(),
        }
    }

    /// Kills a node; what it was doing is lost, what it stored is not.
    pub fn kill(&self, role: Role, i: usize) {
        self.handle.kill(self.nodes(role)[i].id());
    }

    /// Kills every node at the end of a run. Their tasks hold the cluster (and the
    /// cluster holds the runtime's handle), so without this each run's whole cluster,
    /// object store included, outlives it: a seed campaign's memory grew by ~4 MB a run.
    pub fn kill_all(&self) {
        let roles = [
            Role::Coordinator,
            Role::Streaming,
            Role::QueryNode,
            Role::DataNode,
            Role::Proxy,
        ];
        for role in roles {
            for n in self.nodes(role) {
                self.handle.kill(n.id());
            }
        }
        self.handle.kill(self.control.id());
    }

    pub fn restart(&self, role: Role, i: usize) {
        self.handle.restart(self.nodes(role)[i].id());
    }

    /// A coordinator client for the harness (runs on the control node).
    pub fn coordinator_client(&self) -> RemoteCoordinator {
        remote_coordinator(self.cfg.coordinators)
    }
}
