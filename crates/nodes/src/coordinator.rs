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
const DATABASE_PREFIX: &str = "catalog/database/";
const ALIAS_PREFIX: &str = "catalog/alias/";

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
    pub load: Load,
    pub created_ts: u64,
}

/// What of a collection is loaded (served to reads).
///
/// Catalog entries written before per-partition loading held `loaded: bool` here.
/// postcard writes a bool as one byte 0/1 and an enum variant as its varint index, so
/// those entries decode as `NotLoaded` (0) and `Collection` (1): these two variants must
/// keep their places (`legacy_catalog_entries_still_open` pins it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Load {
    NotLoaded,
    /// LoadCollection: every partition, including ones created later.
    Collection,
    /// LoadPartitions: just these; partitions created later are not loaded.
    Partitions(Vec<PartitionId>),
}

/// One database: a namespace of collections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseInfo {
    pub id: i64,
    pub name: String,
    pub created_ts: u64,
    pub properties: Vec<(String, String)>,
}

impl DatabaseInfo {
    /// The database every cluster has; it is never stored and cannot be dropped.
    fn default_db() -> Self {
        DatabaseInfo {
            id: 1,
            name: DEFAULT_DB.to_string(),
            created_ts: 0,
            properties: Vec::new(),
        }
    }
}

/// At most this many databases, as in Milvus (`rootCoord.maxDatabaseNum`).
pub const MAX_DATABASES: usize = 64;

impl CollectionInfo {
    pub fn name(&self) -> &str {
        &self.schema.name
    }

    /// Whether anything of the collection is loaded.
    pub fn loaded(&self) -> bool {
        self.load != Load::NotLoaded
    }

    pub fn partition_loaded(&self, id: PartitionId) -> bool {
        match &self.load {
            Load::NotLoaded => false,
            Load::Collection => true,
            Load::Partitions(ps) => ps.contains(&id),
        }
    }

