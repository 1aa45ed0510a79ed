//! The coordinator: the catalog (databases' collections, partitions, indexes, load
//! state) persisted in the meta store, and the TSO. One active coordinator at a time;
//! in standalone it shares the process with the other roles.

use std::collections::BTreeMap;
use std::sync::Arc;

use quiver_core::ids::{CollectionId, PChannel, PartitionId, VChannel};
use quiver_core::meta::MetaStore;
use quiver_core::schema::CollectionSchema;
use quiver_core::search::Metric;
use quiver_core::segment::format::{self, ObjectKind};
use quiver_core::tso::{Timestamp, TsoAllocator};
use serde::{Deserialize, Serialize};

use crate::channels::{ChannelAssignment, ChannelTable};
use crate::error::{code, ApiError, ApiResult};

pub const DEFAULT_DB: &str = "default";
pub const DEFAULT_PARTITION: &str = "_default";
const CATALOG_PREFIX: &str = "catalog/collection/";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionInfo {
    pub id: PartitionId,
    pub name: String,
    pub created_ts: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexInfo {
    pub id: i64,
    pub name: String,
    pub field_name: String,
    pub index_type: String,
    pub metric: Metric,
    /// Every parameter as the client sent it (index_type and metric_type included).
    pub params: Vec<(String, String)>,
}

/// Everything the cluster knows about one collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionInfo {
    pub id: CollectionId,
    pub db: String,
    pub schema: CollectionSchema,
    pub shards: u32,
    pub consistency_level: i32,
    pub properties: Vec<(String, String)>,
    pub partitions: Vec<PartitionInfo>,
    pub indexes: Vec<IndexInfo>,
    pub loaded: bool,
    pub created_ts: u64,
}

impl CollectionInfo {
    pub fn name(&self) -> &str {
        &self.schema.name
    }

    /// One vchannel per shard.
    pub fn vchannels(&self) -> Vec<VChannel> {
        (0..self.shards).map(|i| vchannel_of(self.id, i)).collect()
    }

    pub fn partition(&self, name: &str) -> ApiResult<&PartitionInfo> {
        self.partitions
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                ApiError::new(
                    code::PARTITION_NOT_FOUND,
                    format!("partition not found[partition={name}]"),
                )
            })
    }

    pub fn index_on(&self, field: &str) -> Option<&IndexInfo> {
        self.indexes.iter().find(|i| i.field_name == field)
    }
}

/// The vchannel of a collection's shard.
pub fn vchannel_of(collection: CollectionId, shard: u32) -> VChannel {
    VChannel::new(&PChannel::numbered("quiver", shard), collection, shard)
}

/// A change to one collection's catalog entry. The coordinator owns the rules.

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CatalogChange {
    SetLoaded(bool),
    AddIndex(IndexInfo),
    /// Empty strings match any index / field.
    DropIndex {
        index_name: String,
        field_name: String,
    },
    AddPartition(PartitionInfo),
    DropPartition(String),
}

impl CatalogChange {
    fn apply(self, i: &mut CollectionInfo) -> ApiResult<()> {
        match self {
            CatalogChange::SetLoaded(l) => i.loaded = l,
            CatalogChange::AddIndex(idx) => {
                if let Some(existing) = i.indexes.iter().find(|x| x.field_name == idx.field_name) {
                    if existing.params == idx.params && existing.name == idx.name {
                        return Ok(());
                    }
                    return Err(ApiError::new(
                        code::INDEX_DUPLICATE,
                        "CreateIndex failed: at most one distinct index is allowed per field",
                    ));
                }
                if i.indexes.iter().any(|x| x.name == idx.name) {
                    return Err(ApiError::new(
                        code::INDEX_DUPLICATE,
                        format!("index name {} is already used", idx.name),
                    ));
                }
                i.indexes.push(idx);
            }
            CatalogChange::DropIndex {
                index_name,
                field_name,
            } => {
                let pos = i
                    .indexes
                    .iter()
                    .position(|x| {
                        (index_name.is_empty() || x.name == index_name)
                            && (field_name.is_empty() || x.field_name == field_name)
                    })
                    .ok_or_else(|| {
                        ApiError::new(
                            code::INDEX_NOT_FOUND,
                            format!("index not found[index={index_name}]"),
                        )
                    })?;
                if i.loaded {
                    return Err(ApiError::invalid(
                        "index cannot be dropped, collection is loaded, please release it first",
                    ));
                }
                i.indexes.remove(pos);
            }
            CatalogChange::AddPartition(p) => {
                if i.partitions.iter().any(|x| x.name == p.name) {
                    return Err(ApiError::new(
                        code::NOT_READY,
                        format!("partition already exists: {}", p.name),
                    ));
                }
                if i.partitions.len() >= 1024 {
                    return Err(ApiError::invalid(
                        "a collection has at most 1024 partitions",
                    ));
                }
                i.partitions.push(p);
            }
            CatalogChange::DropPartition(name) => {
                if name == DEFAULT_PARTITION {
                    return Err(ApiError::invalid("the default partition cannot be dropped"));
                }
                if i.loaded && i.partitions.iter().any(|p| p.name == name) {
                    return Err(ApiError::invalid(
                        "partition cannot be dropped, partition is loaded, please release it first",
                    ));
                }
                // Its rows become invisible at once: reads cover live partitions only.
                i.partitions.retain(|p| p.name != name);
            }
        }
        Ok(())
    }
}

