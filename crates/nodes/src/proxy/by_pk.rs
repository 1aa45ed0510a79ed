//! Reads by primary key: the rows a hybrid search returns, and the vectors of a
//! search by primary key.

use std::collections::{BTreeMap, HashMap};

use quiver_core::batch::{Batch, ColumnData, Pk};
use quiver_core::expr::Value;
use quiver_core::ids::PartitionId;
use quiver_core::schema::{DataType, FieldSchema};
use quiver_core::tso::Timestamp;

use super::fanout;
use super::params::MAX_TOPK;
use super::shards::Shards;
use super::Proxy;
use crate::error::{code, ApiError, ApiResult};
use crate::pb::schema as ps;

/// The rows with primary keys `pks`, in that order (repeats allowed), read at the
/// guarantee `now`; every key must name a visible row.
pub(super) async fn rows_by_pk(
    shards: &Shards<'_>,
    pks: &[Pk],
    now: Timestamp,
    parts: &[PartitionId],
) -> ApiResult<Batch> {
    let schema = &shards.info.schema;
    let pk_field = schema.primary_field();
    let values = pks
        .iter()
        .map(|p| match p {
            Pk::Int(v) => Value::Int(*v),
            Pk::Str(v) => Value::Str(v.clone()),
        })
        .collect();
    let templates = BTreeMap::from([("quiver_pks".to_string(), Value::Array(values))]);
    let filter = format!("{} in {{quiver_pks}}", pk_field.name);
    let pred = quiver_core::expr::compile(&filter, schema, &templates)
        .map_err(|e| ApiError::internal(format!("primary-key filter: {e}")))?;
    let scope = Proxy::scope(now, parts.to_vec(), pred);
    let (found, rows) = located_rows(shards, &scope).await?;
    let at: HashMap<&Pk, usize> = found.iter().enumerate().map(|(i, pk)| (pk, i)).collect();
    let mut out = Batch::empty(schema);
    for pk in pks {
        let i = at
            .get(pk)
            .ok_or_else(|| ApiError::invalid(format!("no row with {} = {pk}", pk_field.name)))?;
        out.push_row(&rows, *i);
    }
    quiver_core::invariant!(out.num_rows == pks.len(), "one row per key asked for");
    Ok(out)
}

/// How often the keys are located again when their rows moved (a handoff between
/// locating and fetching them) before the read gives up.
const MOVED_ATTEMPTS: usize = 3;

/// The keys in `scope` and their rows, in the same order. Rows located on one node
/// and handed to another before they were fetched are located again.
async fn located_rows(
    shards: &Shards<'_>,
    scope: &crate::rpc::WireScope,
) -> ApiResult<(Vec<Pk>, Batch)> {
    let schema = &shards.info.schema;
    for attempt in 1..=MOVED_ATTEMPTS {
        let (found, refs): (Vec<Pk>, Vec<fanout::RowRef>) = fanout::query_rows(shards, scope, None)
            .await?
            .into_iter()
            .unzip();
        let rows = fanout::fetch_rows(schema, shards, &refs).await?;
        if rows.num_rows == found.len() {
            return Ok((found, rows));
        }
        tracing::debug!(
            attempt,
            "rows moved while read by primary key; locating again"
        );
    }
    Err(ApiError::new(
        code::UNAVAILABLE,
        format!("rows kept moving while read by primary key ({MOVED_ATTEMPTS} attempts); retry"),
    ))
}

/// The vectors in `field` of the rows with primary keys `ids` (a search by primary
/// key), read at the search's own guarantee; each key must name a visible row.
pub(super) async fn vectors_of(
    shards: &Shards<'_>,
    field: &FieldSchema,
    ids: &ps::IDs,
    now: Timestamp,
    parts: &[PartitionId],
) -> ApiResult<Vec<Vec<f32>>> {
    let schema = &shards.info.schema;
    let pks = pks_of(ids, schema.primary_field())?;
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

/// The keys a search by primary key names: at least one, at most [`MAX_TOPK`], of the
/// primary key's type.
fn pks_of(ids: &ps::IDs, pk_field: &FieldSchema) -> ApiResult<Vec<Pk>> {
    use ps::i_ds::IdField;
    let pks: Vec<Pk> = match (&ids.id_field, &pk_field.data_type) {
        (Some(IdField::IntId(a)), DataType::Int64) => a.data.iter().map(|&v| Pk::Int(v)).collect(),
        (Some(IdField::StrId(a)), DataType::VarChar { .. }) => {
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
    Ok(pks)
}
