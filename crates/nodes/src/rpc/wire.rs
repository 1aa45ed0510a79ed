//! The bodies of the internal RPCs (see `proto/internal.proto`): versioned postcard
//! enums inside a checksummed envelope.

use quiver_core::batch::{Batch, Pk};
use quiver_core::ids::{CollectionId, FieldId, PartitionId, SegmentId};
use quiver_core::schema::CollectionSchema;
use quiver_core::search::Metric;
use quiver_core::segment::storage::SegmentFiles;
use quiver_core::segment::DeleteRecord;
use quiver_core::shard::MutationAck;
use quiver_core::tso::Timestamp;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::channels::ChannelAssignment;
use crate::coordinator::{CatalogChange, CollectionInfo, DatabaseInfo};

use crate::error::{code, ApiError, ApiResult};
use crate::pb::internal::Envelope;

/// 2: vchannel assignments (coordinator), WAL store requests.
pub const WIRE_VERSION: u32 = 2;

pub fn seal<T: Serialize>(v: &T) -> Envelope {
    let body = postcard::to_allocvec(v).expect("in-memory serialization cannot fail");
    Envelope {
        version: WIRE_VERSION,
        crc: crc32fast::hash(&body),
        body,
    }
}

pub fn open<T: DeserializeOwned>(e: &Envelope) -> ApiResult<T> {
    if e.version != WIRE_VERSION {
        return Err(ApiError::new(
            code::UNEXPECTED,
            format!(
                "internal RPC version {} not understood (this build speaks {WIRE_VERSION})",
                e.version
            ),
        ));
    }
    if crc32fast::hash(&e.body) != e.crc {
        return Err(ApiError::new(
            code::UNEXPECTED,
            "internal RPC checksum mismatch",
        ));
    }
    postcard::from_bytes(&e.body)
        .map_err(|err| ApiError::new(code::UNEXPECTED, format!("undecodable internal RPC: {err}")))
}

/// An error crossing the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireError {
    pub code: i32,
    pub reason: String,
}

impl From<ApiError> for WireError {
    fn from(e: ApiError) -> Self {
        WireError {
            code: e.code,
            reason: e.reason,
        }
    }
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        ApiError::new(e.code, e.reason)
    }
}

