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
    /// The pchannel each shard rides on, chosen when the collection was created. Empty
    /// for a collection created before pchannels: each of its shards keeps its own log.
    pub pchannels: Vec<String>,
}

/// A catalog entry as written before pchannels (read, never written).
#[derive(Deserialize)]
struct CollectionInfoV2 {
    id: CollectionId,
    db: String,
    schema: CollectionSchema,
    shards: u32,
    consistency_level: i32,
    properties: Vec<(String, String)>,
    partitions: Vec<PartitionInfo>,
    indexes: Vec<IndexInfo>,
    load: Load,
    created_ts: u64,
}

/// The log a shard writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLog {
    /// The log's name (its directory or object prefix under `wal/`).
    pub name: String,
    /// A shard's own log, as written before pchannels (not shared).
    pub dedicated: bool,
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

    /// One vchannel per shard, named after its pchannel (Milvus's naming).
    pub fn vchannels(&self) -> Vec<VChannel> {
        (0..self.shards)
            .map(|i| VChannel::new(&self.pchannel(i), self.id, i))
            .collect()
    }

    /// The pchannel shard `shard` rides on: ownership and fencing are per pchannel.
    /// A collection created before pchannels rode on `quiver-dml_<shard>`.
    pub fn pchannel(&self, shard: u32) -> PChannel {
        match self.pchannels.get(shard as usize) {
            Some(p) => PChannel(p.clone()),
            None => PChannel::numbered(PCHANNEL_PREFIX, shard),
        }
    }

    /// The log shard `shard` writes to: its pchannel's, or for a collection created
    /// before pchannels its vchannel's own.
    pub fn log_of(&self, shard: u32) -> ShardLog {
        if self.pchannels.is_empty() {
            let v = VChannel::new(&self.pchannel(shard), self.id, shard);
            return ShardLog {
                name: v.0,
                dedicated: true,
            };
        }
        ShardLog {
            name: self.pchannel(shard).0,
            dedicated: false,
        }
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

/// pchannels are named `quiver-dml_<n>`.
pub const PCHANNEL_PREFIX: &str = "quiver";

/// Picks the pchannels for a new collection's `shards`: the least used of the
/// cluster's `count` (ties to the lowest number), a different one per shard while
/// there are enough.
pub(super) fn choose_pchannels<'a>(
    existing: impl Iterator<Item = &'a CollectionInfo>,
    count: u32,
    shards: u32,
) -> Vec<String> {
    let mut load: BTreeMap<String, usize> = (0..count)
        .map(|i| (PChannel::numbered(PCHANNEL_PREFIX, i).0, 0))
        .collect();
    for info in existing {
        for p in &info.pchannels {
            if let Some(n) = load.get_mut(p) {
                *n += 1;
            }
        }
    }
    let mut chosen: Vec<String> = Vec::new();
    for _ in 0..shards {
        let fresh = |p: &String| !chosen.contains(p) || chosen.len() >= count as usize;
        let pick = load
            .iter()
            .filter(|(p, _)| fresh(p))
            .min_by_key(|(p, n)| (**n, pchannel_number(p)))
            .map(|(p, _)| p.clone())
            .expect("a cluster has at least one pchannel");
        *load.get_mut(&pick).expect("picked from the map") += 1;
        chosen.push(pick);
    }
    chosen
}

fn pchannel_number(p: &str) -> u32 {
    p.rsplit('_')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
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
    let e = match format::decode::<CollectionInfo>(ObjectKind::CatalogEntry, v) {
        Ok(info) => return Ok(info),
        Err(e) => e,
    };
    let old = format::decode::<CollectionInfoV2>(ObjectKind::CatalogEntry, v)
        .map_err(|_| ApiError::internal(format!("corrupt catalog entry {k}: {e}")))?;
    Ok(CollectionInfo {
        id: old.id,
        db: old.db,
        schema: old.schema,
        shards: old.shards,
        consistency_level: old.consistency_level,
        properties: old.properties,
        partitions: old.partitions,
        indexes: old.indexes,
        load: old.load,
        created_ts: old.created_ts,
        pchannels: Vec::new(),
    })
}
