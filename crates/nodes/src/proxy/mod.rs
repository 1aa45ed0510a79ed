//! The proxy: serves the Milvus gRPC API (`milvus.proto.milvus.MilvusService`).
//! Stateless: it validates requests against the catalog, routes rows to shards by
//! primary-key hash, fans reads out to every shard's delegator and reduces the
//! results. Errors travel in the response `Status`, never as gRPC errors, because
//! pymilvus retries gRPC errors for minutes.

mod convert;
mod group_by;
mod hybrid;
mod params;
mod reads;
mod role;
pub mod router;
mod shards;

pub use role::{start, ProxyConfig, ProxyDeps};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use quiver_core::batch::Pk;
use quiver_core::expr::{self, Predicate};
use quiver_core::ids::PartitionId;
use quiver_core::schema::{validate_name, CollectionSchema};
use quiver_core::search::Metric;

use quiver_core::tso::Timestamp;
use tonic::{Request, Response};

use crate::coordinator::{
    CatalogChange, CollectionInfo, CoordinatorApi, IndexInfo, PartitionInfo, DEFAULT_DB,
    DEFAULT_PARTITION,
};
use crate::error::{code, ok_status, ApiError, ApiResult};
use crate::pb::common::{KeyValuePair, Status};
use crate::pb::milvus::milvus_service_server::MilvusService;
use crate::pb::milvus::*;
use crate::rpc::wire::WireScope;
use crate::rpc::StreamingApi;
use shards::Shards;

pub use convert::{schema_from_proto, schema_to_proto};
pub use group_by::GroupBy;
pub use hybrid::Ranker;
pub use params::params_from_json;

/// How stale a Bounded read may be (Milvus's `gracefulTime` default).
pub const BOUNDED_STALENESS_MS: u64 = 5_000;

/// Largest Insert/Upsert/Search request accepted (Milvus's default proxy limit).
pub const MAX_REQUEST_BYTES: usize = 64 << 20;

pub struct Proxy {
    coord: Arc<dyn CoordinatorApi>,
    streaming: Arc<dyn StreamingApi>,
    /// `base64(user:password)` or `base64(token)` the client must send, if auth is on.
    expected_auth: Option<String>,
}

/// A response type that carries a `Status`.
trait WithStatus: Default {
    fn set_status(&mut self, s: Status);
}

macro_rules! with_status {
    ($($t:ty),* $(,)?) => {$(
        impl WithStatus for $t {
            fn set_status(&mut self, s: Status) { self.status = Some(s); }
        }
    )*};
}

with_status!(
    BoolResponse,
    DescribeCollectionResponse,
    GetCollectionStatisticsResponse,
    ShowCollectionsResponse,
    GetPartitionStatisticsResponse,
    ShowPartitionsResponse,
    GetLoadingProgressResponse,
    GetLoadStateResponse,
    DescribeIndexResponse,
    MutationResult,
    SearchResults,
    FlushResponse,
    QueryResults,
    GetFlushStateResponse,
    GetVersionResponse,
    CheckHealthResponse,
    ConnectResponse,
    AllocTimestampResponse,
    ListDatabasesResponse,
    DescribeDatabaseResponse,
    DescribeAliasResponse,
    ListAliasesResponse,
);

impl WithStatus for Status {
    fn set_status(&mut self, s: Status) {
        *self = s;
    }
}

fn reply<T: WithStatus>(r: ApiResult<T>) -> Result<Response<T>, tonic::Status> {
    Ok(Response::new(match r {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!(code = e.code, reason = %e.reason, "request failed");
            let mut v = T::default();
            v.set_status(e.status());
            v
        }
    }))
}

fn ok<T: WithStatus>(mut v: T) -> ApiResult<T> {
    v.set_status(ok_status());
    Ok(v)
}

/// The database a request addresses: the `dbname` header first (pymilvus 3 sends it
/// only there), then the body field. Whether it exists is the coordinator's answer.
fn db_of<T>(req: &Request<T>, body_db: &str) -> ApiResult<String> {
    let header = req
        .metadata()
        .get("dbname")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let db = if !header.is_empty() { header } else { body_db };
    Ok(if db.is_empty() { DEFAULT_DB } else { db }.to_string())
}

/// Database names follow collection naming rules, up to 64 characters.
fn validate_db_name(name: &str) -> ApiResult<()> {
    if name.len() > 64 || validate_name(name).is_err() {
        return Err(ApiError::new(
            code::DATABASE_INVALID_NAME,
            format!(
                "invalid database name[database={name}]: use letters, digits and \
                 underscores, starting with a letter or underscore, at most 64 characters"
            ),
        ));
    }
    Ok(())
}

fn kv_pairs(kvs: &[KeyValuePair]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect()
}

/// Which shard a primary key belongs to.
pub fn shard_of(pk: &Pk, shards: usize) -> usize {
    (pk.stable_hash() % shards as u64) as usize
}

impl Proxy {
    pub fn new(
        coord: Arc<dyn CoordinatorApi>,
        streaming: Arc<dyn StreamingApi>,
        auth_token: Option<&str>,
    ) -> Self {
        use base64::Engine;
        Proxy {
            coord,
            streaming,
            expected_auth: auth_token.map(|t| base64::engine::general_purpose::STANDARD.encode(t)),
        }
    }

