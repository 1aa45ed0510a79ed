//! A cluster of the real roles on simulated nodes: a coordinator, a streaming node, a
//! query node and a proxy, each on its own node with its own IP, talking over the internal RPCs.
//! The meta store and object store live outside the nodes (like etcd and S3); the
//! streaming node's WALs live on a simulated disk that outlives it and loses unsynced
//! bytes when it is killed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use madsim::runtime::{Handle, NodeHandle};
use object_store::memory::InMemory;
use object_store::ObjectStore;
use quiver_core::meta::{MemMetaStore, MetaStore};
use quiver_core::rt::disk::{Disk, SimDisk};
use quiver_core::tso::TsoAllocator;
use quiver_core::wal::LocalWalOptions;
use quiver_nodes::coordinator::Coordinator;
use quiver_nodes::proxy::Proxy;
use quiver_nodes::querynode::QueryNode;
use quiver_nodes::rpc::{
    CoordinatorService, QueryNodeService, RemoteCoordinator, RemoteQueryNode, RemoteStreaming,
    StreamingService,
};
use quiver_nodes::streaming::{StreamingConfig, StreamingNode};

pub const COORDINATOR_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
pub const STREAMING_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
pub const PROXY_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 3, 1);
pub const QUERY_NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 4, 1);
const COORDINATOR_PORT: u16 = 7000;
const STREAMING_PORT: u16 = 7001;
const QUERY_NODE_PORT: u16 = 7002;

pub struct Cluster {
    pub handle: Handle,
    pub disk: SimDisk,
    pub meta: MemMetaStore,
    pub coordinator: NodeHandle,
    pub streaming: NodeHandle,
    pub query_node: NodeHandle,
    pub proxy_node: NodeHandle,
    pub proxy: Arc<Proxy>,
}

fn addr(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

impl Cluster {
    /// Starts the roles; the proxy is built on the proxy node.
    pub async fn start(seed: u64) -> Cluster {
        let handle = Handle::current();
        let meta = MemMetaStore::new();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let disk = SimDisk::new(seed);

        let m = meta.clone();
        let coordinator = handle
            .create_node()
            .name("coordinator")
            .ip(IpAddr::V4(COORDINATOR_IP))
            .init(move || {
                let meta: Arc<dyn MetaStore> = Arc::new(m.clone());
                async move {
                    let tso = Arc::new(TsoAllocator::open(meta.clone(), "tso").await.expect("tso"));
                    let coord = Arc::new(Coordinator::open(meta, tso).await.expect("catalog"));
                    tonic::transport::Server::builder()
                        .add_service(CoordinatorService(coord).into_server())
                        .serve(addr(COORDINATOR_IP, COORDINATOR_PORT))
                        .await
                        .expect("coordinator server");
                }
            })
            .build();

        let qs = store.clone();
        let query_node = handle
            .create_node()
            .name("query-1")
            .ip(IpAddr::V4(QUERY_NODE_IP))
            .init(move || {
                let store = qs.clone();
                async move {
                    tonic::transport::Server::builder()
                        .add_service(QueryNodeService(QueryNode::new(store)).into_server())
                        .serve(addr(QUERY_NODE_IP, QUERY_NODE_PORT))
                        .await
                        .expect("query node server");
                }
            })
            .build();

        let (m, s, d) = (meta.clone(), store.clone(), disk.clone());
        let streaming = handle
            .create_node()
            .name("streaming-1")
            .ip(IpAddr::V4(STREAMING_IP))
            .init(move || {
                let meta: Arc<dyn MetaStore> = Arc::new(m.clone());
                let (store, disk) = (s.clone(), d.clone());
                async move {
                    let tso = Arc::new(
                        RemoteCoordinator::new(&format!("http://{}", addr(COORDINATOR_IP, COORDINATOR_PORT))).expect("address"),
                    );
                                        let disk: Arc<dyn Disk> = Arc::new(disk);
                    let qn: Arc<dyn quiver_nodes::rpc::QueryNodeApi> = Arc::new(
                        RemoteQueryNode::new(&format!("http://{}", addr(QUERY_NODE_IP, QUERY_NODE_PORT))).expect("address"),
                    );
                    let node = loop {
                        match StreamingNode::start(
                            StreamingConfig {
                                data_dir: PathBuf::from("/data"),
                                wal: LocalWalOptions::default(),
                                seal_rows: 200,
                                idle_flush: Duration::from_secs(2),
                            },
                            disk.clone(),
                            meta.clone(),
                                                                                    store.clone(),
                            tso.clone(),
                                                        Some(qn.clone()),
                            None,
                        )
                        .await
                        {
                            Ok(n) => break n,
                            Err(e) => {
                                tracing::warn!(error = %e.reason, "streaming node start failed; retrying");
                                quiver_core::rt::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    };
                    node.spawn_flush_loop();
                    tonic::transport::Server::builder()
                        .add_service(StreamingService(node).into_server())
                        .serve(addr(STREAMING_IP, STREAMING_PORT))
                        .await
                        .expect("streaming server");
                }
            })
            .build();

        let proxy_node = handle
            .create_node()
            .name("proxy-1")
            .ip(IpAddr::V4(PROXY_IP))
            .build();
        let proxy = proxy_node
            .spawn(async move {
                let coord = RemoteCoordinator::new(&format!(
                    "http://{}",
                    addr(COORDINATOR_IP, COORDINATOR_PORT)
                ))
                .expect("address");
                let streaming =
                    RemoteStreaming::new(&format!("http://{}", addr(STREAMING_IP, STREAMING_PORT)))
                        .expect("address");
                Arc::new(Proxy::new(Arc::new(coord), Arc::new(streaming), None))
            })
            .await
            .expect("proxy");
        Cluster {
            handle,
            disk,
            meta,
            coordinator,
            streaming,
            query_node,
            proxy_node,
            proxy,
        }
    }

    /// Kills the streaming node; its disk loses what was not synced.
    pub fn kill_streaming(&self) {
        self.handle.kill(self.streaming.id());
        self.disk.crash();
    }

    pub fn restart_streaming(&self) {
        self.handle.restart(self.streaming.id());
    }

    /// Kills the query node; it loses every segment it served.
    pub fn kill_query_node(&self) {
        self.handle.kill(self.query_node.id());
    }

    pub fn restart_query_node(&self) {
        self.handle.restart(self.query_node.id());
    }
}
