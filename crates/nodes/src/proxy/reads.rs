//! Search and query: fan out to every shard's delegator, reduce, fetch output fields.

use std::collections::BTreeMap;

use prost::Message;
use quiver_core::batch::{Batch, ColumnData, Pk};
use quiver_core::ids::SegmentId;
use quiver_core::schema::{CollectionSchema, FieldSchema};
use quiver_core::search::{reduce, Hit, Metric};
use quiver_core::tso::Timestamp;

use super::convert;
use super::group_by::{self, GroupBy, GroupKey};
use super::params::{kv_map, parse_usize, MAX_TOPK};
use super::shards::{Shards, VectorQuery};
use super::Proxy;
use crate::error::{code, ApiError, ApiResult};
use crate::pb::common::PlaceholderGroup;
use crate::pb::milvus::{
    search_request::SearchInput, QueryRequest, QueryResults, SearchRequest, SearchResults,
};
use crate::pb::schema::{self as ps, field_data::Field as FdField};

/// Rows in a wire column (to infer `num_rows` when a client leaves it 0).
pub fn field_rows(fd: &ps::FieldData) -> usize {
    use ps::scalar_field::Data as Sd;
    use ps::vector_field::Data as Vd;
    match &fd.field {
        Some(FdField::Scalars(s)) => match &s.data {
            Some(Sd::BoolData(v)) => v.data.len(),
            Some(Sd::IntData(v)) => v.data.len(),
            Some(Sd::LongData(v)) => v.data.len(),
            Some(Sd::FloatData(v)) => v.data.len(),
            Some(Sd::DoubleData(v)) => v.data.len(),
            Some(Sd::StringData(v)) => v.data.len(),
            Some(Sd::JsonData(v)) => v.data.len(),
            _ => 0,
        },
        Some(FdField::Vectors(v)) => match &v.data {
            Some(Vd::FloatVector(f)) if v.dim > 0 => f.data.len() / v.dim as usize,
            _ => 0,
        },
        _ => 0,
    }
    .max(fd.valid_data.len())
}

/// What a read returns: the fields (in schema order), the names to echo, count mode.
pub(super) struct Output<'a> {
    pub(super) fields: Vec<&'a FieldSchema>,
    pub(super) echo: Vec<String>,
    count: bool,
}

fn resolve_output<'a>(
    schema: &'a CollectionSchema,
    requested: &[String],
    with_pk: bool,
) -> ApiResult<Output<'a>> {
    let mut want: Vec<&FieldSchema> = Vec::new();
    let mut count = false;
    let add = |f: &'a FieldSchema, want: &mut Vec<&'a FieldSchema>| {
        if !want.iter().any(|w| w.id == f.id) {
            want.push(f);
        }
    };
    for name in requested {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        if name == "*" {
            for f in &schema.fields {
                add(f, &mut want);
            }
        } else if name.eq_ignore_ascii_case("count(*)") {
            count = true;
        } else if let Some(f) = schema.field(name) {
            add(f, &mut want);
        } else if let Some(meta) = schema.dynamic_field() {
            // A dynamic key: the client picks it out of `$meta`.
            add(meta, &mut want);
        } else {
            return Err(ApiError::new(
                code::FIELD_NOT_FOUND,
                format!("field {name} not exist"),
            ));
        }
    }
    if count && !want.is_empty() {
        return Err(ApiError::invalid(
            "count(*) cannot be combined with other output fields",
        ));
    }
    if with_pk && !count {
        add(schema.primary_field(), &mut want);
    }
    want.sort_by_key(|f| f.id);
    Ok(Output {
        fields: want,
        echo: expand_star(schema, requested),
        count,
    })
}