    fn check_auth<T>(&self, req: &Request<T>) -> Result<(), tonic::Status> {
        let Some(want) = &self.expected_auth else {
            return Ok(());
        };
        let got = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if got == want {
            Ok(())
        } else {
            Err(tonic::Status::unauthenticated(
                "authentication failed: wrong or missing token",
            ))
        }
    }

    async fn loaded(&self, db: &str, name: &str) -> ApiResult<CollectionInfo> {
        let info = self.coord.get(db, name).await?;
        if !info.loaded() {
            return Err(ApiError::new(
                code::COLLECTION_NOT_LOADED,
                format!("collection not loaded[collection={name}]"),
            ));
        }
        Ok(info)
    }

    /// The timestamp a read must observe, by consistency level, as Milvus's proxy
    /// computes it: Strong = now; Bounded = now minus 5 s; Session and Customized = the
    /// client's timestamp; Eventually = none. The level is the collection's when the
    /// client asks for the default.
    async fn guarantee(
        &self,
        info: &CollectionInfo,
        level: i32,
        use_default: bool,
        client_ts: u64,
    ) -> ApiResult<Timestamp> {
        use crate::pb::common::ConsistencyLevel as L;
        let level = if use_default {
            info.consistency_level
        } else {
            level
        };
        Ok(match L::try_from(level).unwrap_or(L::Bounded) {
            L::Strong => self.coord.now().await?,
            L::Bounded => self.coord.now().await?.minus_ms(BOUNDED_STALENESS_MS),
            L::Session | L::Customized => Timestamp(client_ts),
            L::Eventually => Timestamp(1),
        })
    }

    fn shards<'a>(&'a self, info: &'a CollectionInfo) -> Shards<'a> {
        Shards::new(self.streaming.as_ref(), info)
    }

    /// A read scope for the wire: the filter as text plus its template values.
    fn scope(
        guarantee_ts: Timestamp,
        partitions: Vec<PartitionId>,
        filter: &str,
        templates: &BTreeMap<String, quiver_core::expr::Value>,
    ) -> WireScope {
        WireScope {
            guarantee_ts,
            read_ts: Timestamp::ZERO,
            partitions,
            filter: filter.to_string(),
            params_json: params::params_to_json(templates),
        }
    }

    /// The partitions a statistic or a delete covers: the named ones, or all live ones.
    fn partitions_named(info: &CollectionInfo, names: &[String]) -> ApiResult<Vec<PartitionId>> {
        if names.is_empty() {
            return Ok(info.partitions.iter().map(|p| p.id).collect());
        }
        names
            .iter()
            .map(|n| info.partition(n).map(|p| p.id))
            .collect()
    }

    /// The partitions a search or query covers: the named ones, each of which must be
    /// loaded, or all loaded ones.
    fn read_partitions(info: &CollectionInfo, names: &[String]) -> ApiResult<Vec<PartitionId>> {
        if names.is_empty() {
            return Ok(info
                .partitions
                .iter()
                .filter(|p| info.partition_loaded(p.id))
                .map(|p| p.id)
                .collect());
        }
        names
            .iter()
            .map(|n| {
                let p = info.partition(n)?;
                if !info.partition_loaded(p.id) {
                    return Err(ApiError::new(
                        code::PARTITION_NOT_LOADED,
                        format!("partition not loaded[partition={n}]"),
                    ));
                }
                Ok(p.id)
            })
            .collect()
    }

    /// Compiles a filter here too, so a malformed one is refused before any shard is
    /// asked; returns the predicate and the template values for the wire.
    fn compile(
        schema: &CollectionSchema,
        src: &str,
        templates: HashMap<String, crate::pb::schema::TemplateValue>,
    ) -> ApiResult<(Predicate, BTreeMap<String, quiver_core::expr::Value>)> {
        let params = params::template_params(templates)?;
        let pred = expr::compile(src, schema, &params)
            .map_err(|e| ApiError::invalid(format!("failed to create query plan: {e}")))?;
        Ok((pred, params))
    }

