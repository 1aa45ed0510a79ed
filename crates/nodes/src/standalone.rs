//! Standalone mode: every role in one process with embedded defaults — the meta store
//! in `<data>/meta.redb`, WALs under `<data>/wal`, object storage in `<data>/objects`.
//! The coordinator, streaming node and query node are served on loopback ports and
//! reached through their RPC clients, as in a cluster.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use quiver_core::meta::{MetaStore, RedbMetaStore};
use quiver_core::rt::disk::{Disk, StdDisk};
use quiver_core::wal::{FsyncPolicy, LocalWalOptions};

use crate::coordinator::{Coordinator, CoordinatorApi};
use crate::datanode::DataNode;
use crate::error::ApiError;
use crate::leader::CoordinatorSeat;
use crate::pb::milvus::milvus_service_server::MilvusServiceServer;
use crate::proxy::router::ShardRouter;
use crate::proxy::Proxy;
use crate::querynode::QueryNode;
use crate::rpc::{DataNodeApi, QueryNodeApi, StreamingApi};
use crate::streaming::{LocalWals, StreamingConfig, StreamingDeps, StreamingNode};

/// Everything standalone mode needs to know.
#[derive(Debug, Clone)]
pub struct StandaloneConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub auth_token: Option<String>,
    pub fsync: FsyncPolicy,
    pub seal_rows: usize,
    pub idle_flush: Duration,
}

/// Serves an internal service on a loopback port the OS picks; returns its address.
#[cfg(not(madsim))]
macro_rules! serve_loopback {
    ($svc:expr, $what:literal) => {{
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| ApiError::internal(format!("binding an internal port: {e}")))?;
        let addr = l.local_addr().map_err(ApiError::internal)?;
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(l);
        let svc = $svc;
        quiver_core::rt::spawn(async move {
            if let Err(e) = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(incoming)
                .await
            {
                tracing::error!(error = %e, concat!("internal ", $what, " service stopped"));
            }
        });
        format!("http://{addr}")
    }};
}

/// The links between roles. In production every role is served on a loopback port
/// and reached through its RPC client — the roles talk exactly as in a cluster.
/// Under the simulator (where clusters are built by `quiver-sim` with roles on their
/// own nodes) standalone wires the roles directly.
struct Links {
    coord: Arc<dyn CoordinatorApi>,
    streaming: Arc<dyn StreamingApi>,
}

#[cfg(not(madsim))]
async fn query_node_link(qn: Arc<QueryNode>) -> Result<Arc<dyn QueryNodeApi>, ApiError> {
    let addr = serve_loopback!(crate::rpc::QueryNodeService(qn).into_server(), "query node");
    Ok(Arc::new(crate::rpc::RemoteQueryNode::new(&addr)?))
}

#[cfg(madsim)]
async fn query_node_link(qn: Arc<QueryNode>) -> Result<Arc<dyn QueryNodeApi>, ApiError> {
    Ok(qn)
}

#[cfg(not(madsim))]
async fn data_node_link(dn: Arc<DataNode>) -> Result<Arc<dyn DataNodeApi>, ApiError> {
    let addr = serve_loopback!(crate::rpc::DataNodeService(dn).into_server(), "data node");
    Ok(Arc::new(crate::rpc::RemoteDataNode::new(&addr)?))
}

#[cfg(madsim)]
async fn data_node_link(dn: Arc<DataNode>) -> Result<Arc<dyn DataNodeApi>, ApiError> {
    Ok(dn)
}

#[cfg(not(madsim))]
async fn links(
    seat: &Arc<CoordinatorSeat>,
    _coord: &Arc<Coordinator>,
    streaming: &Arc<StreamingNode>,
) -> Result<Links, ApiError> {
    let c = serve_loopback!(
        crate::rpc::CoordinatorService(seat.clone()).into_server(),
        "coordinator"
    );
    let s = serve_loopback!(
        crate::rpc::StreamingService(streaming.clone()).into_server(),
        "streaming"
    );
    tracing::info!(coordinator = %c, streaming = %s, "internal services listening");
    Ok(Links {
        coord: Arc::new(crate::rpc::RemoteCoordinator::new(&c)?),
        streaming: Arc::new(crate::rpc::RemoteStreaming::new(&s)?),
    })
}

#[cfg(madsim)]
async fn links(
    _seat: &Arc<CoordinatorSeat>,
    coord: &Arc<Coordinator>,
    streaming: &Arc<StreamingNode>,
) -> Result<Links, ApiError> {
    Ok(Links {
        coord: coord.clone(),
        streaming: streaming.clone(),
    })
}