    /// The share of partitions loaded, in percent (ShowCollections' in-memory figure).
    pub fn loaded_percent(&self) -> i64 {
        let n = self.partitions.len().max(1);
        let loaded = self
            .partitions
            .iter()
            .filter(|p| self.partition_loaded(p.id))
            .count();
        (loaded * 100 / n) as i64
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

    /// A collection is loaded only with an index on every vector field (Milvus's rule).
    pub fn check_indexed(&self) -> ApiResult<()> {
        match self
            .schema
            .vector_fields()
            .find(|f| self.index_on(&f.name).is_none())
        {
            Some(f) => Err(ApiError::new(
                code::INDEX_NOT_FOUND,
                format!(
                    "there is no vector index on field: [{}], please create index firstly",
                    f.name
                ),
            )),
            None => Ok(()),
        }
    }
}

/// The vchannel of a collection's shard.
pub fn vchannel_of(collection: CollectionId, shard: u32) -> VChannel {
    VChannel::new(&PChannel::numbered("quiver", shard), collection, shard)
}

/// A change to one collection's catalog entry. The coordinator owns the rules.

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CatalogChange {
    /// LoadCollection (every partition) or ReleaseCollection.
    SetLoaded(bool),
    /// LoadPartitions: adds these to what is loaded.
    LoadPartitions(Vec<String>),
    /// ReleasePartitions: takes these out; releasing the last releases the collection.
    ReleasePartitions(Vec<String>),
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
            CatalogChange::SetLoaded(l) => {
                if l {
                    i.check_indexed()?;
                }
                i.load = if l { Load::Collection } else { Load::NotLoaded }
            }
            CatalogChange::LoadPartitions(names) => {
                i.check_indexed()?;
                let ids = names
                    .iter()
                    .map(|n| i.partition(n).map(|p| p.id))
                    .collect::<ApiResult<Vec<_>>>()?;
                match &mut i.load {
                    Load::Collection => {}
                    Load::NotLoaded => i.load = Load::Partitions(ids),
                    Load::Partitions(ps) => {
                        for id in ids {
                            if !ps.contains(&id) {
                                ps.push(id);
                            }
                        }
                    }
                }
            }
            CatalogChange::ReleasePartitions(names) => {
                let ids = names
                    .iter()
                    .map(|n| i.partition(n).map(|p| p.id))
                    .collect::<ApiResult<Vec<_>>>()?;
                let left: Vec<PartitionId> = i
                    .partitions
                    .iter()
                    .map(|p| p.id)
                    .filter(|id| i.partition_loaded(*id) && !ids.contains(id))
                    .collect();
                if !ids.is_empty() {
                    i.load = if left.is_empty() {
                        Load::NotLoaded
                    } else {
                        Load::Partitions(left)
                    };
                }
            }
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
                if i.loaded() {
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
                if i.partitions
                    .iter()
                    .any(|p| p.name == name && i.partition_loaded(p.id))
                {
                    return Err(ApiError::invalid(
                        "partition cannot be dropped, partition is loaded, please release it first",
                    ));
                }
                // Its rows become invisible at once: reads cover live partitions only.
                i.partitions.retain(|p| p.name != name);
                if let Load::Partitions(ps) = &mut i.load {
                    let live: Vec<PartitionId> = i.partitions.iter().map(|p| p.id).collect();
                    ps.retain(|id| live.contains(id));
                }
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
    /// Every collection of every database, in one snapshot.
    async fn all(&self) -> ApiResult<Vec<CollectionInfo>>;
    async fn create(
        &self,
        db: &str,
        schema: CollectionSchema,
        shards: u32,
        consistency_level: i32,
        properties: Vec<(String, String)>,
    ) -> ApiResult<CollectionInfo>;
    async fn drop_collection(&self, db: &str, name: &str) -> ApiResult<Option<CollectionInfo>>;
    async fn database(&self, name: &str) -> ApiResult<DatabaseInfo>;
    async fn databases(&self) -> ApiResult<Vec<DatabaseInfo>>;
    async fn create_database(
        &self,
        name: &str,
        properties: Vec<(String, String)>,
    ) -> ApiResult<DatabaseInfo>;
    async fn drop_database(&self, name: &str) -> ApiResult<()>;
    /// CreateAlias (`replace` false) or AlterAlias (`replace` true).
    async fn set_alias(
        &self,
        db: &str,
        alias: &str,
        collection: &str,
        replace: bool,
    ) -> ApiResult<()>;
    async fn drop_alias(&self, db: &str, alias: &str) -> ApiResult<()>;
    async fn describe_alias(&self, db: &str, alias: &str) -> ApiResult<String>;
    async fn list_aliases(&self, db: &str, collection: Option<&str>) -> ApiResult<Vec<String>>;
    async fn alter_database(
        &self,
        name: &str,
        set: Vec<(String, String)>,
        delete: Vec<String>,
    ) -> ApiResult<DatabaseInfo>;
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
    /// The query node to serve `vchannel`'s sealed segments, among `candidates`, not
    /// `avoid` (see [`crate::querycoord`]).
    async fn assign_query_node(
        &self,
        vchannel: &str,
        candidates: Vec<String>,
        avoid: Option<String>,
    ) -> ApiResult<String>;

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
        Coordinator::list(self, db).await
    }
    async fn all(&self) -> ApiResult<Vec<CollectionInfo>> {
        Ok(Coordinator::all(self).await)
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
    async fn database(&self, name: &str) -> ApiResult<DatabaseInfo> {
        Coordinator::database(self, name).await
    }
    async fn databases(&self) -> ApiResult<Vec<DatabaseInfo>> {
        Ok(Coordinator::databases(self).await)
    }
    async fn create_database(
        &self,
        name: &str,
        properties: Vec<(String, String)>,
    ) -> ApiResult<DatabaseInfo> {
        Coordinator::create_database(self, name, properties).await
    }
    async fn drop_database(&self, name: &str) -> ApiResult<()> {
        Coordinator::drop_database(self, name).await
    }
    async fn set_alias(
        &self,
        db: &str,
        alias: &str,
        collection: &str,
        replace: bool,
    ) -> ApiResult<()> {
        Coordinator::set_alias(self, db, alias, collection, replace).await
    }
    async fn drop_alias(&self, db: &str, alias: &str) -> ApiResult<()> {
        Coordinator::drop_alias(self, db, alias).await
    }
    async fn describe_alias(&self, db: &str, alias: &str) -> ApiResult<String> {
        Coordinator::describe_alias(self, db, alias).await
    }
    async fn list_aliases(&self, db: &str, collection: Option<&str>) -> ApiResult<Vec<String>> {
        Coordinator::list_aliases(self, db, collection).await
    }
    async fn alter_database(
        &self,
        name: &str,
        set: Vec<(String, String)>,
        delete: Vec<String>,
    ) -> ApiResult<DatabaseInfo> {
        Coordinator::alter_database(self, name, set, delete).await
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
    async fn assign_query_node(
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

fn key(db: &str, name: &str) -> String {
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

/// Databases and their collections, guarded together so a database cannot be dropped
/// while a collection is being created in it.
struct Catalog {
    databases: BTreeMap<String, DatabaseInfo>,
    collections: BTreeMap<(String, String), CollectionInfo>,
    /// (database, alias) -> the collection it names.
    aliases: BTreeMap<(String, String), CollectionId>,
}

/// An alias as stored: another name for a collection of the same database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AliasEntry {
    db: String,
    alias: String,
    collection: CollectionId,
}

fn alias_key(db: &str, alias: &str) -> String {
    format!("{ALIAS_PREFIX}{db}/{alias}")
}

fn alias_not_found(db: &str, alias: &str) -> ApiError {
    ApiError::new(
        code::ALIAS_NOT_FOUND,
        format!("alias not found[database={db}][alias={alias}]"),
    )
}

impl Catalog {
    fn database(&self, db: &str) -> ApiResult<&DatabaseInfo> {
        self.databases.get(db).ok_or_else(|| database_not_found(db))
    }

    /// The catalog key of the collection `name` names in `db`: a collection of that
    /// name, or the collection an alias of that name points to.
    fn resolve(&self, db: &str, name: &str) -> ApiResult<(String, String)> {
        self.database(db)?;
        let k = (db.to_string(), name.to_string());
        if self.collections.contains_key(&k) {
            return Ok(k);
        }
        if let Some(id) = self.aliases.get(&k) {
            if let Some(c) = self.by_id(db, *id) {
                return Ok((db.to_string(), c.name().to_string()));
            }
        }
        Err(ApiError::collection_not_found(db, name))
    }

    fn by_id(&self, db: &str, id: CollectionId) -> Option<&CollectionInfo> {
        self.collections.values().find(|c| c.db == db && c.id == id)
    }

    /// The aliases of collection `id`, by name.
    fn aliases_of(&self, db: &str, id: CollectionId) -> Vec<String> {
        self.aliases
            .iter()
            .filter(|((d, _), c)| d == db && **c == id)
            .map(|((_, a), _)| a.clone())
            .collect()
    }
}

fn database_not_found(db: &str) -> ApiError {
    ApiError::new(
        code::DATABASE_NOT_FOUND,
        format!("database not found[database={db}]"),
    )
}

fn decode_collection(k: &str, v: &[u8]) -> ApiResult<CollectionInfo> {
    format::decode::<CollectionInfo>(ObjectKind::CatalogEntry, v)
        .map_err(|e| ApiError::internal(format!("corrupt catalog entry {k}: {e}")))
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

    pub async fn all(&self) -> Vec<CollectionInfo> {
        self.catalog
            .read()
            .await
            .collections
            .values()
            .cloned()
            .collect()
    }

    pub async fn databases(&self) -> Vec<DatabaseInfo> {
        self.catalog
            .read()
            .await
            .databases
            .values()
            .cloned()
            .collect()
    }

    pub async fn database(&self, db: &str) -> ApiResult<DatabaseInfo> {
        self.catalog.read().await.database(db).cloned()
    }

    /// Creates a database; one of that name must not exist.
    pub async fn create_database(
        &self,
        name: &str,
        properties: Vec<(String, String)>,
    ) -> ApiResult<DatabaseInfo> {
        let mut cat = self.catalog.write().await;
        if cat.databases.contains_key(name) {
            return Err(ApiError::new(
                code::UNEXPECTED,
                format!("database already exist: {name}"),
            ));
        }
        if cat.databases.len() >= MAX_DATABASES {
            return Err(ApiError::new(
                code::DATABASE_LIMIT,
                format!("exceeded the limit number of database[limit={MAX_DATABASES}]"),
            ));
        }
        let ts = self.tso.next().await?;
        let db = DatabaseInfo {
            id: ts.0 as i64,
            name: name.to_string(),
            created_ts: ts.0,
            properties,
        };
        self.persist_database(&db).await?;
        cat.databases.insert(db.name.clone(), db.clone());
        Ok(db)
    }

    /// Drops an empty database; dropping one that does not exist succeeds.
    pub async fn drop_database(&self, name: &str) -> ApiResult<()> {
        if name == DEFAULT_DB {
            return Err(ApiError::invalid("can not drop default database"));
        }
        let mut cat = self.catalog.write().await;
        if !cat.databases.contains_key(name) {
            return Ok(());
        }
        if cat.collections.keys().any(|(db, _)| db == name) {
            return Err(ApiError::new(
                code::UNEXPECTED,
                format!(
                    "database:{name} not empty, must drop all collections before drop database"
                ),
            ));
        }
        self.meta
            .delete(&format!("{DATABASE_PREFIX}{name}"))
            .await?;
        cat.databases.remove(name);
        Ok(())
    }

    /// Sets `set` and removes `delete` among a database's properties.
    pub async fn alter_database(
        &self,
        name: &str,
        set: Vec<(String, String)>,
        delete: Vec<String>,
    ) -> ApiResult<DatabaseInfo> {
        // The default database is stored only once it has properties.
        let mut cat = self.catalog.write().await;
        let mut db = cat.database(name)?.clone();
        db.properties.retain(|(k, _)| !delete.contains(k));
        for (k, v) in set {
            match db.properties.iter_mut().find(|(x, _)| *x == k) {
                Some(p) => p.1 = v,
                None => db.properties.push((k, v)),
            }
        }
        self.persist_database(&db).await?;
        cat.databases.insert(db.name.clone(), db.clone());
        Ok(db)
    }

    async fn persist_database(&self, db: &DatabaseInfo) -> ApiResult<()> {
        self.meta
            .put(
                &format!("{DATABASE_PREFIX}{}", db.name),
                format::encode(ObjectKind::CatalogEntry, db),
            )
            .await?;
        Ok(())
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
        cat.database(db)?;
        let k = (db.to_string(), schema.name.clone());
        if cat.aliases.contains_key(&k) {
            return Err(ApiError::new(
                code::ALIAS_NAME_CONFLICT,
                format!(
                    "collection name [{}] conflicts with an existing alias, please choose a unique name",
                    schema.name
                ),
            ));
        }
        if let Some(existing) = cat.collections.get(&k) {
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
            load: Load::NotLoaded,
            created_ts: ts.0,
            schema,
        };
        self.persist(&info).await?;
        cat.collections.insert(k, info.clone());
        Ok(info)
    }

    /// Removes a collection from the catalog; returns it if it existed.
    pub async fn drop_collection(&self, db: &str, name: &str) -> ApiResult<Option<CollectionInfo>> {
        let mut cat = self.catalog.write().await;
        cat.database(db)?;
        let Some(info) = cat
            .collections
            .get(&(db.to_string(), name.to_string()))
            .cloned()
        else {
            if cat
                .aliases
                .contains_key(&(db.to_string(), name.to_string()))
            {
                return Err(ApiError::invalid(format!(
                    "cannot drop the collection via alias = {name}"
                )));
            }
            return Ok(None);
        };
        let aliases = cat.aliases_of(db, info.id);
        if !aliases.is_empty() {
            return Err(ApiError::invalid(format!(
                "unable to drop the collection [{name}] because it has aliases {aliases:?}, \
                 please remove aliases before dropping the collection"
            )));
        }
        self.meta.delete(&key(db, name)).await?;
        cat.collections.remove(&(db.to_string(), name.to_string()));
        for v in info.vchannels() {
            self.channels.remove(&v.0).await?;
            self.queries.remove(&v.0).await?;
        }
        Ok(Some(info))
    }

    /// Points `alias` at collection `collection` (a collection's own name, not an
    /// alias); with `replace`, the alias must exist (AlterAlias), otherwise it must not
    /// name another collection (CreateAlias).
    pub async fn set_alias(
        &self,
        db: &str,
        alias: &str,
        collection: &str,
        replace: bool,
    ) -> ApiResult<()> {
        let mut cat = self.catalog.write().await;
        cat.database(db)?;
        let target = cat
            .collections
            .get(&(db.to_string(), collection.to_string()))
            .ok_or_else(|| ApiError::collection_not_found(db, collection))?
            .id;
        let k = (db.to_string(), alias.to_string());
        if cat.collections.contains_key(&k) {
            return Err(ApiError::new(
                code::ALIAS_NAME_CONFLICT,
                format!("alias [{alias}] conflicts with an existing collection name"),
            ));
        }
        match (cat.aliases.get(&k), replace) {
            (None, true) => return Err(alias_not_found(db, alias)),
            (Some(&id), false) if id == target => return Ok(()),
            (Some(_), false) => {
                return Err(ApiError::new(
                    code::ALIAS_ALREADY_EXISTS,
                    format!("alias [{alias}] exists and already aliased to another collection"),
                ))
            }
            _ => {}
        }
        let entry = AliasEntry {
            db: db.to_string(),
            alias: alias.to_string(),
            collection: target,
        };
        self.meta
            .put(
                &alias_key(db, alias),
                format::encode(ObjectKind::CatalogEntry, &entry),
            )
            .await?;
        cat.aliases.insert(k, target);
        Ok(())
    }

    /// Removes an alias; removing one that does not exist succeeds.
    pub async fn drop_alias(&self, db: &str, alias: &str) -> ApiResult<()> {
        let mut cat = self.catalog.write().await;
        cat.database(db)?;
        let k = (db.to_string(), alias.to_string());
        if cat.aliases.contains_key(&k) {
            self.meta.delete(&alias_key(db, alias)).await?;
            cat.aliases.remove(&k);
        }
        Ok(())
    }

    /// The collection an alias names.
    pub async fn describe_alias(&self, db: &str, alias: &str) -> ApiResult<String> {
        let cat = self.catalog.read().await;
        cat.database(db)?;
        cat.aliases
            .get(&(db.to_string(), alias.to_string()))
            .and_then(|id| cat.by_id(db, *id))
            .map(|c| c.name().to_string())
            .ok_or_else(|| alias_not_found(db, alias))
    }

    /// Aliases in `db`, of `collection` only when it is given; sorted.
    pub async fn list_aliases(&self, db: &str, collection: Option<&str>) -> ApiResult<Vec<String>> {
        let cat = self.catalog.read().await;
        cat.database(db)?;
        match collection {
            Some(name) => {
                let k = cat.resolve(db, name)?;
                Ok(cat.aliases_of(db, cat.collections[&k].id))
            }
            None => Ok(cat
                .aliases
                .keys()
                .filter(|(d, _)| d == db)
                .map(|(_, a)| a.clone())
                .collect()),
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_core::meta::MemMetaStore;
    use quiver_core::schema::{DataType, FieldSchema};

    fn schema(name: &str) -> CollectionSchema {
        CollectionSchema::new(
            name,
            vec![
                FieldSchema::new("id", DataType::Int64).primary(false),
                FieldSchema::new("v", DataType::FloatVector { dim: 2 }),
            ],
            false,
        )
        .unwrap()
    }

    async fn open(meta: &Arc<MemMetaStore>) -> Coordinator {
        let meta: Arc<dyn MetaStore> = meta.clone();
        let tso = Arc::new(TsoAllocator::open(meta.clone(), "tso").await.unwrap());
        Coordinator::open(meta, tso).await.unwrap()
    }

    fn partition(id: i64, name: &str) -> PartitionInfo {
        PartitionInfo {
            id: PartitionId(id),
            name: name.into(),
            created_ts: 0,
        }
    }

    #[test]
    fn databases_scope_collections_and_survive_reopen() {
        quiver_core::rt::block_on(async {
            let meta = Arc::new(MemMetaStore::new());
            let c = open(&meta).await;
            let missing = c.create_collection("shop", schema("a"), 1, 0, vec![]).await;
            assert_eq!(missing.unwrap_err().code, code::DATABASE_NOT_FOUND);
            c.create_database("shop", vec![("k".into(), "v".into())])
                .await
                .unwrap();
            assert_eq!(
                c.create_database("shop", vec![]).await.unwrap_err().code,
                code::UNEXPECTED
            );
            let a = c.create_collection("shop", schema("a"), 1, 0, vec![]).await;
            let b = c
                .create_collection(DEFAULT_DB, schema("a"), 1, 0, vec![])
                .await;
            assert_ne!(a.unwrap().id, b.unwrap().id);
            assert!(c
                .drop_database("shop")
                .await
                .unwrap_err()
                .reason
                .contains("not empty"));
            assert!(c.drop_database(DEFAULT_DB).await.is_err());

            let c = open(&meta).await;
            let names: Vec<String> = c.databases().await.into_iter().map(|d| d.name).collect();
            assert_eq!(names, vec![DEFAULT_DB.to_string(), "shop".to_string()]);
            assert_eq!(c.list("shop").await.unwrap().len(), 1);
            c.drop_collection("shop", "a").await.unwrap();
            c.drop_database("shop").await.unwrap();
            c.drop_database("shop").await.unwrap();
            assert_eq!(
                c.list("shop").await.unwrap_err().code,
                code::DATABASE_NOT_FOUND
            );
            assert_eq!(open(&meta).await.databases().await.len(), 1);
        });
    }

    #[test]
    fn partition_loads_follow_milvus_rules() {
        let mut info = CollectionInfo {
            id: CollectionId(1),
            db: DEFAULT_DB.into(),
            schema: schema("c"),
            shards: 1,
            consistency_level: 0,
            properties: vec![],
            partitions: vec![partition(10, "_default"), partition(11, "p1")],
            indexes: vec![],
            load: Load::NotLoaded,
            created_ts: 0,
        };
        let apply = |i: &mut CollectionInfo, c: CatalogChange| c.apply(i);
        // Nothing loads without an index on every vector field.
        let err = apply(&mut info, CatalogChange::SetLoaded(true)).unwrap_err();
        assert_eq!(err.code, code::INDEX_NOT_FOUND);
        info.indexes.push(IndexInfo {
            id: 1,
            name: "v".into(),
            field_name: "v".into(),
            index_type: "FLAT".into(),
            metric: Metric::L2,
            params: vec![],
        });
        apply(&mut info, CatalogChange::LoadPartitions(vec!["p1".into()])).unwrap();
        assert!(info.loaded() && info.partition_loaded(PartitionId(11)));
        assert!(!info.partition_loaded(PartitionId(10)) && info.loaded_percent() == 50);
        // Partitions created later are not loaded by a partition load ...
        apply(&mut info, CatalogChange::AddPartition(partition(12, "p2"))).unwrap();
        assert!(!info.partition_loaded(PartitionId(12)));
        let err = apply(&mut info, CatalogChange::DropPartition("p1".into())).unwrap_err();
        assert!(err.reason.contains("release it first"));
        apply(
            &mut info,
            CatalogChange::ReleasePartitions(vec!["p1".into()]),
        )
        .unwrap();
        assert_eq!(info.load, Load::NotLoaded);
        // ... but are by a collection load.
        apply(&mut info, CatalogChange::SetLoaded(true)).unwrap();
        apply(&mut info, CatalogChange::AddPartition(partition(13, "p3"))).unwrap();
        assert!(info.partition_loaded(PartitionId(13)) && info.loaded_percent() == 100);
        apply(
            &mut info,
            CatalogChange::ReleasePartitions(vec!["p3".into()]),
        )
        .unwrap();
        assert_eq!(
            info.load,
            Load::Partitions(vec![PartitionId(10), PartitionId(11), PartitionId(12)])
        );
        let err = apply(
            &mut info,
            CatalogChange::LoadPartitions(vec!["nope".into()]),
        );
        assert_eq!(err.unwrap_err().code, code::PARTITION_NOT_FOUND);
    }

    #[test]
    fn legacy_catalog_entries_still_open() {
        #[derive(Serialize)]
        struct V1<'a> {
            id: CollectionId,
            db: &'a str,
            schema: CollectionSchema,
            shards: u32,
            consistency_level: i32,
            properties: Vec<(String, String)>,
            partitions: Vec<PartitionInfo>,
            indexes: Vec<IndexInfo>,
            loaded: bool,
            created_ts: u64,
        }
        let bytes = format::encode(
            ObjectKind::CatalogEntry,
            &V1 {
                id: CollectionId(7),
                db: DEFAULT_DB,
                schema: schema("old"),
                shards: 2,
                consistency_level: 1,
                properties: vec![],
                partitions: vec![partition(8, "_default")],
                indexes: vec![],
                loaded: true,
                created_ts: 9,
            },
        );
        let info = decode_collection("k", &bytes).unwrap();
        assert_eq!(
            (info.id, info.load, info.shards),
            (CollectionId(7), Load::Collection, 2)
        );
        assert!(decode_collection("k", &bytes[..bytes.len() - 1]).is_err());
    }
}