    async fn write_rows(
        &self,
        db: &str,
        collection: &str,
        partition: &str,
        fields: Vec<crate::pb::schema::FieldData>,
        num_rows: u32,
        upsert: bool,
    ) -> ApiResult<MutationResult> {
        let info = self.coord.get(db, collection).await?;
        let partition = info
            .partition(if partition.is_empty() {
                DEFAULT_PARTITION
            } else {
                partition
            })?
            .id;
        let num_rows = if num_rows > 0 {
            num_rows as usize
        } else {
            fields.first().map(reads::field_rows).unwrap_or(0)
        };
        if num_rows == 0 {
            return Err(ApiError::invalid("no rows to insert"));
        }
        // Auto-id keys come from the TSO: unique, increasing, never reused.
        let auto_ids: Vec<i64> = if info.schema.primary_field().auto_id && !upsert {
            let last = self.coord.alloc(num_rows as u32).await?;
            (0..num_rows as u64)
                .map(|i| (last.0 - (num_rows as u64 - 1) + i) as i64)
                .collect()
        } else {
            Vec::new()
        };
        let mut auto_ids = Some(auto_ids);
        let batch = convert::batch_from_fields(
            &info.schema,
            fields,
            num_rows,
            |_| auto_ids.take().unwrap_or_default(),
            upsert,
        )?;
        let pks = batch.pks(&info.schema);
        let shards = self.shards(&info);
        let mut per_shard: Vec<Vec<usize>> = vec![Vec::new(); shards.len()];
        for (i, pk) in pks.iter().enumerate() {
            per_shard[shard_of(pk, shards.len())].push(i);
        }
        let mut ts = Timestamp::ZERO;
        for (shard, rows) in per_shard.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let ack = shards
                .write(shard, partition, &batch.take(&rows), upsert)
                .await?;
            ts = ts.max(ack.ts);
        }
        let n = num_rows as i64;
        ok(MutationResult {
            i_ds: Some(convert::ids(&pks, &info.schema)),
            succ_index: (0..num_rows as u32).collect(),
            insert_cnt: if upsert { 0 } else { n },
            upsert_cnt: if upsert { n } else { 0 },
            timestamp: ts.0,
            ..Default::default()
        })
    }

    async fn do_create_index(&self, db: &str, r: CreateIndexRequest) -> ApiResult<Status> {
        let mut params: BTreeMap<String, String> = params::kv_map(&r.extra_params);
        // Older clients send build parameters as one JSON object under "params".
        if let Some(json) = params.remove("params") {
            if let Ok(serde_json::Value::Object(m)) =
                serde_json::from_str::<serde_json::Value>(&json)
            {
                for (k, v) in m {
                    params.insert(
                        k,
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    );
                }
            }
        }
        let info = self.coord.get(db, &r.collection_name).await?;
        let field = info
            .schema
            .field(&r.field_name)
            .filter(|f| !f.is_dynamic)
            .ok_or_else(|| {
                ApiError::new(
                    code::FIELD_NOT_FOUND,
                    format!("cannot create index on non-exist field: {}", r.field_name),
                )
            })?;
        if !field.data_type.is_vector() {
            return Err(ApiError::invalid(format!(
                "field {:?}: scalar indexes are not supported by Quiver yet (filters on scalar fields work without one)",
                field.name
            )));
        }
        let index_type = params
            .get("index_type")
            .cloned()
            .unwrap_or_else(|| "AUTOINDEX".into())
            .to_ascii_uppercase();
        if ![
            "AUTOINDEX",
            "FLAT",
            "HNSW",
            "IVF_FLAT",
            "IVF_SQ8",
            "HNSW_SQ",
        ]
        .contains(&index_type.as_str())
        {
            return Err(ApiError::invalid(format!(
                "invalid index type: {index_type} (supported: AUTOINDEX, FLAT, HNSW, HNSW_SQ, IVF_FLAT, IVF_SQ8)"
            )));
        }
        let metric_name = params
            .get("metric_type")
            .cloned()
            .unwrap_or_else(|| "COSINE".into());
        let metric = Metric::parse(&metric_name).ok_or_else(|| {
            ApiError::invalid(format!(
                "metric type {metric_name} is not supported for float vectors (L2, IP, COSINE)"
            ))
        })?;
        let int_param = |k: &str, lo: i64, hi: i64| -> ApiResult<()> {
            if let Some(v) = params.get(k) {
                let n: i64 = v
                    .parse()
                    .map_err(|_| ApiError::invalid(format!("param {k}={v:?} is not an integer")))?;
                if n < lo || n > hi {
                    return Err(ApiError::invalid(format!(
                        "param {k} out of range: {n} not in [{lo}, {hi}]"
                    )));
                }
            }
            Ok(())
        };
        int_param("M", 2, 2048)?;
        int_param("efConstruction", 1, i32::MAX as i64)?;
        int_param("nlist", 1, 65536)?;
        let index_name = if r.index_name.is_empty() {
            r.field_name.clone()
        } else {
            r.index_name.clone()
        };
        validate_name(&index_name).map_err(|e| ApiError::invalid(e.to_string()))?;
        let mut all_params: Vec<(String, String)> = params.into_iter().collect();
        all_params.retain(|(k, _)| k != "index_type" && k != "metric_type");
        all_params.push(("index_type".into(), index_type.clone()));
        all_params.push(("metric_type".into(), metric.as_str().into()));
        all_params.sort();
        let id = self.coord.now().await?.0 as i64;
        let field_name = field.name.clone();
        // The collection checked above, even if an alias moved meanwhile.
        self.coord
            .change(
                db,
                info.name(),
                CatalogChange::AddIndex(IndexInfo {
                    id,
                    name: index_name,
                    field_name,
                    index_type,
                    metric,
                    params: all_params,
                }),
            )
            .await?;
        Ok(ok_status())
    }

    async fn do_describe_index(
        &self,
        db: &str,
        r: DescribeIndexRequest,
    ) -> ApiResult<DescribeIndexResponse> {
        let info = self.coord.get(db, &r.collection_name).await?;
        let total = if info.indexes.is_empty() {
            0
        } else {
            let parts = Self::partitions_named(&info, &[])?;
            self.row_count(&info, &parts).await? as i64
        };
        let descs: Vec<IndexDescription> = info
            .indexes
            .iter()
            .filter(|i| r.index_name.is_empty() || i.name == r.index_name)
            .filter(|i| r.field_name.is_empty() || i.field_name == r.field_name)
            .map(|i| {
                let build: serde_json::Map<String, serde_json::Value> = i
                    .params
                    .iter()
                    .filter(|(k, _)| k != "index_type" && k != "metric_type")
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect();
                let mut params: Vec<KeyValuePair> = i
                    .params
                    .iter()
                    .filter(|(k, _)| k == "index_type" || k == "metric_type")
                    .map(|(k, v)| KeyValuePair {
                        key: k.clone(),
                        value: v.clone(),
                    })
                    .collect();
                params.push(KeyValuePair {
                    key: "params".into(),
                    value: serde_json::Value::Object(build).to_string(),
                });
                IndexDescription {
                    index_name: i.name.clone(),
                    index_id: i.id,
                    params,
                    field_name: i.field_name.clone(),
                    indexed_rows: total,
                    total_rows: total,
                    // The index is usable as soon as it exists: until the ANN engine
                    // lands, segments are searched exactly with the index's metric.
                    state: crate::pb::common::IndexState::Finished as i32,
                    ..Default::default()
                }
            })
            .collect();
        if descs.is_empty() {
            return Err(ApiError::new(
                code::INDEX_NOT_FOUND,
                format!(
                    "index not found[collection={}][index={}]",
                    r.collection_name, r.index_name
                ),
            ));
        }
        ok(DescribeIndexResponse {
            index_descriptions: descs,
            ..Default::default()
        })
    }

    async fn do_delete(&self, db: &str, r: DeleteRequest) -> ApiResult<MutationResult> {
        let info = self.coord.get(db, &r.collection_name).await?;
        if r.expr.trim().is_empty() {
            return Err(ApiError::new(
                code::MISSING_PARAMETER,
                "delete needs a filter expression",
            ));
        }
        let (pred, templates) = Self::compile(&info.schema, &r.expr, r.expr_template_values)?;
        let shards = self.shards(&info);
        let pks: Vec<Pk> = match pred.primary_keys() {
            Some(pks) => pks,
            None => {
                let names: Vec<String> = if r.partition_name.is_empty() {
                    vec![]
                } else {
                    vec![r.partition_name.clone()]
                };
                let parts = Self::partitions_named(&info, &names)?;
                let scope = Self::scope(self.coord.now().await?, parts, &r.expr, &templates);
                let mut out = Vec::new();
                for i in 0..shards.len() {
                    let mut pks: Vec<Pk> = shards
                        .query_rows(i, &scope, None)
                        .await?
                        .into_iter()
                        .map(|(pk, _, _)| pk)
                        .collect();
                    pks.dedup();
                    out.extend(pks);
                }
                out
            }
        };
        let mut per_shard: Vec<Vec<Pk>> = vec![Vec::new(); shards.len()];
        for pk in &pks {
            per_shard[shard_of(pk, shards.len())].push(pk.clone());
        }
        let mut ts = Timestamp::ZERO;
        for (shard, keys) in per_shard.into_iter().enumerate() {
            if !keys.is_empty() {
                ts = ts.max(shards.delete(shard, &keys).await?.ts);
            }
        }
        ok(MutationResult {
            i_ds: Some(convert::ids(&pks, &info.schema)),
            delete_cnt: pks.len() as i64,
            timestamp: ts.0,
            ..Default::default()
        })
    }

    async fn do_describe_collection(
        &self,
        db: &str,
        name: &str,
    ) -> ApiResult<DescribeCollectionResponse> {
        let info = self.coord.get(db, name).await?;
        let aliases = self.coord.list_aliases(db, Some(info.name())).await?;
        ok(DescribeCollectionResponse {
            aliases,
            schema: Some(schema_to_proto(&info.schema)),
            collection_id: info.id.0,
            virtual_channel_names: info.vchannels().iter().map(|v| v.0.clone()).collect(),
            physical_channel_names: info.vchannels().iter().map(|v| v.pchannel().0).collect(),
            created_timestamp: info.created_ts,
            created_utc_timestamp: Timestamp(info.created_ts).physical_ms(),
            shards_num: info.shards as i32,
            consistency_level: info.consistency_level,
            collection_name: info.name().to_string(),
            properties: info
                .properties
                .iter()
                .map(|(k, v)| KeyValuePair {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            db_name: info.db.clone(),
            num_partitions: info.partitions.len() as i64,
            update_timestamp: info.created_ts,
            ..Default::default()
        })
    }

    /// Loads the whole collection, or (`partitions` non-empty) just those partitions.
    async fn do_load(&self, db: &str, name: &str, partitions: &[String]) -> ApiResult<Status> {
        let info = self.coord.get(db, name).await?;
        for p in partitions {
            info.partition(p)?;
        }
        info.check_indexed()?;
        // Opening the shards recovers them; only then is the collection served.
        self.shards(&info).open().await?;
        let change = if partitions.is_empty() {
            CatalogChange::SetLoaded(true)
        } else {
            CatalogChange::LoadPartitions(partitions.to_vec())
        };
        // The collection checked and opened above, even if an alias moved meanwhile;
        // the change itself re-checks the indexes under the catalog lock.
        self.coord.change(db, info.name(), change).await?;
        Ok(ok_status())
    }

    async fn row_count(
        &self,
        info: &CollectionInfo,
        partitions: &[PartitionId],
    ) -> ApiResult<usize> {
        let shards = self.shards(info);
        let scope = Self::scope(
            self.coord.now().await?,
            partitions.to_vec(),
            "",
            &BTreeMap::new(),
        );
        let mut n = 0;
        for i in 0..shards.len() {
            n += shards.count(i, &scope).await?;
        }
        Ok(n)
    }
}

#[tonic::async_trait]
impl MilvusService for Proxy {
    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name))]
    async fn create_collection(
        &self,
        request: Request<CreateCollectionRequest>,
    ) -> Result<Response<Status>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                let db = db?;
                validate_name(&r.collection_name).map_err(|e| ApiError::invalid(e.to_string()))?;
                let proto: crate::pb::schema::CollectionSchema =
                    prost::Message::decode(r.schema.as_slice()).map_err(|e| {
                        ApiError::new(code::ILLEGAL_SCHEMA, format!("undecodable schema: {e}"))
                    })?;
                let schema = schema_from_proto(&proto, &r.collection_name)?;
                let shards = if r.shards_num <= 0 {
                    1
                } else {
                    r.shards_num as u32
                };
                if shards > 16 {
                    return Err(ApiError::invalid(format!(
                        "shards_num {shards} exceeds the limit of 16"
                    )));
                }
                let props = r
                    .properties
                    .iter()
                    .map(|p| (p.key.clone(), p.value.clone()))
                    .collect();
                let info = self
                    .coord
                    .create(&db, schema, shards, r.consistency_level, props)
                    .await?;
                self.shards(&info).open().await?;
                Ok(ok_status())
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name))]
    async fn drop_collection(
        &self,
        request: Request<DropCollectionRequest>,
    ) -> Result<Response<Status>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                let db = db?;
                if let Some(info) = self.coord.drop_collection(&db, &r.collection_name).await? {
                    self.streaming.drop_collection(info).await?;
                }
                Ok(ok_status())
            }
            .await,
        )
    }

    async fn has_collection(
        &self,
        request: Request<HasCollectionRequest>,
    ) -> Result<Response<BoolResponse>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                let db = db?;
                let value = self.coord.get(&db, &r.collection_name).await.is_ok();
                ok(BoolResponse {
                    value,
                    ..Default::default()
                })
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name))]
    async fn load_collection(
        &self,
        request: Request<LoadCollectionRequest>,
    ) -> Result<Response<Status>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(async { self.do_load(&db?, &r.collection_name, &[]).await }.await)
    }

    async fn release_collection(
        &self,
        request: Request<ReleaseCollectionRequest>,
    ) -> Result<Response<Status>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                self.coord
                    .change(&db?, &r.collection_name, CatalogChange::SetLoaded(false))
                    .await?;
                Ok(ok_status())
            }
            .await,
        )
    }

    async fn describe_collection(
        &self,
        request: Request<DescribeCollectionRequest>,
    ) -> Result<Response<DescribeCollectionResponse>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(async { self.do_describe_collection(&db?, &r.collection_name).await }.await)
    }

    async fn get_collection_statistics(
        &self,
        request: Request<GetCollectionStatisticsRequest>,
    ) -> Result<Response<GetCollectionStatisticsResponse>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                let info = self.coord.get(&db?, &r.collection_name).await?;
                let parts = Self::partitions_named(&info, &[])?;
                let n = self.row_count(&info, &parts).await?;
                ok(GetCollectionStatisticsResponse {
                    stats: vec![KeyValuePair {
                        key: "row_count".into(),
                        value: n.to_string(),
                    }],
                    ..Default::default()
                })
            }
            .await,
        )
    }

    async fn show_collections(
        &self,
        request: Request<ShowCollectionsRequest>,
    ) -> Result<Response<ShowCollectionsResponse>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        reply(
            async {
                let all = self.coord.list(&db?).await?;
                ok(ShowCollectionsResponse {
                    collection_names: all.iter().map(|c| c.name().to_string()).collect(),
                    collection_ids: all.iter().map(|c| c.id.0).collect(),
                    created_timestamps: all.iter().map(|c| c.created_ts).collect(),
                    created_utc_timestamps: all
                        .iter()
                        .map(|c| Timestamp(c.created_ts).physical_ms())
                        .collect(),
                    in_memory_percentages: all.iter().map(|c| c.loaded_percent()).collect(),
                    query_service_available: all.iter().map(|c| c.loaded()).collect(),
                    shards_num: all.iter().map(|c| c.shards as i32).collect(),
                    ..Default::default()
                })
            }
            .await,
        )
    }

    async fn create_partition(
        &self,
        request: Request<CreatePartitionRequest>,
    ) -> Result<Response<Status>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                let db = db?;
                validate_name(&r.partition_name).map_err(|e| ApiError::invalid(e.to_string()))?;
                let ts = self.coord.now().await?;
                let p = PartitionInfo {
                    id: PartitionId(ts.0 as i64),
                    name: r.partition_name.clone(),
                    created_ts: ts.0,
                };
                self.coord
                    .change(&db, &r.collection_name, CatalogChange::AddPartition(p))
                    .await?;
                Ok(ok_status())
            }
            .await,
        )
    }

    async fn drop_partition(
        &self,
        request: Request<DropPartitionRequest>,
    ) -> Result<Response<Status>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                self.coord
                    .change(
                        &db?,
                        &r.collection_name,
                        CatalogChange::DropPartition(r.partition_name.clone()),
                    )
                    .await?;
                Ok(ok_status())
            }
            .await,
        )
    }

    async fn has_partition(
        &self,
        request: Request<HasPartitionRequest>,
    ) -> Result<Response<BoolResponse>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                let info = self.coord.get(&db?, &r.collection_name).await?;
                ok(BoolResponse {
                    value: info.partition(&r.partition_name).is_ok(),
                    ..Default::default()
                })
            }
            .await,
        )
    }

    async fn load_partitions(
        &self,
        request: Request<LoadPartitionsRequest>,
    ) -> Result<Response<Status>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                if r.partition_names.is_empty() {
                    return Err(ApiError::new(
                        code::MISSING_PARAMETER,
                        "LoadPartitions needs at least one partition name",
                    ));
                }
                self.do_load(&db?, &r.collection_name, &r.partition_names)
                    .await
            }
            .await,
        )
    }

    async fn release_partitions(
        &self,
        request: Request<ReleasePartitionsRequest>,
    ) -> Result<Response<Status>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                if r.partition_names.is_empty() {
                    return Err(ApiError::new(
                        code::MISSING_PARAMETER,
                        "ReleasePartitions needs at least one partition name",
                    ));
                }
                self.coord
                    .change(
                        &db?,
                        &r.collection_name,
                        CatalogChange::ReleasePartitions(r.partition_names.clone()),
                    )
                    .await?;
                Ok(ok_status())
            }
            .await,
        )
    }

    async fn get_partition_statistics(
        &self,
        request: Request<GetPartitionStatisticsRequest>,
    ) -> Result<Response<GetPartitionStatisticsResponse>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                let info = self.coord.get(&db?, &r.collection_name).await?;
                let parts = Self::partitions_named(&info, std::slice::from_ref(&r.partition_name))?;
                let n = self.row_count(&info, &parts).await?;
                ok(GetPartitionStatisticsResponse {
                    stats: vec![KeyValuePair {
                        key: "row_count".into(),
                        value: n.to_string(),
                    }],
                    ..Default::default()
                })
            }
            .await,
        )
    }

    async fn show_partitions(
        &self,
        request: Request<ShowPartitionsRequest>,
    ) -> Result<Response<ShowPartitionsResponse>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                let info = self.coord.get(&db?, &r.collection_name).await?;
                let ps = &info.partitions;
                ok(ShowPartitionsResponse {
                    partition_names: ps.iter().map(|p| p.name.clone()).collect(),
                    partition_i_ds: ps.iter().map(|p| p.id.0).collect(),
                    created_timestamps: ps.iter().map(|p| p.created_ts).collect(),
                    created_utc_timestamps: ps
                        .iter()
                        .map(|p| Timestamp(p.created_ts).physical_ms())
                        .collect(),
                    in_memory_percentages: ps
                        .iter()
                        .map(|p| if info.partition_loaded(p.id) { 100 } else { 0 })
                        .collect(),
                    ..Default::default()
                })
            }
            .await,
        )
    }

    async fn get_loading_progress(
        &self,
        request: Request<GetLoadingProgressRequest>,
    ) -> Result<Response<GetLoadingProgressResponse>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                let info = self.coord.get(&db?, &r.collection_name).await?;
                if !info.loaded() {
                    return Err(ApiError::new(
                        code::COLLECTION_NOT_LOADED,
                        format!("collection not loaded[collection={}]", r.collection_name),
                    ));
                }
                for name in &r.partition_names {
                    if !info.partition_loaded(info.partition(name)?.id) {
                        return Err(ApiError::new(
                            code::PARTITION_NOT_LOADED,
                            format!("partition not loaded[partition={name}]"),
                        ));
                    }
                }
                ok(GetLoadingProgressResponse {
                    progress: 100,
                    refresh_progress: 100,
                    ..Default::default()
                })
            }
            .await,
        )
    }

    async fn get_load_state(
        &self,
        request: Request<GetLoadStateRequest>,
    ) -> Result<Response<GetLoadStateResponse>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                let info = self.coord.get(&db?, &r.collection_name).await?;
                let mut loaded = info.loaded();
                for p in &r.partition_names {
                    loaded &= info.partition_loaded(info.partition(p)?.id);
                }
                use crate::pb::common::LoadState;
                let state = if loaded {
                    LoadState::Loaded
                } else {
                    LoadState::NotLoad
                };
                ok(GetLoadStateResponse {
                    state: state as i32,
                    ..Default::default()
                })
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name))]
    async fn create_index(
        &self,
        request: Request<CreateIndexRequest>,
    ) -> Result<Response<Status>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(async { self.do_create_index(&db?, r).await }.await)
    }

    async fn describe_index(
        &self,
        request: Request<DescribeIndexRequest>,
    ) -> Result<Response<DescribeIndexResponse>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(async { self.do_describe_index(&db?, r).await }.await)
    }

    async fn drop_index(
        &self,
        request: Request<DropIndexRequest>,
    ) -> Result<Response<Status>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                let change = CatalogChange::DropIndex {
                    index_name: r.index_name.clone(),
                    field_name: r.field_name.clone(),
                };
                self.coord.change(&db?, &r.collection_name, change).await?;
                Ok(ok_status())
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name, rows = request.get_ref().num_rows))]
    async fn insert(
        &self,
        request: Request<InsertRequest>,
    ) -> Result<Response<MutationResult>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let size = prost::Message::encoded_len(request.get_ref());
        let r = request.into_inner();
        reply(async {
            if size > MAX_REQUEST_BYTES {
                return Err(ApiError::invalid(format!("request of {size} bytes exceeds the {MAX_REQUEST_BYTES}-byte limit; insert in smaller batches")));
            }
            self.write_rows(&db?, &r.collection_name, &r.partition_name, r.fields_data, r.num_rows, false).await
        }.await)
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name))]
    async fn delete(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<MutationResult>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(async { self.do_delete(&db?, r).await }.await)
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name, rows = request.get_ref().num_rows))]
    async fn upsert(
        &self,
        request: Request<UpsertRequest>,
    ) -> Result<Response<MutationResult>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let size = prost::Message::encoded_len(request.get_ref());
        let r = request.into_inner();
        reply(async {
            if size > MAX_REQUEST_BYTES {
                return Err(ApiError::invalid(format!("request of {size} bytes exceeds the {MAX_REQUEST_BYTES}-byte limit; upsert in smaller batches")));
            }
            self.write_rows(&db?, &r.collection_name, &r.partition_name, r.fields_data, r.num_rows, true).await
        }.await)
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name, nq = request.get_ref().nq))]
    async fn search(
        &self,
        request: Request<SearchRequest>,
    ) -> Result<Response<SearchResults>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                let db = db?;
                let info = self.loaded(&db, &r.collection_name).await?;
                let gts = self
                    .guarantee(
                        &info,
                        r.consistency_level,
                        r.use_default_consistency,
                        r.guarantee_timestamp,
                    )
                    .await?;
                reads::search(&self.shards(&info), r, gts).await
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name))]
    async fn hybrid_search(
        &self,
        request: Request<HybridSearchRequest>,
    ) -> Result<Response<SearchResults>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                let db = db?;
                let info = self.loaded(&db, &r.collection_name).await?;
                let gts = self
                    .guarantee(
                        &info,
                        r.consistency_level,
                        r.use_default_consistency,
                        r.guarantee_timestamp,
                    )
                    .await?;
                hybrid::hybrid_search(&self.shards(&info), r, gts).await
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_names.join(",")))]
    async fn flush(
        &self,
        request: Request<FlushRequest>,
    ) -> Result<Response<FlushResponse>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                let db = db?;
                let mut resp = FlushResponse {
                    db_name: db.clone(),
                    ..Default::default()
                };
                for name in &r.collection_names {
                    let info = self.coord.get(&db, name).await?;
                    let shards = self.shards(&info);
                    let mut segs = Vec::new();
                    for i in 0..shards.len() {
                        segs.extend(shards.flush(i).await?.into_iter().map(|s| s.0));
                    }
                    let ts = self.coord.now().await?;
                    resp.coll_flush_ts.insert(name.clone(), ts.0);
                    resp.coll_seg_i_ds.insert(
                        name.clone(),
                        crate::pb::schema::LongArray { data: segs.clone() },
                    );
                    resp.flush_coll_seg_i_ds
                        .insert(name.clone(), crate::pb::schema::LongArray { data: segs });
                }
                ok(resp)
            }
            .await,
        )
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name))]
    async fn query(
        &self,
        request: Request<QueryRequest>,
    ) -> Result<Response<QueryResults>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                let db = db?;
                let info = self.loaded(&db, &r.collection_name).await?;
                let gts = self
                    .guarantee(
                        &info,
                        r.consistency_level,
                        r.use_default_consistency,
                        r.guarantee_timestamp,
                    )
                    .await?;
                reads::query(&self.shards(&info), r, gts).await
            }
            .await,
        )
    }

    async fn get_flush_state(
        &self,
        request: Request<GetFlushStateRequest>,
    ) -> Result<Response<GetFlushStateResponse>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        // Flush returns only after the manifest is committed, so anything a client
        // flushed is flushed by the time it can ask.
        reply(
            async {
                let db = db?;
                if !r.collection_name.is_empty() {
                    self.coord.get(&db, &r.collection_name).await?;
                }
                ok(GetFlushStateResponse {
                    flushed: true,
                    ..Default::default()
                })
            }
            .await,
        )
    }

    async fn get_version(
        &self,
        request: Request<GetVersionRequest>,
    ) -> Result<Response<GetVersionResponse>, tonic::Status> {
        self.check_auth(&request)?;
        reply(ok(GetVersionResponse {
            version: format!("v2.6.0-quiver-{}", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        }))
    }

    async fn check_health(
        &self,
        request: Request<CheckHealthRequest>,
    ) -> Result<Response<CheckHealthResponse>, tonic::Status> {
        self.check_auth(&request)?;
        reply(ok(CheckHealthResponse {
            is_healthy: true,
            ..Default::default()
        }))
    }

    async fn connect(
        &self,
        request: Request<ConnectRequest>,
    ) -> Result<Response<ConnectResponse>, tonic::Status> {
        self.check_auth(&request)?;
        reply(
            async {
                let id = self.coord.now().await?;
                ok(ConnectResponse {
                    server_info: Some(crate::pb::common::ServerInfo {
                        build_tags: format!("quiver-{}", env!("CARGO_PKG_VERSION")),
                        deploy_mode: "STANDALONE".into(),
                        ..Default::default()
                    }),
                    identifier: id.0 as i64,
                    ..Default::default()
                })
            }
            .await,
        )
    }

    async fn alloc_timestamp(
        &self,
        request: Request<AllocTimestampRequest>,
    ) -> Result<Response<AllocTimestampResponse>, tonic::Status> {
        self.check_auth(&request)?;
        reply(
            async {
                ok(AllocTimestampResponse {
                    timestamp: self.coord.now().await?.0,
                    ..Default::default()
                })
            }
            .await,
        )
    }

    async fn create_database(
        &self,
        request: Request<CreateDatabaseRequest>,
    ) -> Result<Response<Status>, tonic::Status> {
        self.check_auth(&request)?;
        let r = request.into_inner();
        reply(
            async {
                validate_db_name(&r.db_name)?;
                self.coord
                    .create_database(&r.db_name, kv_pairs(&r.properties))
                    .await?;
                Ok(ok_status())
            }
            .await,
        )
    }

    async fn drop_database(
        &self,
        request: Request<DropDatabaseRequest>,
    ) -> Result<Response<Status>, tonic::Status> {
        self.check_auth(&request)?;
        let r = request.into_inner();
        reply(
            async {
                self.coord.drop_database(&r.db_name).await?;
                Ok(ok_status())
            }
            .await,
        )
    }

    async fn list_databases(
        &self,
        request: Request<ListDatabasesRequest>,
    ) -> Result<Response<ListDatabasesResponse>, tonic::Status> {
        self.check_auth(&request)?;
        reply(
            async {
                let dbs = self.coord.databases().await?;
                ok(ListDatabasesResponse {
                    db_names: dbs.iter().map(|d| d.name.clone()).collect(),
                    db_ids: dbs.iter().map(|d| d.id).collect(),
                    created_timestamp: dbs.iter().map(|d| d.created_ts).collect(),
                    ..Default::default()
                })
            }
            .await,
        )
    }

    async fn describe_database(
        &self,
        request: Request<DescribeDatabaseRequest>,
    ) -> Result<Response<DescribeDatabaseResponse>, tonic::Status> {
        self.check_auth(&request)?;
        let r = request.into_inner();
        reply(
            async {
                let name = if r.db_name.is_empty() {
                    DEFAULT_DB
                } else {
                    &r.db_name
                };
                let d = self.coord.database(name).await?;
                ok(DescribeDatabaseResponse {
                    db_name: d.name,
                    db_id: d.id,
                    created_timestamp: d.created_ts,
                    properties: d
                        .properties
                        .into_iter()
                        .map(|(key, value)| KeyValuePair { key, value })
                        .collect(),
                    ..Default::default()
                })
            }
            .await,
        )
    }

    async fn alter_database(
        &self,
        request: Request<AlterDatabaseRequest>,
    ) -> Result<Response<Status>, tonic::Status> {
        self.check_auth(&request)?;
        let r = request.into_inner();
        reply(
            async {
                self.coord
                    .alter_database(&r.db_name, kv_pairs(&r.properties), r.delete_keys)
                    .await?;
                Ok(ok_status())
            }
            .await,
        )
    }

    async fn create_alias(
        &self,
        request: Request<CreateAliasRequest>,
    ) -> Result<Response<Status>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                validate_name(&r.alias).map_err(|e| ApiError::invalid(e.to_string()))?;
                self.coord
                    .set_alias(&db?, &r.alias, &r.collection_name, false)
                    .await?;
                Ok(ok_status())
            }
            .await,
        )
    }

    async fn alter_alias(
        &self,
        request: Request<AlterAliasRequest>,
    ) -> Result<Response<Status>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                self.coord
                    .set_alias(&db?, &r.alias, &r.collection_name, true)
                    .await?;
                Ok(ok_status())
            }
            .await,
        )
    }

    async fn drop_alias(
        &self,
        request: Request<DropAliasRequest>,
    ) -> Result<Response<Status>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                self.coord.drop_alias(&db?, &r.alias).await?;
                Ok(ok_status())
            }
            .await,
        )
    }

    async fn describe_alias(
        &self,
        request: Request<DescribeAliasRequest>,
    ) -> Result<Response<DescribeAliasResponse>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                let db = db?;
                let collection = self.coord.describe_alias(&db, &r.alias).await?;
                ok(DescribeAliasResponse {
                    db_name: db,
                    alias: r.alias,
                    collection,
                    ..Default::default()
                })
            }
            .await,
        )
    }

    async fn list_aliases(
        &self,
        request: Request<ListAliasesRequest>,
    ) -> Result<Response<ListAliasesResponse>, tonic::Status> {
        self.check_auth(&request)?;
        let db = db_of(&request, &request.get_ref().db_name);
        let r = request.into_inner();
        reply(
            async {
                let db = db?;
                let of = Some(r.collection_name.as_str()).filter(|n| !n.is_empty());
                let aliases = self.coord.list_aliases(&db, of).await?;
                ok(ListAliasesResponse {
                    db_name: db,
                    collection_name: r.collection_name,
                    aliases,
                    ..Default::default()
                })
            }
            .await,
        )
    }
}
