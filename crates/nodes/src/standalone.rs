//! Standalone mode: every role in one process with embedded defaults — the meta store
//! in `<data>/meta.redb`, WALs under `<data>/wal`, object storage in `<data>/objects`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use quiver_core::meta::{MetaStore, RedbMetaStore};
use quiver_core::rt::disk::{Disk, StdDisk};
use quiver_core::tso::TsoAllocator;
use quiver_core::wal::{FsyncPolicy, LocalWalOptions};

use crate::coordinator::{Coordinator, CoordinatorApi};
use crate::error::ApiError;
use crate::pb::milvus::milvus_service_server::MilvusServiceServer;
use crate::proxy::Proxy;
use crate::rpc::StreamingApi;
use crate::streaming::{StreamingConfig, StreamingNode};

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

/// Serves the coordinator and the streaming node on loopback ports the OS picks, and
/// returns clients for the proxy: the roles talk over their internal RPCs even when
/// they share a process, exactly as in a cluster.
#[cfg(not(madsim))]
async fn internal_links(
    coord: &Arc<Coordinator>,
    streaming: &Arc<StreamingNode>,
) -> Result<(Arc<dyn CoordinatorApi>, Arc<dyn StreamingApi>), ApiError> {
    use crate::rpc::{CoordinatorService, RemoteCoordinator, RemoteStreaming, StreamingService};
    use quiver_core::rt;
    use tokio_stream::wrappers::TcpListenerStream;
    async fn listen() -> Result<(TcpListenerStream, SocketAddr), ApiError> {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| ApiError::internal(format!("binding an internal port: {e}")))?;
        let addr = l.local_addr().map_err(ApiError::internal)?;
        Ok((TcpListenerStream::new(l), addr))
    }
    let (coord_in, coord_addr) = listen().await?;
    let svc = CoordinatorService(coord.clone()).into_server();
    rt::spawn(async move {
        if let Err(e) = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(coord_in)
            .await
        {
            tracing::error!(error = %e, "internal coordinator service stopped");
        }
    });
    let (stream_in, stream_addr) = listen().await?;
    let svc = StreamingService(streaming.clone()).into_server();
    rt::spawn(async move {
        if let Err(e) = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(stream_in)
            .await
        {
            tracing::error!(error = %e, "internal streaming service stopped");
        }
    });
    tracing::info!(%coord_addr, %stream_addr, "internal services listening");
    Ok((
        Arc::new(RemoteCoordinator::new(&format!("http://{coord_addr}"))?),
        Arc::new(RemoteStreaming::new(&format!("http://{stream_addr}"))?),
    ))
}

/// Under the simulator, clusters are built by `quiver-sim` with roles on their own
/// simulated nodes; standalone wires the roles directly.
#[cfg(madsim)]
async fn internal_links(
    coord: &Arc<Coordinator>,
    streaming: &Arc<StreamingNode>,
) -> Result<(Arc<dyn CoordinatorApi>, Arc<dyn StreamingApi>), ApiError> {
    Ok((coord.clone(), streaming.clone()))
}

/// A running standalone instance (all roles started, not yet serving).
pub struct Standalone {
    pub proxy: Proxy,
    pub streaming: Arc<StreamingNode>,
    pub coord: Arc<Coordinator>,
}

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
        let store: Arc<dyn ObjectStore> = Arc::new(
            LocalFileSystem::new_with_prefix(&objects)
                .map_err(|e| internal("opening the object store", &e))?,
        );
        let tso = Arc::new(TsoAllocator::open(meta.clone(), "tso").await?);
        let coord = Arc::new(Coordinator::open(meta.clone(), tso.clone()).await?);
        let streaming = StreamingNode::start(
            StreamingConfig {
                data_dir: cfg.data_dir.clone(),
                wal: LocalWalOptions {
                    fsync: cfg.fsync,
                    ..LocalWalOptions::default()
                },
                seal_rows: cfg.seal_rows,
                idle_flush: cfg.idle_flush,
            },
            disk,
            meta,
            store,
            tso,
        )
        .await?;
        for info in coord.all().await {
            streaming.shards(&info).await?;
            tracing::info!(
                collection = info.name(),
                loaded = info.loaded,
                "collection recovered"
            );
        }
        streaming.spawn_flush_loop();
        let (c, s) = internal_links(&coord, &streaming).await?;
        let proxy = Proxy::new(c, s, cfg.auth_token.as_deref());
        Ok(Standalone {
            proxy,
            streaming,
            coord,
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
            if let Ok(shards) = streaming.shards(&info).await {
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
