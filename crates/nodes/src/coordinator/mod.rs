//! The coordinator: the catalog (databases' collections, partitions, indexes, load
//! state) persisted in the meta store, the TSO, vchannel assignment
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
use crate::error::{ApiError, ApiResult};
use crate::leader::CoordinatorSeat;
pub use crate::rpc::CoordinatorApi;
use catalog::{decode_collection, Catalog, ALIAS_PREFIX, CATALOG_PREFIX, DATABASE_PREFIX};
pub use catalog::{
    vchannel_of, AliasEntry, CollectionInfo, DatabaseInfo, IndexInfo, Load, PartitionInfo,
    DEFAULT_DB, DEFAULT_PARTITION, MAX_DATABASES,
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
}

/// What a coordinator seat is started with.
pub struct CoordinatorConfig {
    /// The seat's name in the leadership record (its address, in a cluster).
    pub seat: String,
}

/// Starts a coordinator seat: it campaigns for office (renewing it while it holds it,
/// taking it over when the holder goes quiet) and, once in office, opens the TSO and
/// loads the catalog. Serve it with [`CoordinatorService`](crate::rpc::CoordinatorService);
/// a standby answers `NOT_LEADER`.
pub fn start(cfg: CoordinatorConfig, meta: Arc<dyn MetaStore>) -> Arc<CoordinatorSeat> {
    let seat = CoordinatorSeat::new(cfg.seat, meta);
    seat.spawn();
    seat
}

/// Starts a coordinator seat and waits until it holds office (standalone, where it is
/// the only seat): returns the coordinator in office.
pub async fn start_in_office(
    cfg: CoordinatorConfig,
    meta: Arc<dyn MetaStore>,
) -> ApiResult<(Arc<CoordinatorSeat>, Arc<Coordinator>)> {
    let seat = CoordinatorSeat::new(cfg.seat, meta);
    let coord = seat.wait_for_office().await?;
    seat.spawn();
    Ok((seat, coord))
}

impl Coordinator {
    /// Loads the catalog from the meta store.
    pub async fn open(meta: Arc<dyn MetaStore>, tso: Arc<TsoAllocator>) -> ApiResult<Self> {
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
        })
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

    pub async fn locate(&self, vchannel: &str) -> ApiResult<ChannelAssignment> {
        self.channels.locate(vchannel).await
    }

    pub async fn reassign(&self, vchannel: &str, to: Option<&str>) -> ApiResult<ChannelAssignment> {
        self.channels.reassign(vchannel, to).await
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

#[cfg(test)]
mod tests;