pub type WireResult<T> = Result<T, WireError>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CoordRequest {
    Get {
        db: String,
        name: String,
    },
    List {
        db: String,
    },
    Create {
        db: String,
        schema: CollectionSchema,
        shards: u32,
        consistency_level: i32,
        properties: Vec<(String, String)>,
    },
    Drop {
        db: String,
        name: String,
    },
    Change {
        db: String,
        name: String,
        change: CatalogChange,
    },
    Alloc {
        count: u32,
    },
    Heartbeat {
        node: String,
        fresh: bool,
    },
    Locate {
        vchannel: String,
    },
    Reassign {
        vchannel: String,
        to: Option<String>,
    },
    Database {
        name: String,
    },
    Databases,
    CreateDatabase {
        name: String,
        properties: Vec<(String, String)>,
    },
    DropDatabase {
        name: String,
    },
    AlterDatabase {
        name: String,
        set: Vec<(String, String)>,
        delete: Vec<String>,
    },
    SetAlias {
        db: String,
        alias: String,
        collection: String,
        replace: bool,
    },
    DropAlias {
        db: String,
        alias: String,
    },
    DescribeAlias {
        db: String,
        alias: String,
    },
    ListAliases {
        db: String,
        collection: Option<String>,
    },
    All,
    AssignQueryNode {
        vchannel: String,
        candidates: Vec<String>,
        avoid: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CoordResponse {
    Collection(CollectionInfo),
    Collections(Vec<CollectionInfo>),
    Dropped(Option<CollectionInfo>),
    Timestamp(Timestamp),
    Assignment(ChannelAssignment),
    Assignments(Vec<ChannelAssignment>),
    Database(DatabaseInfo),
    Databases(Vec<DatabaseInfo>),
    Done,
    Name(String),
    Names(Vec<String>),
}

/// A read's scope on the wire: the filter travels as source text and is compiled
/// against the schema where the data is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireScope {
    /// The read must see every write at or below this timestamp (the consistency
    /// level's guarantee). The delegator picks the snapshot.
    pub guarantee_ts: Timestamp,
    /// The snapshot the read executes at: set by the delegator (its safe timestamp,
    /// once that has reached `guarantee_ts`) and passed on to query nodes.
    pub read_ts: Timestamp,
    pub partitions: Vec<PartitionId>,
    pub filter: String,
    /// Template values as JSON text (`{name: value}`).
    pub params_json: String,
}

/// Range-search bounds from search parameters (`radius`, `range_filter`).
pub fn score_range(params: &[(String, String)]) -> ApiResult<quiver_core::search::ScoreRange> {
    let get =
        |k: &str| -> ApiResult<Option<f32>> {
            match params.iter().find(|(key, _)| key == k) {
                None => Ok(None),
                Some((_, v)) => v.trim().parse::<f32>().map(Some).map_err(|_| {
                    ApiError::invalid(format!("search param {k}={v:?} is not a number"))
                }),
            }
        };
    Ok(quiver_core::search::ScoreRange {
        radius: get("radius")?,
        range_filter: get("range_filter")?,
    })
}

impl WireScope {
    /// Compiles the filter against the collection's schema (where the data is).
    pub fn compile(&self, info: &CollectionInfo) -> ApiResult<quiver_core::expr::Predicate> {
        let params = crate::proxy::params_from_json(&self.params_json)?;
        quiver_core::expr::compile(&self.filter, &info.schema, &params)
            .map_err(|e| ApiError::invalid(format!("failed to create query plan: {e}")))
    }

    /// The read scope for a shard or segment search, with the compiled filter `f`.
    pub fn read_scope<'a>(
        &'a self,
        pred: &quiver_core::expr::Predicate,
        f: &'a (dyn Fn(&dyn quiver_core::segment::SegmentView, usize) -> bool + Sync),
    ) -> quiver_core::shard::ReadScope<'a> {
        quiver_core::shard::ReadScope {
            read_ts: self.read_ts,
            partitions: Some(&self.partitions),
            filter: if pred.matches_all() { None } else { Some(f) },
            range: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireHit {
    pub pk: Pk,
    pub score: f32,
    pub distance: f32,
    pub segment: SegmentId,
    pub row: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum StreamRequest {
    /// Open (recovering if needed) the collection's shards.
    Open {
        info: CollectionInfo,
    },
    Drop {
        info: CollectionInfo,
    },
    Insert {
        collection: CollectionId,
        shard: u32,
        partition: PartitionId,
        batch: Batch,
        upsert: bool,
    },
    Delete {
        collection: CollectionId,
        shard: u32,
        pks: Vec<Pk>,
    },
    Flush {
        collection: CollectionId,
        shard: u32,
    },
    Search {
        collection: CollectionId,
        shard: u32,
        field: FieldId,
        queries: Vec<Vec<f32>>,
        k: u32,
        metric: Metric,
        scope: WireScope,
        /// Index search parameters (`ef`, `nprobe`, ...).
        params: Vec<(String, String)>,
    },
    QueryRows {
        collection: CollectionId,
        shard: u32,
        scope: WireScope,
        limit: Option<u64>,
    },
    Count {
        collection: CollectionId,
        shard: u32,
        scope: WireScope,
    },
    Fetch {
        collection: CollectionId,
        shard: u32,
        refs: Vec<(SegmentId, u32)>,
    },
}

impl StreamRequest {
    /// The shard the request is for, if it is for one.
    pub fn target(&self) -> Option<(CollectionId, u32)> {
        match self {
            StreamRequest::Open { .. } | StreamRequest::Drop { .. } => None,
            StreamRequest::Insert {
                collection, shard, ..
            }
            | StreamRequest::Delete {
                collection, shard, ..
            }
            | StreamRequest::Flush { collection, shard }
            | StreamRequest::Search {
                collection, shard, ..
            }
            | StreamRequest::QueryRows {
                collection, shard, ..
            }
            | StreamRequest::Count {
                collection, shard, ..
            }
            | StreamRequest::Fetch {
                collection, shard, ..
            } => Some((*collection, *shard)),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            StreamRequest::Open { .. } => "open",
            StreamRequest::Drop { .. } => "drop",
            StreamRequest::Insert { upsert: false, .. } => "insert",
            StreamRequest::Insert { upsert: true, .. } => "upsert",
            StreamRequest::Delete { .. } => "delete",
            StreamRequest::Flush { .. } => "flush",
            StreamRequest::Search { .. } => "search",
            StreamRequest::QueryRows { .. } => "query",
            StreamRequest::Count { .. } => "count",
            StreamRequest::Fetch { .. } => "fetch",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum StreamResponse {
    Done,
    Ack(MutationAck),
    Flushed { segments: Vec<SegmentId> },
    Hits(Vec<Vec<WireHit>>),
    Rows(Vec<(Pk, SegmentId, u32)>),
    Count(u64),
    Fetched(Batch),
}

/// Unexpected response kinds are bugs between roles of different versions.
pub fn unexpected(what: &str) -> ApiError {
    ApiError::new(
        code::UNEXPECTED,
        format!("unexpected internal response to {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_roundtrip_and_refuse_damage() {
        let e = seal(&CoordRequest::Alloc { count: 3 });
        assert!(matches!(
            open::<CoordRequest>(&e),
            Ok(CoordRequest::Alloc { count: 3 })
        ));
        let mut bad = e.clone();
        bad.body[0] ^= 1;
        assert!(open::<CoordRequest>(&bad).is_err());
        let mut newer = e;
        newer.version = 3;
        assert!(open::<CoordRequest>(&newer)
            .unwrap_err()
            .reason
            .contains("version 3"));
    }
}

/// Requests to a query node. Reads name the segments the delegator expects it to
/// serve; a segment it does not have is an error, never a silent omission.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum QueryNodeRequest {
    /// The requests that change what a query node serves carry the delegator's
    /// owner epoch: once a newer owner of the shard has spoken, an older one is refused
    /// (a deposed delegator must not replace the new owner's segments).
    Load {
        info: CollectionInfo,
        shard: u32,
        segments: Vec<(SegmentFiles, Vec<DeleteRecord>)>,
        epoch: u64,
    },
    Release {
        collection: CollectionId,
        shard: u32,
        segments: Vec<SegmentId>,
        epoch: u64,
    },
    /// Load an index built after its segment was handed off.
    LoadIndex {
        info: Box<CollectionInfo>,
        shard: u32,
        files: Box<SegmentFiles>,
        index: Box<crate::coordinator::IndexInfo>,
        epoch: u64,
    },
    DropCollection {
        collection: CollectionId,
    },
    Delete {
        collection: CollectionId,
        shard: u32,
        deletes: Vec<(SegmentId, DeleteRecord)>,
        epoch: u64,
    },
    Search {
        collection: CollectionId,
        shard: u32,
        segments: Vec<SegmentId>,
        field: FieldId,
        queries: Vec<Vec<f32>>,
        k: u32,
        metric: Metric,
        scope: WireScope,
        /// Index search parameters (`ef`, `nprobe`, ...).
        params: Vec<(String, String)>,
    },
    QueryRows {
        collection: CollectionId,
        shard: u32,
        segments: Vec<SegmentId>,
        scope: WireScope,
        limit: Option<u64>,
    },
    Count {
        collection: CollectionId,
        shard: u32,
        segments: Vec<SegmentId>,
        scope: WireScope,
    },
    Fetch {
        collection: CollectionId,
        shard: u32,
        refs: Vec<(SegmentId, u32)>,
    },
}

impl QueryNodeRequest {
    pub fn name(&self) -> &'static str {
        match self {
            QueryNodeRequest::Load { .. } => "load",
            QueryNodeRequest::Release { .. } => "release",
            QueryNodeRequest::LoadIndex { .. } => "load_index",
            QueryNodeRequest::DropCollection { .. } => "drop",
            QueryNodeRequest::Delete { .. } => "delete",
            QueryNodeRequest::Search { .. } => "search",
            QueryNodeRequest::QueryRows { .. } => "query",
            QueryNodeRequest::Count { .. } => "count",
            QueryNodeRequest::Fetch { .. } => "fetch",
        }
    }
}

/// Requests to a data node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DataNodeRequest {
    BuildIndex {
        info: CollectionInfo,
        files: SegmentFiles,
        index: crate::coordinator::IndexInfo,
    },
}
