//! The streaming node: owns the pchannels the coordinator assigns it and serves every
//! shard (vchannel) mapped to them — their shared WALs (on local disk, or in object
//! storage) and time ticks, growing segments, flushes to object storage — and is each
//! shard's query delegator ([`crate::delegator`]).
//!
//! - [`start`] is the role's one entry point: standalone, the cluster binaries and the
//!   simulator all start a streaming node through it, with every loop it needs;
//! - `shards`: opening (recovering), closing and dropping shard copies;
//! - `lease`: heartbeats, the lease that bounds how long the node may serve, and
//!   taking over the vchannels of newly assigned pchannels;
//! - `logs`: the open logs and their time tickers;
//! - `service`: the [`StreamingApi`](crate::rpc::StreamingApi) the proxy calls;
//! - `background`: the flush-and-handoff loop and garbage collection;
//! - [`wals`]: where the WALs live.
//!
//! Ownership is checked three ways: a shard opens only on the node the coordinator
//! names for its pchannel, under the epoch it names; the WAL refuses appends and time ticks under an
//! older epoch once a new owner claimed it; and a node whose lease ran out serves
//! nothing until a heartbeat renews it.

mod background;
mod damage;
mod lease;
mod logs;
mod service;
mod shards;
pub mod wals;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::ObjectStore;
use quiver_core::ids::CollectionId;
use quiver_core::meta::MetaStore;
use quiver_core::rt;
use quiver_core::shard::Shard;
use quiver_core::tso::TimestampOracle;

use crate::coordinator::CollectionInfo;
use crate::delegator::{Delegation, QueryNodeLink};
use crate::error::{ApiError, ApiResult};
use crate::rpc::{CoordinatorApi, DataNodeApi};
pub use wals::{LocalWals, ObjectWals, WalOpener, OBJECT_WAL_ROOT};

#[derive(Debug, Clone)]
pub struct StreamingConfig {
    /// This node's id in the vchannel assignments (its address, in a cluster).
    pub node_id: String,
    /// A growing segment is sealed (and the shard flushed) at this many rows.
    pub seal_rows: usize,
    /// A shard with growing data and no writes for this long is flushed.
    pub idle_flush: Duration,
    /// How often dropped collections are swept when no drop wakes the sweep; `None`
    /// runs no garbage collection on this node.
    pub gc_every: Option<Duration>,
    /// What a start does when it cannot come up (the coordinator does not answer, a
    /// shard it owns cannot be recovered).
    pub recovery: Recovery,
    /// How often each log gets a time tick (a Strong read asks for one sooner).
    pub tick_interval: Duration,
    /// A shard with nothing to flush moves its checkpoint up to its log's end this
    /// often, so that an idle vchannel does not keep its pchannel's log from being
    /// truncated.
    pub checkpoint_every: Duration,
}

/// Milvus's time tick interval.
pub const DEFAULT_TICK_INTERVAL: Duration = Duration::from_millis(200);
/// How often an idle shard advances its checkpoint by default.
pub const DEFAULT_CHECKPOINT_EVERY: Duration = Duration::from_secs(30);

/// What [`start`] does when the node cannot come up whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Fail the start (standalone: an operator sees why at once, and nothing is served
    /// from a shard that could not be recovered).
    Strict,
    /// Keep trying (a cluster: the coordinator or the stores may be coming up too).
    Retry,
}

/// What a streaming node is started with.
pub struct StreamingDeps {
    pub meta: Arc<dyn MetaStore>,
    pub store: Arc<dyn ObjectStore>,
    pub tso: Arc<dyn TimestampOracle>,
    pub coord: Arc<dyn CoordinatorApi>,
    pub wals: Arc<dyn WalOpener>,
    /// Where sealed segments can be handed off, by query node id (the coordinator picks
    /// one per vchannel); none keeps them here.
    pub query_nodes: Vec<QueryNodeLink>,
    /// Who builds indexes for sealed segments; `None` leaves them to exact search.
    pub data_node: Option<Arc<dyn DataNodeApi>>,
}

pub struct StreamingNode {
    /// This node, for the tasks it starts (they hold it weakly).
    me: std::sync::Weak<StreamingNode>,
    cfg: StreamingConfig,
    meta: Arc<dyn MetaStore>,
    store: Arc<dyn ObjectStore>,
    tso: Arc<dyn TimestampOracle>,
    coord: Arc<dyn CoordinatorApi>,
    wals: Arc<dyn WalOpener>,
    delegation: Delegation,
    /// This node may serve until then: the send time of its last acknowledged
    /// heartbeat plus a lease a little shorter than the coordinator's. After that the
    /// coordinator may have given its vchannels away.
    lease_until: Mutex<Option<rt::Instant>>,
    /// The epoch each vchannel was last opened under in this process.
    incarnations: Mutex<BTreeMap<String, u64>>,
    /// The pchannels (and epochs) the last heartbeat said this node owns.
    last_owned: Mutex<BTreeMap<String, u64>>,
    /// The logs open here, by name.
    logs: tokio::sync::Mutex<BTreeMap<String, logs::OpenLog>>,
    opening: tokio::sync::Mutex<()>,
    /// A random id of this process's life and a counter of shard copies opened: the
    /// name each copy appends under (for audits).
    incarnation: u64,
    copies: AtomicU64,
    shards: tokio::sync::RwLock<BTreeMap<CollectionId, Opened>>,
    /// Collections dropped in this process's life: never registered again (a read
    /// that started before the drop must not reopen an empty copy). Ids are never
    /// reused, so the set only grows, by one id per drop.
    dropped: Mutex<std::collections::BTreeSet<CollectionId>>,
    /// Wakes the garbage-collection loop (after a collection is dropped).
    gc_wake: Arc<tokio::sync::Notify>,
    /// One owner of dropped collections' WALs and manifests at a time: a drop and a
    /// garbage-collection sweep both delete them, and take turns here.
    removing: tokio::sync::Mutex<()>,
    /// Set when a start failed: this incarnation opens nothing more and its loops end,
    /// so it cannot race the next attempt for the same vchannels.
    stopped: AtomicBool,
}

