//! The coordinator: the catalog (databases' collections, partitions, indexes, load
//! state) persisted in the meta store, the TSO, pchannel assignment
//! ([`crate::channels`]) and query coordination ([`crate::querycoord`]). One active
//! coordinator at a time ([`crate::leader`]); in standalone it shares the process with
//! the other roles.
//!
//! Its API is [`CoordinatorApi`](crate::rpc::CoordinatorApi); the operations live by
//! subject in `databases`, `collections` and `aliases`, the catalog's entries in
//! [`catalog`] and the rules for changing a collection in [`change`]. [`start`] is the
//! role's entry point.

mod aliases;
pub mod catalog;
pub mod change;
mod collections;
mod databases;

use std::collections::BTreeMap;
use std::sync::Arc;

use quiver_core::meta::MetaStore;
use quiver_core::segment::format::{self, ObjectKind};
use quiver_core::tso::{Timestamp, TsoAllocator};

use crate::channels::{ChannelAssignment, ChannelTable};
use crate::error::{code, ApiError, ApiResult};
use crate::leader::CoordinatorSeat;
pub use crate::rpc::CoordinatorApi;
use crate::rpc::ShardRef;
use catalog::{decode_collection, Catalog, ALIAS_PREFIX, CATALOG_PREFIX, DATABASE_PREFIX};
pub use catalog::{
    AliasEntry, CollectionInfo, DatabaseInfo, IndexInfo, Load, PartitionInfo, ShardLog, DEFAULT_DB,
    DEFAULT_PARTITION, MAX_DATABASES, PCHANNEL_PREFIX,
};
pub use change::CatalogChange;

pub(super) fn key(db: &str, name: &str) -> String {
    format!("{CATALOG_PREFIX}{db}/{name}")
}

/// The catalog, the TSO and the vchannel assignments.
pub struct Coordinator {
    meta: Arc<dyn MetaStore>,
    tso: Arc<TsoAllocator>,
    channels: ChannelTable,
    queries: crate::querycoord::QueryAssignments,
    catalog: tokio::sync::RwLock<Catalog>,
    /// How many pchannels the cluster has (fixed at its first start).
    pchannels: u32,
}

/// What a coordinator seat is started with.
pub struct CoordinatorConfig {
    /// The seat's name in the leadership record (its address, in a cluster).
    pub seat: String,
    /// How many pchannels (shared WAL logs) a new cluster gets; an existing cluster
    /// keeps the number it was created with.
    pub pchannels: u32,
}

/// Milvus's default (`rootCoord.dmlChannelNum`).
pub const DEFAULT_PCHANNELS: u32 = 16;

/// Where the cluster's number of pchannels is recorded.
const PCHANNELS_KEY: &str = "cluster/pchannels";

/// Starts a coordinator seat: it campaigns for office (renewing it while it holds it,
/// taking it over when the holder goes quiet) and, once in office, opens the TSO and
/// loads the catalog. Serve it with [`CoordinatorService`](crate::rpc::CoordinatorService);
/// a standby answers `NOT_LEADER`.
pub fn start(cfg: CoordinatorConfig, meta: Arc<dyn MetaStore>) -> Arc<CoordinatorSeat> {
    let seat = CoordinatorSeat::new(cfg.seat, meta, cfg.pchannels);
    seat.spawn();
    seat
}

/// Starts a coordinator seat and waits until it holds office (standalone, where it is
/// the only seat): returns the coordinator in office.
pub async fn start_in_office(
    cfg: CoordinatorConfig,
    meta: Arc<dyn MetaStore>,
) -> ApiResult<(Arc<CoordinatorSeat>, Arc<Coordinator>)> {
    let seat = CoordinatorSeat::new(cfg.seat, meta, cfg.pchannels);
    let coord = seat.wait_for_office().await?;
    seat.spawn();
    Ok((seat, coord))
}

impl Coordinator {
    /// Loads the catalog from the meta store. `pchannels` is the number of pchannels
    /// for a cluster that has none recorded yet.
    pub async fn open(
        meta: Arc<dyn MetaStore>,
        tso: Arc<TsoAllocator>,
        pchannels: u32,
    ) -> ApiResult<Self> {
        let pchannels = pchannel_count(meta.as_ref(), pchannels).await?;
        ChannelTable::migrate(meta.as_ref()).await?;
        let mut collections = BTreeMap::new();
        for (k, v) in meta.range(CATALOG_PREFIX).await? {
            let info = decode_collection(&k, &v)?;
            collections.insert((info.db.clone(), info.schema.name.clone()), info);
        }
        let mut aliases = BTreeMap::new();
        for (k, v) in meta.range(ALIAS_PREFIX).await? {
            let a: AliasEntry = format::decode(ObjectKind::CatalogEntry, &v)
                .map_err(|e| ApiError::internal(format!("corrupt alias entry {k}: {e}")))?;
            aliases.insert((a.db, a.alias), a.collection);
        }
        let mut databases = BTreeMap::new();
        databases.insert(DEFAULT_DB.to_string(), DatabaseInfo::default_db());
        for (k, v) in meta.range(DATABASE_PREFIX).await? {
            let db: DatabaseInfo = format::decode(ObjectKind::CatalogEntry, &v)
                .map_err(|e| ApiError::internal(format!("corrupt database entry {k}: {e}")))?;
            databases.insert(db.name.clone(), db);
        }
        Ok(Coordinator {
            channels: ChannelTable::new(meta.clone()),
            queries: crate::querycoord::QueryAssignments::open(meta.clone()).await?,
            meta,
            tso,
            catalog: tokio::sync::RwLock::new(Catalog {
                databases,
                collections,
                aliases,
            }),
            pchannels,
        })
    }