/// A running standalone instance (all roles started, not yet serving).
pub struct Standalone {
    pub proxy: Proxy,
    pub streaming: Arc<StreamingNode>,
    pub coord: Arc<Coordinator>,
    /// Keeps the coordinator's seat renewed while the instance runs.
    pub seat: Arc<CoordinatorSeat>,
}

/// The streaming node's id in the vchannel assignments.
const STREAMING_NODE_ID: &str = "standalone";
/// How often dropped collections' objects are swept when no drop wakes the sweep.
const GC_INTERVAL: Duration = Duration::from_secs(600);

impl Standalone {
    /// Opens (or creates) the data directory and starts every role, recovering each
    /// collection's shards before the API opens.
    pub async fn start(cfg: &StandaloneConfig) -> Result<Self, ApiError> {
        let internal =
            |what: &str, e: &dyn std::fmt::Display| ApiError::internal(format!("{what}: {e}"));
        let disk: Arc<dyn Disk> = Arc::new(StdDisk);
        disk.create_dir_all(&cfg.data_dir)
            .map_err(|e| internal("creating the data directory", &e))?;
        let objects = cfg.data_dir.join("objects");
        disk.create_dir_all(&objects)
            .map_err(|e| internal("creating the object directory", &e))?;
        let meta: Arc<dyn MetaStore> = Arc::new(
            RedbMetaStore::open(&cfg.data_dir.join("meta.redb"))
                .map_err(|e| internal("opening the meta store", &e))?,
        );
        // Objects must be durable before the manifest that names them commits, as they
        // are on S3 (fsync); deleting a dropped collection's objects removes their
        // emptied directories too.
        let store: Arc<dyn ObjectStore> = Arc::new(
            LocalFileSystem::new_with_prefix(&objects)
                .map_err(|e| internal("opening the object store", &e))?
                .with_fsync(true)
                .with_automatic_cleanup(true),
        );
        let seat = CoordinatorSeat::new("standalone", meta.clone());
        let coord = seat.wait_for_office().await?;
        seat.spawn();
        let query_node = query_node_link(QueryNode::new(store.clone())).await?;
        let data_node = data_node_link(DataNode::new(store.clone())).await?;
        let wals = LocalWals::new(
            disk,
            &cfg.data_dir,
            LocalWalOptions {
                fsync: cfg.fsync,
                ..LocalWalOptions::default()
            },
        );
        let streaming = StreamingNode::start(
            StreamingConfig {
                node_id: STREAMING_NODE_ID.to_string(),
                seal_rows: cfg.seal_rows,
                idle_flush: cfg.idle_flush,
            },
            StreamingDeps {
                meta,
                store,
                tso: coord.tso().clone(),
                coord: coord.clone(),
                wals: Arc::new(wals),
                query_nodes: vec![("query-node".to_string(), query_node)],
                data_node: Some(data_node),
            },
        )
        .await?;
        streaming.spawn_heartbeat_loop();
        for info in coord.all().await {
            streaming.open_owned(&info).await?;
            tracing::info!(
                collection = info.name(),
                loaded = info.loaded(),
                "collection recovered"
            );
        }
        streaming.spawn_flush_loop();
        streaming.spawn_gc_loop(GC_INTERVAL);
        let l = links(&seat, &coord, &streaming).await?;
        let local = l.streaming;
        let router = ShardRouter::new(
            l.coord.clone(),
            Box::new(move |node: &str| {
                if node == STREAMING_NODE_ID {
                    Ok(local.clone())
                } else {
                    Err(ApiError::internal(format!(
                        "standalone has no streaming node {node}"
                    )))
                }
            }),
        );
        let proxy = Proxy::new(l.coord, Arc::new(router), cfg.auth_token.as_deref());
        Ok(Standalone {
            proxy,
            streaming,
            coord,
            seat,
        })
    }

    /// Serves the Milvus API until `shutdown` resolves, then flushes every shard so a
    /// restart has no WAL to replay (nothing is lost if this is skipped).
    pub async fn serve(
        self,
        listen: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ApiError> {
        let Standalone {
            proxy,
            streaming,
            coord,
            seat: _seat,
        } = self;
        let svc = MilvusServiceServer::new(proxy)
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20);
        tracing::info!(%listen, "serving the Milvus API");
        tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .add_service(svc)
            .serve_with_shutdown(listen, shutdown)
            .await
            .map_err(|e| ApiError::internal(format!("server: {e}")))?;
        tracing::info!("shutting down: flushing shards");
        for info in coord.all().await {
            if let Ok(shards) = streaming.open_owned(&info).await {
                for s in shards {
                    if let Err(e) = s.flush().await {
                        tracing::warn!(error = %e, "flush at shutdown failed; the WAL keeps the data");
                    }
                }
            }
        }
        Ok(())
    }
}
