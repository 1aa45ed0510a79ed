//! The catalog's entries — collections (schema, shards, partitions, indexes, load
//! state), databases, aliases — as persisted in the meta store, and the in-memory
//! catalog the coordinator guards.

use std::collections::BTreeMap;

use quiver_core::ids::{CollectionId, PChannel, PartitionId, VChannel};
use quiver_core::schema::CollectionSchema;
use quiver_core::search::Metric;
use quiver_core::segment::format::{self, ObjectKind};
use serde::{Deserialize, Serialize};

use crate::error::{code, ApiError, ApiResult};

pub const DEFAULT_DB: &str = "default";
pub const DEFAULT_PARTITION: &str = "_default";
pub(crate) const CATALOG_PREFIX: &str = "catalog/collection/";
pub(super) const DATABASE_PREFIX: &str = "catalog/database/";
pub(super) const ALIAS_PREFIX: &str = "catalog/alias/";

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
    pub(super) fn default_db() -> Self {
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

/// Databases and their collections, guarded together so a database cannot be dropped
/// while a collection is being created in it.
pub(super) struct Catalog {
    pub(super) databases: BTreeMap<String, DatabaseInfo>,
    pub(super) collections: BTreeMap<(String, String), CollectionInfo>,
    /// (database, alias) -> the collection it names.
    pub(super) aliases: BTreeMap<(String, String), CollectionId>,
}

/// An alias as stored: another name for a collection of the same database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasEntry {
    pub(super) db: String,
    pub(super) alias: String,
    pub(super) collection: CollectionId,
}

pub(super) fn alias_key(db: &str, alias: &str) -> String {
    format!("{ALIAS_PREFIX}{db}/{alias}")
}

pub(super) fn alias_not_found(db: &str, alias: &str) -> ApiError {
    ApiError::new(
        code::ALIAS_NOT_FOUND,
        format!("alias not found[database={db}][alias={alias}]"),
    )
}

impl Catalog {
    pub(super) fn database(&self, db: &str) -> ApiResult<&DatabaseInfo> {
        self.databases.get(db).ok_or_else(|| database_not_found(db))
    }

    /// The catalog key of the collection `name` names in `db`: a collection of that
    /// name, or the collection an alias of that name points to.
    pub(super) fn resolve(&self, db: &str, name: &str) -> ApiResult<(String, String)> {
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

    pub(super) fn by_id(&self, db: &str, id: CollectionId) -> Option<&CollectionInfo> {
        self.collections.values().find(|c| c.db == db && c.id == id)
    }

    /// The aliases of collection `id`, by name.
    pub(super) fn aliases_of(&self, db: &str, id: CollectionId) -> Vec<String> {
        self.aliases
            .iter()
            .filter(|((d, _), c)| d == db && **c == id)
            .map(|((_, a), _)| a.clone())
            .collect()
    }
}

pub(super) fn database_not_found(db: &str) -> ApiError {
    ApiError::new(
        code::DATABASE_NOT_FOUND,
        format!("database not found[database={db}]"),
    )
}

pub(crate) fn decode_collection(k: &str, v: &[u8]) -> ApiResult<CollectionInfo> {
    format::decode::<CollectionInfo>(ObjectKind::CatalogEntry, v)
        .map_err(|e| ApiError::internal(format!("corrupt catalog entry {k}: {e}")))
}
