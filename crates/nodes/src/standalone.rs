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
use quiver_core::meta::{MetaError, MetaStore, RedbMetaStore};
use quiver_core::rt::disk::{Disk, StdDisk};
use quiver_core::wal::{FsyncPolicy, LocalWalOptions, ObjectWalOptions};

use crate::coordinator::{self, Coordinator, CoordinatorApi, CoordinatorConfig};
use crate::datanode::{self, DataNode, DataNodeDeps};
use crate::error::ApiError;
use crate::leader::CoordinatorSeat;
use crate::pb::milvus::milvus_service_server::MilvusServiceServer;
use crate::proxy::router::Connect;
use crate::proxy::{self, Proxy, ProxyConfig, ProxyDeps};
use crate::querynode::{self, QueryNode, QueryNodeDeps};
use crate::rpc::{DataNodeApi, QueryNodeApi, StreamingApi, MAX_MESSAGE_BYTES};
use crate::streaming::{
    self, LocalWals, ObjectWals, Recovery, StreamingConfig, StreamingDeps, StreamingNode,
    WalOpener, OBJECT_WAL_ROOT,
};

/// Everything standalone mode needs to know.
#[derive(Debug, Clone)]
pub struct StandaloneConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub auth_token: Option<String>,
    pub fsync: FsyncPolicy,
    pub seal_rows: usize,
    pub idle_flush: Duration,
    pub wal: WalBackend,
    /// The number of pchannels of a new data directory.
    pub pchannels: u32,
    /// How often each pchannel gets a time tick.
    pub tick_interval: Duration,
}

/// Where standalone keeps its WALs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WalBackend {
    /// Files under `<data>/wal`, fsynced per `fsync`.
    #[default]
    Local,
    /// Block objects in the object store (`<data>/objects/wal`): the zero-disk WAL a
    /// cluster runs on, here on the local object store.
    Object,
}

impl std::str::FromStr for WalBackend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(WalBackend::Local),
            "object" => Ok(WalBackend::Object),
            other => Err(format!("wal must be local or object, not {other:?}")),
        }
    }
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
    pub proxy: Arc<Proxy>,
    pub streaming: Arc<StreamingNode>,
    pub coord: Arc<Coordinator>,
    /// Keeps the coordinator's seat renewed while the instance runs.
    pub seat: Arc<CoordinatorSeat>,
}

/// The streaming node's id in the vchannel assignments.
const STREAMING_NODE_ID: &str = "standalone";
/// How often dropped collections' objects are swept when no drop wakes the sweep.
const GC_INTERVAL: Duration = Duration::from_secs(600);

/// The embedded stores under the data directory.
struct Stores {
    meta: Arc<dyn MetaStore>,
    objects: Arc<dyn ObjectStore>,
    disk: Arc<dyn Disk>,
}

fn open_stores(data_dir: &std::path::Path) -> Result<Stores, ApiError> {
    let internal =
        |what: &str, e: &dyn std::fmt::Display| ApiError::internal(format!("{what}: {e}"));
    let disk: Arc<dyn Disk> = Arc::new(StdDisk);
    disk.create_dir_all(data_dir)
        .map_err(|e| internal("creating the data directory", &e))?;
    let objects = data_dir.join("objects");
    disk.create_dir_all(&objects)
        .map_err(|e| internal("creating the object directory", &e))?;
    let meta: Arc<dyn MetaStore> = Arc::new(open_meta(data_dir)?);
    // Objects must be durable before the manifest that names them commits, as they
    // are on S3 (fsync); deleting a dropped collection's objects removes their
    // emptied directories too.
    let objects: Arc<dyn ObjectStore> = Arc::new(
        LocalFileSystem::new_with_prefix(&objects)
            .map_err(|e| internal("opening the object store", &e))?
            .with_fsync(true)
            .with_automatic_cleanup(true),
    );
    Ok(Stores {
        meta,
        objects,
        disk,
    })
}

