//! Search: one vector search fanned out to every shard at once, the per-shard answers
//! reduced to each query's top k, then the output fields fetched.

use prost::Message;
use quiver_core::batch::{Batch, Pk};
use quiver_core::search::{reduce, Hit};
use quiver_core::tso::Timestamp;

use super::by_pk::vectors_of;
use super::context::{ok, Ctx};
use super::fanout::{self, RowRef};
use super::group_by::{self, GroupBy};
use super::output::{columns_of, resolve_search_output, Output};
use super::params::check_nq;
use super::read_scope::Consistency;
use super::search_params::SearchSpec;
use super::shards::{Shards, VectorQuery};
use super::{convert, Proxy};
use crate::error::{code, ApiError, ApiResult};
use crate::pb::common::PlaceholderGroup;
use crate::pb::milvus::{search_request::SearchInput, SearchRequest, SearchResults};
use crate::pb::schema as ps;

impl Proxy {
    pub(super) async fn do_search(&self, ctx: &Ctx, r: SearchRequest) -> ApiResult<SearchResults> {
        let c = Consistency {
            level: r.consistency_level,
            use_default: r.use_default_consistency,
            client_ts: r.guarantee_timestamp,
        };
        let (info, gts) = self.read_target(&ctx.db, &r.collection_name, c).await?;
        search(&self.shards(&info).until(ctx.deadline), r, gts).await
    }
}

/// Searches the collection of `shards` at the guarantee `now`.
pub(super) async fn search(
    shards: &Shards<'_>,
    r: SearchRequest,
    now: Timestamp,
) -> ApiResult<SearchResults> {
    let info = shards.info;
    let schema = &info.schema;
    let spec = SearchSpec::parse(info, &r)?;
    let out = resolve_search_output(schema, &r.output_fields)?;
    let (pred, _) = Proxy::compile(schema, &r.dsl, r.expr_template_values.clone())?;
    let parts = Proxy::read_partitions(info, &r.partition_names)?;
    let queries = match &r.search_input {
        Some(SearchInput::Ids(ids)) => vectors_of(shards, spec.field, ids, now, &parts).await?,
        _ => decode_queries(&r, spec.dim)?,
    };
    check_nq(queries.len())?;
    let scope = Proxy::scope(now, parts, pred);
    let k = spec.k();
    let groups = GroupBy::parse(schema, &spec.kvs, &spec.inner, k)?;
    let mut vq = VectorQuery {
        field: spec.field.id,
        queries: &queries,
        k,
        metric: spec.metric,
        knobs: spec.knobs()?,
    };
    // Per query, the hits to return (after `offset`); for a grouped search also the
    // rows already fetched for them, in the same order.
    let (per_query, prefetched) = match &groups {
        None => (top_hits(shards, &vq, &scope, spec.offset).await?, None),
        Some(g) => {
            vq.k = g.first_candidates(k);
            group_by::grouped_search(shards, &mut vq, &scope, g, k, spec.offset).await?
        }
    };
    let found = Found::of(per_query, spec.round_decimal);
    let batch = match prefetched {
        Some(b) => Some(b),
        None if !out.fields.is_empty() => {
            Some(fanout::fetch_rows(schema, shards, &found.refs).await?)
        }
        None => None,
    };
    let group_by_field_value = match (&groups, &batch) {
        (Some(g), Some(b)) => columns_of(schema, b, &[g.field]).pop(),
        _ => None,
    };
    let mut data = found.into_results(shards, out, batch.as_ref(), spec.topk);
    data.num_queries = queries.len() as i64;
    data.group_by_field_value = group_by_field_value;
    ok(SearchResults {
        collection_name: info.name().to_string(),
        session_ts: now.0,
        results: Some(data),
        ..Default::default()
    })
}

/// Each query's best `vq.k` hits over every shard, less the first `offset`.
async fn top_hits(
    shards: &Shards<'_>,
    vq: &VectorQuery<'_>,
    scope: &crate::rpc::WireScope,
    offset: usize,
) -> ApiResult<Vec<Vec<Hit>>> {
    let per_shard = fanout::search(shards, vq, scope).await?;
    Ok((0..vq.queries.len())
        .map(|q| {
            let all = reduce(per_shard.iter().map(|r| r[q].clone()).collect(), vq.k);
            all.into_iter().skip(offset).collect()
        })
        .collect())
}

/// The hits of every query, flattened as the wire wants them.
struct Found {
    topks: Vec<i64>,
    scores: Vec<f32>,
    pks: Vec<Pk>,
    refs: Vec<RowRef>,
}

impl Found {
    fn of(per_query: Vec<Vec<Hit>>, round_decimal: i64) -> Found {
        let mut f = Found {
            topks: Vec::new(),
            scores: Vec::new(),
            pks: Vec::new(),
            refs: Vec::new(),
        };
        for hits in per_query {
            f.topks.push(hits.len() as i64);
            for h in hits {
                f.scores.push(round_score(h.score, round_decimal));
                f.pks.push(h.pk.clone());
                // Segment ids encode their shard (see StreamingNode::shards).
                f.refs
                    .push(((h.segment.0 >> 40) as usize, h.segment, h.row));
            }
        }
        f
    }

    /// The result data: the hits, and the output fields from `batch` (their rows).
    fn into_results(
        self,
        shards: &Shards<'_>,
        out: Output<'_>,
        batch: Option<&Batch>,
        topk: usize,
    ) -> ps::SearchResultData {
        let schema = &shards.info.schema;
        let fields_data = match batch {
            Some(b) if !out.fields.is_empty() => columns_of(schema, b, &out.fields),
            _ => Vec::new(),
        };
        ps::SearchResultData {
            top_k: topk as i64,
            fields_data,
            scores: self.scores,
            ids: Some(convert::ids(&self.pks, schema)),
            topks: self.topks,
            output_fields: out.echo,
            primary_field_name: schema.primary_field().name.clone(),
            ..Default::default()
        }
    }
}

/// The query vectors of a search's placeholder group, each of dimension `dim`.
pub(crate) fn decode_queries(r: &SearchRequest, dim: usize) -> ApiResult<Vec<Vec<f32>>> {
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
    // Before decoding: a hostile nq must not cost its decoding.
    check_nq(ph.values.len())?;
    ph.values.iter().map(|v| decode_vector(v, dim)).collect()
}

/// One little-endian float vector of dimension `dim`, every value finite.
fn decode_vector(v: &[u8], dim: usize) -> ApiResult<Vec<f32>> {
    if v.len() != dim * 4 {
        let got = if v.len().is_multiple_of(4) {
            format!("dim {}", v.len() / 4)
        } else {
            "not a whole number of float32 values".to_string()
        };
        return Err(ApiError::invalid(format!(
            "vector dimension mismatch, expected vector size(byte) {}, actual {} (dim {dim}, got {got})",
            dim * 4,
            v.len(),
        )));
    }
    let q: Vec<f32> = v
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if q.iter().any(|x| !x.is_finite()) {
        return Err(ApiError::invalid("query vector contains NaN or infinity"));
    }
    Ok(q)
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