/// The output-field names to echo: `*` becomes every field (and `$meta`, from which
/// pymilvus then takes the dynamic keys), as Milvus's proxy does.
fn expand_star(schema: &CollectionSchema, requested: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in requested {
        if name.trim() == "*" {
            for f in &schema.fields {
                if !out.contains(&f.name) {
                    out.push(f.name.clone());
                }
            }
        } else if !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

pub(super) fn columns_of(
    schema: &CollectionSchema,
    batch: &Batch,
    fields: &[&FieldSchema],
) -> Vec<ps::FieldData> {
    fields
        .iter()
        .map(|f| {
            let pos = schema.position(f.id).expect("schema field");
            convert::field_data(f, &batch.columns[pos])
        })
        .collect()
}

/// Fetches rows `(shard, segment, row)` in the given order.
async fn fetch_rows(
    schema: &CollectionSchema,
    shards: &Shards<'_>,
    refs: &[(usize, SegmentId, u32)],
) -> ApiResult<Batch> {
    let mut per_shard: BTreeMap<usize, Vec<(SegmentId, u32)>> = BTreeMap::new();
    for &(s, seg, row) in refs {
        per_shard.entry(s).or_default().push((seg, row));
    }
    // Per shard: the fetched rows and where each reference landed in them.
    type Fetched = (Batch, BTreeMap<(SegmentId, u32), usize>);
    let mut fetched: BTreeMap<usize, Fetched> = BTreeMap::new();
    for (s, rs) in per_shard {
        let b = shards.fetch(s, &rs).await?;
        let idx = rs.iter().enumerate().map(|(i, r)| (*r, i)).collect();
        fetched.insert(s, (b, idx));
    }
    let mut out = Batch::empty(schema);
    for &(s, seg, row) in refs {
        if let Some((b, idx)) = fetched.get(&s) {
            if let Some(&i) = idx.get(&(seg, row)) {
                if i < b.num_rows {
                    out.push_row(b, i);
                }
            }
        }
    }
    Ok(out)
}

pub async fn query(
    shards: &Shards<'_>,
    r: QueryRequest,
    now: Timestamp,
) -> ApiResult<QueryResults> {
    let info = shards.info;
    let schema = &info.schema;
    let params = kv_map(&r.query_params);
    let limit = parse_usize(&params, "limit")?;
    let offset = parse_usize(&params, "offset")?.unwrap_or(0);
    if let Some(l) = limit {
        if l + offset > MAX_TOPK * 1024 {
            return Err(ApiError::invalid(format!(
                "limit+offset {} is too large",
                l + offset
            )));
        }
    }
    let requested = if r.output_fields.is_empty() {
        vec![schema.primary_field().name.clone()]
    } else {
        r.output_fields.clone()
    };
    let out = resolve_output(schema, &requested, true)?;
    let (pred, templates) = Proxy::compile(schema, &r.expr, r.expr_template_values)?;
    if pred.matches_all() && limit.is_none() && !out.count {
        return Err(ApiError::invalid(
            "empty expression should be used with limit",
        ));
    }
    let parts = Proxy::read_partitions(info, &r.partition_names)?;
    let scope = Proxy::scope(now, parts, &r.expr, &templates);
    let base = crate::pb::milvus::QueryResults {
        collection_name: info.name().to_string(),
        primary_field_name: schema.primary_field().name.clone(),
        output_fields: out.echo.clone(),
        session_ts: now.0,
        ..Default::default()
    };
    if out.count {
        let mut n = 0usize;
        for i in 0..shards.len() {
            n += shards.count(i, &scope).await?;
        }
        return super::ok(QueryResults {
            fields_data: vec![ps::FieldData {
                r#type: 5,
                field_name: "count(*)".into(),
                field: Some(FdField::Scalars(ps::ScalarField {
                    data: Some(ps::scalar_field::Data::LongData(ps::LongArray {
                        data: vec![n as i64],
                    })),
                })),
                ..Default::default()
            }],
            output_fields: vec!["count(*)".into()],
            ..base
        });
    }
    let cap = limit.map(|l| l + offset);
    let mut rows: Vec<(Pk, usize, SegmentId, u32)> = Vec::new();
    for i in 0..shards.len() {
        rows.extend(
            shards
                .query_rows(i, &scope, cap)
                .await?
                .into_iter()
                .map(|(pk, seg, row)| (pk, i, seg, row)),
        );
    }
    rows.sort();
    let rows: Vec<(usize, SegmentId, u32)> = rows
        .into_iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .map(|(_, s, seg, row)| (s, seg, row))
        .collect();
    let batch = fetch_rows(schema, shards, &rows).await?;
    super::ok(QueryResults {
        fields_data: columns_of(schema, &batch, &out.fields),
        ..base
    })
}

fn decode_queries(r: &SearchRequest, dim: usize) -> ApiResult<Vec<Vec<f32>>> {
    let bytes = match &r.search_input {
        Some(SearchInput::PlaceholderGroup(b)) => b,
        Some(SearchInput::Ids(_)) => {
            return Err(ApiError::internal(
                "a search by primary key takes its vectors from the rows, not the request",
            ))
        }
        None => {
            return Err(ApiError::new(
                code::MISSING_PARAMETER,
                "search request has no query vectors",
            ))
        }
    };
    let group = PlaceholderGroup::decode(bytes.as_slice())
        .map_err(|e| ApiError::invalid(format!("undecodable placeholder group: {e}")))?;
    let ph = group
        .placeholders
        .first()
        .ok_or_else(|| ApiError::invalid("placeholder group is empty"))?;
    if ph.r#type != 101 {
        return Err(ApiError::invalid(format!(
            "query vectors of placeholder type {} are not supported (float vectors only)",
            ph.r#type
        )));
    }
    if ph.values.is_empty() {
        return Err(ApiError::invalid("no query vectors"));
    }
    ph.values
        .iter()
        .map(|v| {
            if v.len() != dim * 4 {
                return Err(ApiError::invalid(format!(
                    "vector dimension mismatch, expected vector size(byte) {}, actual {} (dim {dim}, got dim {})",
                    dim * 4,
                    v.len(),
                    v.len() / 4
                )));
            }
            let q: Vec<f32> = v.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            if q.iter().any(|x| !x.is_finite()) {
                return Err(ApiError::invalid("query vector contains NaN or infinity"));
            }
            Ok(q)
        })
        .collect()
}

pub async fn search(
    shards: &Shards<'_>,
    r: SearchRequest,
    now: Timestamp,
) -> ApiResult<SearchResults> {
    let info = shards.info;
    let schema = &info.schema;
    let sp = kv_map(&r.search_params);
    let topk = parse_usize(&sp, "topk")?.ok_or_else(|| {
        ApiError::new(
            code::MISSING_PARAMETER,
            "topk is missing from search params",
        )
    })?;
    let offset = parse_usize(&sp, "offset")?.unwrap_or(0);
    if topk == 0 || topk > MAX_TOPK {
        return Err(ApiError::invalid(format!(
            "topk [{topk}] is invalid, it should be in range [1, {MAX_TOPK}]"
        )));
    }
    if topk + offset > MAX_TOPK {
        return Err(ApiError::invalid(format!(
            "topk+offset [{}] is invalid, it should be in range [1, {MAX_TOPK}]",
            topk + offset
        )));
    }
    let inner = inner_params(&sp)?;
    let (field, metric) = field_and_metric(info, &sp, &inner)?;
    let dim = match field.data_type {
        quiver_core::schema::DataType::FloatVector { dim } => dim as usize,
        _ => unreachable!("vector field"),
    };
    let out = resolve_search_output(schema, &r.output_fields)?;
    let (_, templates) = Proxy::compile(schema, &r.dsl, r.expr_template_values.clone())?;
    let parts = Proxy::read_partitions(info, &r.partition_names)?;
    let queries = match &r.search_input {
        Some(SearchInput::Ids(ids)) => vectors_of(shards, field, ids, now, &parts).await?,
        _ => decode_queries(&r, dim)?,
    };
    let scope = Proxy::scope(now, parts, &r.dsl, &templates);
    let k = topk + offset;
    // Index search parameters (ef, nprobe, ...) travel as strings to whoever searches.
    let index_params: Vec<(String, String)> = inner
        .iter()
        .filter(|(key, _)| key.as_str() != "metric_type")
        .map(|(key, v)| {
            (
                key.clone(),
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            )
        })
        .collect();
    let groups = GroupBy::parse(schema, &sp, &inner, k)?;
    let mut vq = VectorQuery {
        field: field.id,
        queries: &queries,
        k,
        metric,
        params: &index_params,
    };
    // Per query, the hits to return (after `offset`); for a grouped search also the
    // rows already fetched for them, in the same order.
    let (per_query, prefetched): (Vec<Vec<Hit>>, Option<Batch>) = match &groups {
        None => {
            let per_shard = search_shards(shards, &vq, &scope).await?;
            let hits = (0..queries.len())
                .map(|q| {
                    let all = reduce(per_shard.iter().map(|r| r[q].clone()).collect(), k);
                    all.into_iter().skip(offset).collect()
                })
                .collect();
            (hits, None)
        }
        Some(g) => {
            vq.k = g.first_candidates(k);
            grouped_search(shards, &mut vq, &scope, g, k, offset).await?
        }
    };
    let round: i64 = sp
        .get("round_decimal")
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1);
    let mut topks = Vec::new();
    let mut scores = Vec::new();
    let mut pks = Vec::new();
    let mut refs = Vec::new();
    for hits in per_query {
        topks.push(hits.len() as i64);
        for h in hits {
            scores.push(round_score(h.score, round));
            pks.push(h.pk.clone());
            // Segment ids encode their shard (see StreamingNode::shards).
            refs.push(((h.segment.0 >> 40) as usize, h.segment, h.row));
        }
    }
    let batch = match prefetched {
        Some(b) => Some(b),
        None if !out.fields.is_empty() => Some(fetch_rows(schema, shards, &refs).await?),
        None => None,
    };
    let fields_data = match &batch {
        Some(b) if !out.fields.is_empty() => columns_of(schema, b, &out.fields),
        _ => Vec::new(),
    };
    let group_by_field_value = match (&groups, &batch) {
        (Some(g), Some(b)) => columns_of(schema, b, &[g.field]).pop(),
        _ => None,
    };
    super::ok(SearchResults {
        collection_name: info.name().to_string(),
        session_ts: now.0,
        results: Some(ps::SearchResultData {
            num_queries: queries.len() as i64,
            top_k: topk as i64,
            fields_data,
            scores,
            ids: Some(convert::ids(&pks, schema)),
            topks,
            output_fields: out.echo,
            primary_field_name: schema.primary_field().name.clone(),
            group_by_field_value,
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// A search's output fields (no primary key unless asked; no `count(*)`).
pub(super) fn resolve_search_output<'a>(
    schema: &'a CollectionSchema,
    requested: &[String],
) -> ApiResult<Output<'a>> {
    let out = resolve_output(schema, requested, false)?;
    if out.count {
        return Err(ApiError::invalid("count(*) is not a search output field"));
    }
    Ok(out)
}

/// The metric a search request uses (see [`field_and_metric`]).
pub(super) fn metric_of(
    info: &crate::coordinator::CollectionInfo,
    r: &SearchRequest,
) -> ApiResult<Metric> {
    let sp = kv_map(&r.search_params);
    let inner = inner_params(&sp)?;
    Ok(field_and_metric(info, &sp, &inner)?.1)
}

/// The rows with primary keys `pks`, in that order (repeats allowed), read at the
/// guarantee `now`; every key must name a visible row.
pub(super) async fn rows_by_pk(
    shards: &Shards<'_>,
    pks: &[Pk],
    now: Timestamp,
    parts: &[quiver_core::ids::PartitionId],
) -> ApiResult<Batch> {
    let schema = &shards.info.schema;
    let pk_field = schema.primary_field();
    let values = pks
        .iter()
        .map(|p| match p {
            Pk::Int(v) => quiver_core::expr::Value::Int(*v),
            Pk::Str(v) => quiver_core::expr::Value::Str(v.clone()),
        })
        .collect();
    let templates = BTreeMap::from([(
        "quiver_pks".to_string(),
        quiver_core::expr::Value::Array(values),
    )]);
    let filter = format!("{} in {{quiver_pks}}", pk_field.name);
    let scope = Proxy::scope(now, parts.to_vec(), &filter, &templates);
    let mut refs = Vec::new();
    let mut found = Vec::new();
    for i in 0..shards.len() {
        for (pk, seg, row) in shards.query_rows(i, &scope, None).await? {
            found.push(pk);
            refs.push((i, seg, row));
        }
    }
    let rows = fetch_rows(schema, shards, &refs).await?;
    if rows.num_rows != found.len() {
        return Err(ApiError::new(
            code::UNAVAILABLE,
            "rows moved while they were read by primary key; retry",
        ));
    }
    let at: std::collections::HashMap<&Pk, usize> =
        found.iter().enumerate().map(|(i, pk)| (pk, i)).collect();
    let mut out = Batch::empty(schema);
    for pk in pks {
        let i = at
            .get(pk)
            .ok_or_else(|| ApiError::invalid(format!("no row with {} = {pk}", pk_field.name)))?;
        out.push_row(&rows, *i);
    }
    Ok(out)
}

/// The vectors in `field` of the rows with primary keys `ids` (a search by primary
/// key), read at the search's own guarantee; each key must name a visible row.
async fn vectors_of(
    shards: &Shards<'_>,
    field: &FieldSchema,
    ids: &ps::IDs,
    now: Timestamp,
    parts: &[quiver_core::ids::PartitionId],
) -> ApiResult<Vec<Vec<f32>>> {
    use ps::i_ds::IdField;
    let schema = &shards.info.schema;
    let pk_field = schema.primary_field();
    let pks: Vec<Pk> = match (&ids.id_field, &pk_field.data_type) {
        (Some(IdField::IntId(a)), quiver_core::schema::DataType::Int64) => {
            a.data.iter().map(|&v| Pk::Int(v)).collect()
        }
        (Some(IdField::StrId(a)), quiver_core::schema::DataType::VarChar { .. }) => {
            a.data.iter().cloned().map(Pk::Str).collect()
        }
        (None, _) => Vec::new(),
        _ => {
            return Err(ApiError::invalid(format!(
                "the ids to search by do not match the type of primary key {}",
                pk_field.name
            )))
        }
    };
    if pks.is_empty() {
        return Err(ApiError::new(
            code::MISSING_PARAMETER,
            "search by primary key needs at least one id",
        ));
    }
    if pks.len() > MAX_TOPK {
        return Err(ApiError::invalid(format!(
            "{} ids exceed the limit of {MAX_TOPK} queries per search",
            pks.len()
        )));
    }
    let rows = rows_by_pk(shards, &pks, now, parts)
        .await
        .map_err(|e| ApiError::new(e.code, format!("search by primary key: {}", e.reason)))?;
    let pos = schema
        .position(field.id)
        .expect("vector field is in the schema");
    match &rows.columns[pos].data {
        ColumnData::FloatVector { dim, data } if *dim > 0 => Ok(data
            .chunks_exact(*dim as usize)
            .map(<[f32]>::to_vec)
            .collect()),
        _ => Err(ApiError::internal(
            "a vector field's column holds no vectors",
        )),
    }
}

/// A score rounded to `round_decimal` places (0..=6; anything else leaves it as is).
pub(super) fn round_score(s: f32, round: i64) -> f32 {
    if (0..=6).contains(&round) {
        let m = 10f32.powi(round as i32);
        (s * m).round() / m
    } else {
        s
    }
}

/// The `params` JSON object of a search's key-values (empty when absent).
fn inner_params(
    sp: &BTreeMap<String, String>,
) -> ApiResult<serde_json::Map<String, serde_json::Value>> {
    Ok(match sp.get("params") {
        Some(p) if !p.trim().is_empty() => match serde_json::from_str(p) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => {
                return Err(ApiError::invalid(format!(
                    "search params {p:?} are not a JSON object"
                )))
            }
        },
        _ => serde_json::Map::new(),
    })
}

/// The vector field a search names (or the only one) and the metric it uses: the
/// client's, which must match the field's index, or the index's.
fn field_and_metric<'a>(
    info: &'a crate::coordinator::CollectionInfo,
    sp: &BTreeMap<String, String>,
    inner: &serde_json::Map<String, serde_json::Value>,
) -> ApiResult<(&'a FieldSchema, Metric)> {
    let schema = &info.schema;
    let field = match sp.get("anns_field").filter(|s| !s.is_empty()) {
        Some(name) => schema
            .field(name)
            .filter(|f| f.data_type.is_vector())
            .ok_or_else(|| {
                ApiError::new(
                    code::FIELD_NOT_FOUND,
                    format!("failed to get field schema: vector field {name} not found"),
                )
            })?,
        None => {
            let mut vs = schema.vector_fields();
            let first = vs
                .next()
                .ok_or_else(|| ApiError::invalid("collection has no vector field"))?;
            if vs.next().is_some() {
                return Err(ApiError::invalid(
                    "multiple anns_fields exist, please specify a anns_field in search_params",
                ));
            }
            first
        }
    };
    let index = info.index_on(&field.name);
    let asked = sp
        .get("metric_type")
        .cloned()
        .or_else(|| {
            inner
                .get("metric_type")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .filter(|m| !m.is_empty());
    let metric = match (asked, index) {
        (Some(m), idx) => {
            let m2 = Metric::parse(&m).ok_or_else(|| {
                ApiError::invalid(format!("metric type {m} is not supported (L2, IP, COSINE)"))
            })?;
            if let Some(i) = idx {
                if i.metric != m2 {
                    return Err(ApiError::invalid(format!(
                        "metric type not match: invalid parameter[expected={}][actual={}]",
                        i.metric.as_str(),
                        m2.as_str()
                    )));
                }
            }
            m2
        }
        (None, Some(i)) => i.metric,
        (None, None) => Metric::L2,
    };
    Ok((field, metric))
}

/// Every shard's answer to a vector search, per shard then per query.
async fn search_shards(
    shards: &Shards<'_>,
    vq: &VectorQuery<'_>,
    scope: &crate::rpc::wire::WireScope,
) -> ApiResult<Vec<Vec<Vec<Hit>>>> {
    let mut per_shard = Vec::with_capacity(shards.len());
    for i in 0..shards.len() {
        per_shard.push(shards.search(i, vq, scope).await?);
    }
    Ok(per_shard)
}

/// Most candidate rows (all queries together) one round of a grouped search fetches.
const GROUP_ROW_BUDGET: usize = 1 << 18;

/// A grouped search: asks for more candidates (up to the top-k limit) until every
/// query has its groups, or the shards run out; returns each query's hits after
/// skipping `offset` groups, and their rows.
async fn grouped_search(
    shards: &Shards<'_>,
    vq: &mut VectorQuery<'_>,
    scope: &crate::rpc::wire::WireScope,
    g: &GroupBy<'_>,
    groups_wanted: usize,
    offset: usize,
) -> ApiResult<(Vec<Vec<Hit>>, Option<Batch>)> {
    let schema = &shards.info.schema;
    // Each round fetches whole rows for every candidate of every query: bounded.
    let nq = vq.queries.len().max(1);
    let cap = (GROUP_ROW_BUDGET / nq).min(MAX_TOPK);
    if cap < groups_wanted * g.size {
        return Err(ApiError::invalid(format!(
            "a grouped search of {nq} queries x {} hits exceeds the {GROUP_ROW_BUDGET}-row \
             budget; split it into smaller requests",
            groups_wanted * g.size
        )));
    }
    vq.k = vq.k.min(cap);
    loop {
        let per_shard = search_shards(shards, vq, scope).await?;
        let candidates: Vec<Vec<Hit>> = (0..vq.queries.len())
            .map(|q| reduce(per_shard.iter().map(|r| r[q].clone()).collect(), vq.k))
            .collect();
        let refs: Vec<(usize, SegmentId, u32)> = candidates
            .iter()
            .flatten()
            .map(|h| ((h.segment.0 >> 40) as usize, h.segment, h.row))
            .collect();
        let rows = fetch_rows(schema, shards, &refs).await?;
        if rows.num_rows != refs.len() {
            return Err(ApiError::new(
                code::UNAVAILABLE,
                "rows moved while the grouped search fetched them; retry it",
            ));
        }
        let mut first = 0;
        let mut wants_more = false;
        let mut per_query = Vec::with_capacity(candidates.len());
        for hits in &candidates {
            let keys: Vec<GroupKey> = (first..first + hits.len())
                .map(|i| group_by::key_of(schema, g.field, &rows, i))
                .collect();
            let exhausted = hits.len() < vq.k;
            let grouped = group_by::group(g, hits, &keys, groups_wanted, exhausted);
            wants_more |= grouped.wants_more;
            per_query.push((first, grouped.hits, keys));
            first += hits.len();
        }
        if wants_more && vq.k < cap {
            vq.k = (vq.k * 4).min(cap);
            continue;
        }
        let mut out_rows = Batch::empty(schema);
        let mut out = Vec::with_capacity(per_query.len());
        for ((first, picked, keys), hits) in per_query.into_iter().zip(&candidates) {
            // Skip whole groups: a group's hits are contiguous, so a new key starts
            // the next group.
            let (mut group_no, mut prev) = (0, None);
            let mut kept = Vec::new();
            for i in picked {
                if prev != Some(&keys[i]) {
                    group_no += 1;
                    prev = Some(&keys[i]);
                }
                if group_no > offset {
                    out_rows.push_row(&rows, first + i);
                    kept.push(hits[i].clone());
                }
            }
            out.push(kept);
        }
        return Ok((out, Some(out_rows)));
    }
}