/// What other roles need from the coordinator; served locally or over RPC.
#[async_trait::async_trait]
pub trait CoordinatorApi: Send + Sync {
    async fn get(&self, db: &str, name: &str) -> ApiResult<CollectionInfo>;
    async fn list(&self, db: &str) -> ApiResult<Vec<CollectionInfo>>;
    async fn create(
        &self,
        db: &str,
        schema: CollectionSchema,
        shards: u32,
        consistency_level: i32,
        properties: Vec<(String, String)>,
    ) -> ApiResult<CollectionInfo>;
    async fn drop_collection(&self, db: &str, name: &str) -> ApiResult<Option<CollectionInfo>>;
    async fn change(
        &self,
        db: &str,
        name: &str,
        change: CatalogChange,
    ) -> ApiResult<CollectionInfo>;
    /// Allocates `count` timestamps; returns the last.
    async fn alloc(&self, count: u32) -> ApiResult<Timestamp>;
    /// A streaming node's heartbeat (`fresh` on its first after starting); returns
    /// the vchannels it owns.
    async fn heartbeat(&self, node: &str, fresh: bool) -> ApiResult<Vec<ChannelAssignment>>;
    /// Who owns `vchannel` (assigning it if nobody live does).
    async fn locate(&self, vchannel: &str) -> ApiResult<ChannelAssignment>;
    /// Moves `vchannel` to another live streaming node under a new epoch.
    async fn reassign(&self, vchannel: &str, to: Option<&str>) -> ApiResult<ChannelAssignment>;

    async fn now(&self) -> ApiResult<Timestamp> {
        self.alloc(1).await
    }
}