    /// How many pchannels the cluster has.
    pub fn pchannels(&self) -> u32 {
        self.pchannels
    }

    pub fn tso(&self) -> &Arc<TsoAllocator> {
        &self.tso
    }

    pub async fn now(&self) -> ApiResult<Timestamp> {
        Ok(self.tso.next().await?)
    }

    async fn persist(&self, info: &CollectionInfo) -> ApiResult<()> {
        self.meta
            .put(
                &key(&info.db, info.name()),
                format::encode(ObjectKind::CatalogEntry, info),
            )
            .await?;
        Ok(())
    }

    pub async fn get(&self, db: &str, name: &str) -> ApiResult<CollectionInfo> {
        let cat = self.catalog.read().await;
        let k = cat.resolve(db, name)?;
        Ok(cat.collections[&k].clone())
    }

    pub async fn list(&self, db: &str) -> ApiResult<Vec<CollectionInfo>> {
        let cat = self.catalog.read().await;
        cat.database(db)?;
        Ok(cat
            .collections
            .values()
            .filter(|c| c.db == db)
            .cloned()
            .collect())
    }

    pub async fn all(&self) -> ApiResult<Vec<CollectionInfo>> {
        Ok(self
            .catalog
            .read()
            .await
            .collections
            .values()
            .cloned()
            .collect())
    }

    /// Applies `change` to a collection and persists it.
    pub async fn update<R>(
        &self,
        db: &str,
        name: &str,
        change: impl FnOnce(&mut CollectionInfo) -> ApiResult<R>,
    ) -> ApiResult<R> {
        let mut cat = self.catalog.write().await;
        let k = cat.resolve(db, name)?;
        let mut info = cat.collections[&k].clone();
        let r = change(&mut info)?;
        self.persist(&info).await?;
        cat.collections.insert(k, info);
        Ok(r)
    }

    /// Applies a catalog change to a collection (the rules are in [`change`]).
    pub async fn change(
        &self,
        db: &str,
        name: &str,
        change: CatalogChange,
    ) -> ApiResult<CollectionInfo> {
        self.update(db, name, |i| {
            change.apply(i)?;
            Ok(i.clone())
        })
        .await
    }

    pub async fn alloc(&self, count: u32) -> ApiResult<Timestamp> {
        Ok(self.tso.alloc(count).await?)
    }

    pub async fn heartbeat(&self, node: &str, fresh: bool) -> ApiResult<Vec<ChannelAssignment>> {
        self.channels.heartbeat(node, fresh).await
    }

    /// The owner of the pchannel a collection's shard rides on.
    pub async fn locate(&self, at: ShardRef) -> ApiResult<ChannelAssignment> {
        let pchannel = {
            let cat = self.catalog.read().await;
            let info = cat
                .collections
                .values()
                .find(|i| i.id == at.collection)
                .ok_or_else(|| {
                    ApiError::new(
                        code::COLLECTION_NOT_FOUND,
                        format!("collection not found[collection={}]", at.collection),
                    )
                })?;
            if at.shard >= info.shards {
                return Err(ApiError::invalid(format!(
                    "collection {} has no shard {}",
                    at.collection, at.shard
                )));
            }
            info.pchannel(at.shard)
        };
        self.channels.locate(&pchannel.0).await
    }

    pub async fn reassign(&self, pchannel: &str, to: Option<&str>) -> ApiResult<ChannelAssignment> {
        self.channels.reassign(pchannel, to).await
    }

    pub async fn assign_query_node(
        &self,
        vchannel: &str,
        candidates: Vec<String>,
        avoid: Option<String>,
    ) -> ApiResult<String> {
        self.queries
            .assign(vchannel, &candidates, avoid.as_deref())
            .await
    }
}

/// The cluster's number of pchannels: as recorded at its first start, or `wanted`
/// (recorded now) for a new cluster. Shards are mapped to pchannels when their
/// collection is created, so the number cannot change afterwards; a different
/// `wanted` is reported and ignored.
async fn pchannel_count(meta: &dyn MetaStore, wanted: u32) -> ApiResult<u32> {
    if wanted == 0 {
        return Err(ApiError::invalid("a cluster needs at least one pchannel"));
    }
    if let Some(raw) = meta.get(PCHANNELS_KEY).await? {
        let n: u32 = format::decode(ObjectKind::CatalogEntry, &raw)
            .map_err(|e| ApiError::internal(format!("corrupt {PCHANNELS_KEY}: {e}")))?;
        if n != wanted {
            tracing::warn!(
                recorded = n,
                configured = wanted,
                "the number of pchannels is fixed when a cluster is created; keeping {n}"
            );
        }
        return Ok(n);
    }
    let raw = format::encode(ObjectKind::CatalogEntry, &wanted);
    if !meta
        .compare_and_swap(PCHANNELS_KEY, None, Some(raw))
        .await?
    {
        // Another seat recorded it first: take that.
        return Box::pin(pchannel_count(meta, wanted)).await;
    }
    Ok(wanted)
}

#[cfg(test)]
mod tests;
