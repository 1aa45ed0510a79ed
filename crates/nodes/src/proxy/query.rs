//! Query: the rows matching a filter (ordered by primary key, `offset` and `limit`
//! applied over every shard's rows), or their number (`count(*)`).

use quiver_core::tso::Timestamp;

use super::context::{ok, Ctx};
use super::fanout::{self, RowRef};
use super::output::{columns_of, resolve_output};
use super::params::{kv_map, parse_usize, MAX_TOPK};
use super::read_scope::Consistency;
use super::shards::Shards;
use super::Proxy;
use crate::error::{ApiError, ApiResult};
use crate::pb::milvus::{QueryRequest, QueryResults};
use crate::pb::schema::{self as ps, field_data::Field as FdField};
use crate::rpc::WireScope;

impl Proxy {
    pub(super) async fn do_query(&self, ctx: &Ctx, r: QueryRequest) -> ApiResult<QueryResults> {
        let c = Consistency {
            level: r.consistency_level,
            use_default: r.use_default_consistency,
            client_ts: r.guarantee_timestamp,
        };
        let (info, gts) = self.read_target(&ctx.db, &r.collection_name, c).await?;
        query(&self.shards(&info).until(ctx.deadline), r, gts).await
    }
}

/// `limit` and `offset` of a query's parameters.
fn limit_and_offset(r: &QueryRequest) -> ApiResult<(Option<usize>, usize)> {
    let params = kv_map(&r.query_params);
    let limit = parse_usize(&params, "limit")?;
    let offset = parse_usize(&params, "offset")?.unwrap_or(0);
    // Milvus's checks: the limit itself, then the window it reaches.
    if let Some(l) = limit {
        if l == 0 || l > MAX_TOPK {
            return Err(ApiError::invalid(format!(
                "limit [{l}] is invalid, it should be in range [1, {MAX_TOPK}], but got {l}"
            )));
        }
    }
    let window = limit.unwrap_or(0).saturating_add(offset);
    if offset > 0 && window > MAX_TOPK {
        return Err(ApiError::invalid(format!(
            "invalid max query result window, (offset+limit) should be in range [1, {MAX_TOPK}], but got {window}"
        )));
    }
    Ok((limit, offset))
}

/// Queries the collection of `shards` at the guarantee `now`.
async fn query(shards: &Shards<'_>, r: QueryRequest, now: Timestamp) -> ApiResult<QueryResults> {
    let info = shards.info;
    let schema = &info.schema;
    let (limit, offset) = limit_and_offset(&r)?;
    let requested = if r.output_fields.is_empty() {
        vec![schema.primary_field().name.clone()]
    } else {
        r.output_fields.clone()
    };
    let out = resolve_output(schema, &requested, true)?;
    let (pred, _) = Proxy::compile(schema, &r.expr, r.expr_template_values)?;
    if pred.matches_all() && limit.is_none() && !out.count {
        return Err(ApiError::invalid(
            "empty expression should be used with limit",
        ));
    }
    let parts = Proxy::read_partitions(info, &r.partition_names)?;
    let scope = Proxy::scope(now, parts, pred);
    let base = QueryResults {
        collection_name: info.name().to_string(),
        primary_field_name: schema.primary_field().name.clone(),
        output_fields: out.echo.clone(),
        session_ts: now.0,
        ..Default::default()
    };
    if out.count {
        let n = fanout::count(shards, &scope).await?;
        return ok(count_results(n, base));
    }
    let rows = page(shards, &scope, limit, offset).await?;
    let batch = fanout::fetch_rows(schema, shards, &rows).await?;
    ok(QueryResults {
        fields_data: columns_of(schema, &batch, &out.fields),
        ..base
    })
}

/// The rows of one page, ordered by primary key over every shard.
async fn page(
    shards: &Shards<'_>,
    scope: &WireScope,
    limit: Option<usize>,
    offset: usize,
) -> ApiResult<Vec<RowRef>> {
    // Each shard's first `limit + offset` rows hold the page's.
    let cap = limit.map(|l| l + offset);
    let mut rows = fanout::query_rows(shards, scope, cap).await?;
    rows.sort();
    Ok(rows
        .into_iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .map(|(_, at)| at)
        .collect())
}

/// The answer to `count(*)`: `n` rows.
fn count_results(n: usize, base: QueryResults) -> QueryResults {
    QueryResults {
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
    }
}

#[cfg(test)]
mod tests;