/// An open collection: its catalog entry (for schemas and filters) and the shards of
/// it this node owns and has opened.
#[derive(Clone)]
struct Opened {
    info: CollectionInfo,
    shards: BTreeMap<u32, Arc<Shard>>,
    /// Shards whose stored data is damaged, with the problem: not served until repaired.
    damaged: BTreeMap<u32, String>,
}

/// Starts a streaming node with every loop it needs: heartbeats (which renew its lease
/// and take over vchannels assigned to it), recovery of the vchannels it owns, the
/// flush-and-handoff loop and, if configured, garbage collection. The loops hold the
/// node weakly and end when the last handle to it is dropped.
pub async fn start(cfg: StreamingConfig, deps: StreamingDeps) -> ApiResult<Arc<StreamingNode>> {
    let mut backoff = Duration::from_millis(200);
    loop {
        match start_once(cfg.clone(), &deps).await {
            Ok(node) => return Ok(node),
            Err(e) if cfg.recovery == Recovery::Strict => return Err(e),
            Err(e) => {
                tracing::warn!(node = %cfg.node_id, error = %e.reason, "streaming node could not start; retrying");
                rt::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

async fn start_once(cfg: StreamingConfig, deps: &StreamingDeps) -> ApiResult<Arc<StreamingNode>> {
    let node = StreamingNode::new(cfg, deps).await?;
    node.spawn_heartbeat_loop();
    if let Err(e) = node.recover().await {
        node.stopped.store(true, Ordering::SeqCst);
        return Err(e);
    }
    node.spawn_flush_loop();
    if let Some(every) = node.cfg.gc_every {
        node.spawn_gc_loop(every);
    }
    Ok(node)
}

impl StreamingNode {
    /// A node whose first heartbeat told the coordinator this is a new incarnation,
    /// which takes new epochs for every vchannel the node owned.
    async fn new(cfg: StreamingConfig, deps: &StreamingDeps) -> ApiResult<Arc<Self>> {
        let sent = rt::now();
        let owned = deps.coord.heartbeat(&cfg.node_id, true).await?;
        tracing::info!(node = %cfg.node_id, pchannels = owned.len(), "streaming node started");
        Ok(Arc::new_cyclic(|me| StreamingNode {
            me: me.clone(),
            logs: Default::default(),
            last_owned: Default::default(),
            meta: deps.meta.clone(),
            store: deps.store.clone(),
            tso: deps.tso.clone(),
            coord: deps.coord.clone(),
            wals: deps.wals.clone(),
            delegation: Delegation::new(
                deps.coord.clone(),
                deps.query_nodes.clone(),
                deps.data_node.clone(),
            ),
            gc_wake: Arc::new(tokio::sync::Notify::new()),
            removing: tokio::sync::Mutex::new(()),
            lease_until: Mutex::new(Some(sent + lease::LEASE_MARGIN)),
            incarnations: Default::default(),
            opening: Default::default(),
            incarnation: rt::Rng::from_entropy().next_u64(),
            copies: Default::default(),
            shards: tokio::sync::RwLock::new(BTreeMap::new()),
            dropped: Default::default(),
            stopped: AtomicBool::new(false),
            cfg,
        }))
    }

    pub fn node_id(&self) -> &str {
        &self.cfg.node_id
    }

    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Opens (recovering from the manifest and the WAL) every shard this node owns. A
    /// shard whose stored data is damaged is recorded as such and the others are
    /// served; any other failure fails the start.
    async fn recover(&self) -> ApiResult<()> {
        for info in self.coord.all().await? {
            match self.open_owned(&info).await {
                Ok(shards) => tracing::info!(
                    collection = info.name(),
                    shards = shards.len(),
                    "collection recovered"
                ),
                Err(e) if e.code == crate::error::code::SEGMENT_LOAD_FAILED => {
                    tracing::error!(collection = info.name(), error = %e.reason, "collection is damaged; serving the others");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Flushes every open shard of every collection (a clean shutdown, so a restart
    /// has no WAL to replay; nothing is lost if it is skipped).
    pub async fn flush_all(&self) {
        let Ok(all) = self.coord.all().await else {
            return;
        };
        for info in all {
            let Ok(shards) = self.open_owned(&info).await else {
                continue;
            };
            for s in shards {
                if let Err(e) = s.flush().await {
                    tracing::warn!(error = %e, "flush at shutdown failed; the WAL keeps the data");
                }
            }
        }
    }
}

fn not_open(collection: CollectionId, why: &str) -> ApiError {
    ApiError::new(
        crate::error::code::NOT_OPEN,
        format!("collection {collection} {why}"),
    )
}

fn not_owner(vchannel: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        crate::error::code::NOT_OWNER,
        format!("vchannel {vchannel} is not served here: {why}"),
    )
}