/// Opens the meta store. It holds every collection's catalog and manifests: when it is
/// damaged (or missing while WALs and objects exist) no collection can be served, and
/// the start is refused with what to do rather than starting empty.
fn open_meta(data_dir: &std::path::Path) -> Result<RedbMetaStore, ApiError> {
    let path = data_dir.join("meta.redb");
    let has_data =
        |sub: &str| std::fs::read_dir(data_dir.join(sub)).is_ok_and(|mut d| d.next().is_some());
    if !path.exists() && (has_data("wal") || has_data("objects")) {
        return Err(ApiError::internal(format!(
            "the meta store {} is missing, but {} holds WALs or segment objects: \
             starting would serve an empty catalog over them. Restore meta.redb from a \
             backup (or point --data-dir at the right directory)",
            path.display(),
            data_dir.display()
        )));
    }
    RedbMetaStore::open(&path).map_err(|e| match e {
        MetaError::Damaged { .. } => ApiError::internal(format!(
            "{e}. It holds every collection's catalog, so the server cannot start; \
             redb's own repair ran on open and could not fix it. Restore meta.redb from \
             a backup, then check the rest with `quiver inspect --data-dir {}`",
            data_dir.display()
        )),
        e => ApiError::internal(format!("opening the meta store: {e}")),
    })
}

/// The WALs of the configured backend. Switching backends over existing data is
/// refused: every shard's checkpoint names a position in the other backend's logs.
fn wal_opener(cfg: &StandaloneConfig, stores: &Stores) -> Result<Arc<dyn WalOpener>, ApiError> {
    let has_logs = |dir: PathBuf| std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    let (other, other_dir) = match cfg.wal {
        WalBackend::Local => ("object", cfg.data_dir.join("objects").join(OBJECT_WAL_ROOT)),
        WalBackend::Object => ("local", cfg.data_dir.join("wal")),
    };
    if has_logs(other_dir.clone()) {
        return Err(ApiError::internal(format!(
            "{} holds WALs of the {other} backend: start with --wal {other} (the backend \
             cannot change over existing data)",
            other_dir.display()
        )));
    }
    Ok(match cfg.wal {
        WalBackend::Local => Arc::new(LocalWals::new(
            stores.disk.clone(),
            &cfg.data_dir,
            LocalWalOptions {
                fsync: cfg.fsync,
                ..LocalWalOptions::default()
            },
        )),
        WalBackend::Object => Arc::new(ObjectWals::new(
            stores.objects.clone(),
            ObjectWalOptions::default(),
        )),
    })
}

impl Standalone {
    /// Opens (or creates) the data directory and starts every role through its own
    /// entry point, recovering each collection's shards before the API opens.
    pub async fn start(cfg: &StandaloneConfig) -> Result<Self, ApiError> {
        let stores = open_stores(&cfg.data_dir)?;
        let seat_cfg = CoordinatorConfig {
            seat: "standalone".into(),
            pchannels: cfg.pchannels,
        };
        let (seat, coord) = coordinator::start_in_office(seat_cfg, stores.meta.clone()).await?;
        let store = stores.objects.clone();
        let query_node = query_node_link(querynode::start(QueryNodeDeps { store })).await?;
        let store = stores.objects.clone();
        let data_node = data_node_link(datanode::start(DataNodeDeps { store })).await?;
        let wals = wal_opener(cfg, &stores)?;
        let streaming = streaming::start(
            StreamingConfig {
                node_id: STREAMING_NODE_ID.to_string(),
                seal_rows: cfg.seal_rows,
                idle_flush: cfg.idle_flush,
                gc_every: Some(GC_INTERVAL),
                recovery: Recovery::Strict,
                tick_interval: cfg.tick_interval,
                checkpoint_every: streaming::DEFAULT_CHECKPOINT_EVERY,
            },
            StreamingDeps {
                meta: stores.meta,
                store: stores.objects,
                tso: coord.tso().clone(),
                coord: coord.clone(),
                wals,
                query_nodes: vec![("query-node".to_string(), query_node)],
                data_node: Some(data_node),
            },
        )
        .await?;
        let l = links(&seat, &coord, &streaming).await?;
        let local = l.streaming;
        let connect: Connect = Box::new(move |node: &str| {
            if node == STREAMING_NODE_ID {
                Ok(local.clone())
            } else {
                Err(ApiError::internal(format!(
                    "standalone has no streaming node {node}"
                )))
            }
        });
        let proxy = proxy::start(
            ProxyConfig {
                auth_token: cfg.auth_token.clone(),
            },
            ProxyDeps {
                coord: l.coord,
                connect,
            },
        );
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
            coord: _coord,
            seat: _seat,
        } = self;
        let svc = MilvusServiceServer::from_arc(proxy)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        #[cfg(not(any(madsim, doctest)))]
        let svc = proxy::DecodeErrorsAsStatus::new(svc);
        tracing::info!(%listen, "serving the Milvus API");
        tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .add_service(svc)
            .serve_with_shutdown(listen, shutdown)
            .await
            .map_err(|e| ApiError::internal(format!("server: {e}")))?;
        tracing::info!("shutting down: flushing shards");
        streaming.flush_all().await;
        Ok(())
    }
}