#[async_trait::async_trait]
impl CoordinatorApi for Coordinator {
    async fn get(&self, db: &str, name: &str) -> ApiResult<CollectionInfo> {
        Coordinator::get(self, db, name).await
    }
    async fn list(&self, db: &str) -> ApiResult<Vec<CollectionInfo>> {
        Ok(Coordinator::list(self, db).await)
    }
    async fn create(
        &self,
        db: &str,
        schema: CollectionSchema,
        shards: u32,
        consistency_level: i32,
        properties: Vec<(String, String)>,
    ) -> ApiResult<CollectionInfo> {
        self.create_collection(db, schema, shards, consistency_level, properties)
            .await
    }
    async fn drop_collection(&self, db: &str, name: &str) -> ApiResult<Option<CollectionInfo>> {
        Coordinator::drop_collection(self, db, name).await
    }
    async fn change(
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
    async fn alloc(&self, count: u32) -> ApiResult<Timestamp> {
        Ok(self.tso.alloc(count).await?)
    }
    async fn heartbeat(&self, node: &str, fresh: bool) -> ApiResult<Vec<ChannelAssignment>> {
        self.channels.heartbeat(node, fresh).await
    }
    async fn locate(&self, vchannel: &str) -> ApiResult<ChannelAssignment> {
        self.channels.locate(vchannel).await
    }
    async fn reassign(&self, vchannel: &str, to: Option<&str>) -> ApiResult<ChannelAssignment> {
        self.channels.reassign(vchannel, to).await
    }
}

fn key(db: &str, name: &str) -> String {
    format!("{CATALOG_PREFIX}{db}/{name}")
}

/// The catalog, the TSO and the vchannel assignments.
pub struct Coordinator {
    meta: Arc<dyn MetaStore>,
    tso: Arc<TsoAllocator>,
    channels: ChannelTable,
    catalog: tokio::sync::RwLock<BTreeMap<(String, String), CollectionInfo>>,
}

impl Coordinator {
    /// Loads the catalog from the meta store.
    pub async fn open(meta: Arc<dyn MetaStore>, tso: Arc<TsoAllocator>) -> ApiResult<Self> {
        let mut catalog = BTreeMap::new();
        for (k, v) in meta.range(CATALOG_PREFIX).await? {
            let info: CollectionInfo = format::decode(ObjectKind::CatalogEntry, &v)
                .map_err(|e| ApiError::internal(format!("corrupt catalog entry {k}: {e}")))?;
            catalog.insert((info.db.clone(), info.schema.name.clone()), info);
        }
        Ok(Coordinator {
            channels: ChannelTable::new(meta.clone()),
            meta,
            tso,
            catalog: tokio::sync::RwLock::new(catalog),
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
        self.catalog
            .read()
            .await
            .get(&(db.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| ApiError::collection_not_found(db, name))
    }

    pub async fn list(&self, db: &str) -> Vec<CollectionInfo> {
        self.catalog
            .read()
            .await
            .values()
            .filter(|c| c.db == db)
            .cloned()
            .collect()
    }

    pub async fn all(&self) -> Vec<CollectionInfo> {
        self.catalog.read().await.values().cloned().collect()
    }

    /// Creates a collection; creating one that exists with the same schema succeeds
    /// (as in Milvus), with a different schema fails.
    pub async fn create_collection(
        &self,
        db: &str,
        schema: CollectionSchema,
        shards: u32,
        consistency_level: i32,
        properties: Vec<(String, String)>,
    ) -> ApiResult<CollectionInfo> {
        let mut cat = self.catalog.write().await;
        let k = (db.to_string(), schema.name.clone());
        if let Some(existing) = cat.get(&k) {
            if existing.schema == schema {
                return Ok(existing.clone());
            }
            return Err(ApiError::new(
                code::NOT_READY,
                format!(
                    "create duplicate collection with different parameters, collection: {}",
                    schema.name
                ),
            ));
        }
        let ts = self.tso.next().await?;
        let info = CollectionInfo {
            id: CollectionId(ts.0 as i64),
            db: db.to_string(),
            shards: shards.clamp(1, 16),
            consistency_level,
            properties,
            partitions: vec![PartitionInfo {
                id: PartitionId(ts.0 as i64 + 1),
                name: DEFAULT_PARTITION.to_string(),
                created_ts: ts.0,
            }],
            indexes: Vec::new(),
            loaded: false,
            created_ts: ts.0,
            schema,
        };
        self.persist(&info).await?;
        cat.insert(k, info.clone());
        Ok(info)
    }

    /// Removes a collection from the catalog; returns it if it existed.
    pub async fn drop_collection(&self, db: &str, name: &str) -> ApiResult<Option<CollectionInfo>> {
        let mut cat = self.catalog.write().await;
        let Some(info) = cat.get(&(db.to_string(), name.to_string())).cloned() else {
            return Ok(None);
        };
        self.meta.delete(&key(db, name)).await?;
        cat.remove(&(db.to_string(), name.to_string()));
        for v in info.vchannels() {
            self.channels.remove(&v.0).await?;
        }
        Ok(Some(info))
    }

    /// Applies `change` to a collection and persists it.
    pub async fn update<R>(
        &self,
        db: &str,
        name: &str,
        change: impl FnOnce(&mut CollectionInfo) -> ApiResult<R>,
    ) -> ApiResult<R> {
        let mut cat = self.catalog.write().await;
        let k = (db.to_string(), name.to_string());
        let mut info = cat
            .get(&k)
            .cloned()
            .ok_or_else(|| ApiError::collection_not_found(db, name))?;
        let r = change(&mut info)?;
        self.persist(&info).await?;
        cat.insert(k, info);
        Ok(r)
    }
}
