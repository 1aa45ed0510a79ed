//! Hybrid search: several vector searches over one collection (usually on different
//! vector fields), fused per query by a ranker — reciprocal rank fusion (RRF) or a
//! weighted sum of normalized scores — as Milvus's `HybridSearch` does. The
//! sub-searches run several at once.

use std::collections::{BTreeMap, HashMap};

use quiver_core::batch::Pk;
use quiver_core::search::Metric;
use quiver_core::tso::Timestamp;

use futures::{StreamExt, TryStreamExt};

use super::by_pk::rows_by_pk;
use super::context::{ok, Ctx};
use super::output::{columns_of, resolve_search_output};
use super::params::{kv_map, parse_usize, MAX_TOPK};
use super::read_scope::Consistency;
use super::search;
use super::search_params::metric_of;
use super::shards::Shards;
use super::Proxy;
use crate::error::{code, ApiError, ApiResult};
use crate::pb::milvus::{HybridSearchRequest, SearchRequest, SearchResults};
use crate::pb::schema as ps;

/// Most sub-searches one hybrid search may combine (Milvus's limit).
pub const MAX_SUB_SEARCHES: usize = 1024;

/// How sub-search results are fused.
#[derive(Debug, Clone, PartialEq)]
pub enum Ranker {
    /// `sum(1 / (k + rank))`, ranks from 1.
    Rrf { k: f64 },
    /// `sum(w_i * score_i)`, scores normalized to [0, 1] per metric when `norm`.
    Weighted { weights: Vec<f64>, norm: bool },
}

impl Ranker {
    /// Reads `strategy` and `params` from the rank parameters (RRF with k = 60 when
    /// none is given, as in Milvus).
    pub fn parse(rank: &BTreeMap<String, String>, subs: usize) -> ApiResult<Ranker> {
        let params: serde_json::Map<String, serde_json::Value> = match rank.get("params") {
            Some(p) if !p.trim().is_empty() => match serde_json::from_str(p) {
                Ok(serde_json::Value::Object(m)) => m,
                _ => {
                    return Err(ApiError::invalid(format!(
                        "rank params {p:?} are not a JSON object"
                    )))
                }
            },
            _ => serde_json::Map::new(),
        };
        let strategy = rank.get("strategy").map(|s| s.trim().to_ascii_lowercase());
        match strategy.as_deref().unwrap_or("rrf") {
            "rrf" => {
                let k = match params.get("k") {
                    None => 60.0,
                    Some(v) => v
                        .as_f64()
                        .ok_or_else(|| ApiError::invalid(format!("RRF k {v} is not a number")))?,
                };
                if !(k > 0.0 && k < 16384.0) {
                    return Err(ApiError::invalid(format!(
                        "RRF k [{k}] is invalid, it should be in range (0, 16384)"
                    )));
                }
                Ok(Ranker::Rrf { k })
            }
            "weighted" => {
                let weights: Vec<f64> = params
                    .get("weights")
                    .and_then(|w| w.as_array())
                    .ok_or_else(|| ApiError::invalid("the weighted ranker needs a weights list"))?
                    .iter()
                    .map(|w| {
                        w.as_f64()
                            .filter(|w| (0.0..=1.0).contains(w))
                            .ok_or_else(|| {
                                ApiError::invalid(format!("rank weight {w} is not in [0, 1]"))
                            })
                    })
                    .collect::<ApiResult<_>>()?;
                if weights.len() != subs {
                    return Err(ApiError::invalid(format!(
                        "the weighted ranker has {} weights for {subs} search requests",
                        weights.len()
                    )));
                }
                let norm = params
                    .get("norm_score")
                    .map(|v| v.as_bool().unwrap_or(true))
                    .unwrap_or(true);
                Ok(Ranker::Weighted { weights, norm })
            }
            other => Err(ApiError::invalid(format!(
                "rank strategy {other:?} is not supported (rrf, weighted)"
            ))),
        }
    }
}

/// A score mapped to [0, 1], larger better, as Milvus normalizes for weighted fusion.
fn normalize(metric: Metric, score: f32) -> f64 {
    let s = f64::from(score);
    match metric {
        Metric::L2 => 1.0 - 2.0 * s.atan() / std::f64::consts::PI,
        Metric::IP => 0.5 + s.atan() / std::f64::consts::PI,
        Metric::Cosine => (1.0 + s) / 2.0,
    }
}

/// One sub-search's answer for one query: `(pk, score)` best first.
type Ranked = Vec<(Pk, f32)>;

/// Fuses one query's sub-search answers; best first, ties by primary key.
pub fn fuse(ranker: &Ranker, answers: &[(Metric, &Ranked)]) -> Vec<(Pk, f32)> {
    let mut total: HashMap<&Pk, f64> = HashMap::new();
    for (i, (metric, ranked)) in answers.iter().enumerate() {
        for (rank, (pk, score)) in ranked.iter().enumerate() {
            let add = match ranker {
                Ranker::Rrf { k } => 1.0 / (k + rank as f64 + 1.0),
                Ranker::Weighted { weights, norm } => {
                    let s = if *norm {
                        normalize(*metric, *score)
                    } else {
                        f64::from(*score)
                    };
                    weights[i] * s
                }
            };
            *total.entry(pk).or_insert(0.0) += add;
        }
    }
    let mut out: Vec<(Pk, f32)> = total
        .into_iter()
        .map(|(pk, s)| (pk.clone(), s as f32))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

impl Proxy {
    pub(super) async fn do_hybrid_search(
        &self,
        ctx: &Ctx,
        r: HybridSearchRequest,
    ) -> ApiResult<SearchResults> {
        let c = Consistency {
            level: r.consistency_level,
            use_default: r.use_default_consistency,
            client_ts: r.guarantee_timestamp,
        };
        let (info, gts) = self.read_target(&ctx.db, &r.collection_name, c).await?;
        hybrid_search(&self.shards(&info).until(ctx.deadline), r, gts).await
    }
}

/// How a hybrid search's fused answer is cut: `limit` hits per query after skipping
/// `offset`, scores rounded to `round` places.
struct Cut {
    limit: usize,
    offset: usize,
    round: i64,
}

/// Checks the request as a whole and reads its ranker and cut.
fn parse_hybrid(r: &HybridSearchRequest) -> ApiResult<(Ranker, Cut)> {
    if r.requests.is_empty() {
        return Err(ApiError::new(
            code::MISSING_PARAMETER,
            "hybrid search needs at least one search request",
        ));
    }
    if r.requests.len() > MAX_SUB_SEARCHES {
        return Err(ApiError::invalid(format!(
            "{} search requests exceed the limit of {MAX_SUB_SEARCHES}",
            r.requests.len()
        )));
    }
    let rank = kv_map(&r.rank_params);
    if rank.contains_key("group_by_field") {
        return Err(ApiError::invalid(
            "grouping is not supported in hybrid search yet",
        ));
    }
    if !r.function_score.is_empty() {
        return Err(ApiError::invalid(
            "function rerankers are not supported; use RRFRanker or WeightedRanker",
        ));
    }
    let ranker = Ranker::parse(&rank, r.requests.len())?;
    let limit = parse_usize(&rank, "limit")?
        .ok_or_else(|| ApiError::new(code::MISSING_PARAMETER, "hybrid search needs a limit"))?;
    let offset = parse_usize(&rank, "offset")?.unwrap_or(0);
    if limit == 0 || limit + offset > MAX_TOPK {
        return Err(ApiError::invalid(format!(
            "limit [{limit}] + offset [{offset}] is invalid, it should be in range [1, {MAX_TOPK}]"
        )));
    }
    let round = super::params::round_decimal(&rank)?;
    Ok((
        ranker,
        Cut {
            limit,
            offset,
            round,
        },
    ))
}

/// Sub-searches in flight at once; each asks every shard at once too.
const SUB_SEARCHES_IN_FLIGHT: usize = 8;

/// Runs every sub-search, several at once, each as a search of its own without output
/// fields; the answers in request order, or the first failure in that order.
async fn sub_searches(
    shards: &Shards<'_>,
    r: &HybridSearchRequest,
    now: Timestamp,
) -> ApiResult<Vec<(Metric, Vec<Ranked>)>> {
    let info = shards.info;
    let run = |mut sub: SearchRequest| async move {
        if sub
            .search_params
            .iter()
            .any(|kv| kv.key == "group_by_field")
        {
            return Err(ApiError::invalid(
                "grouping is not supported in hybrid search yet",
            ));
        }
        sub.collection_name = r.collection_name.clone();
        sub.partition_names = r.partition_names.clone();
        sub.output_fields.clear();
        // The offset applies to the fused answer, not to each search (pymilvus puts it
        // in both places).
        sub.search_params.retain(|kv| kv.key != "offset");
        let metric = metric_of(info, &sub)?;
        let res = search::search(shards, sub, now).await?;
        Ok((metric, ranked_per_query(&res)?))
    };
    futures::stream::iter(r.requests.iter().cloned().map(run))
        .buffered(SUB_SEARCHES_IN_FLIGHT)
        .try_collect()
        .await
}

/// Runs every sub-search at the guarantee `now` and fuses their answers.
pub async fn hybrid_search(
    shards: &Shards<'_>,
    r: HybridSearchRequest,
    now: Timestamp,
) -> ApiResult<SearchResults> {
    let info = shards.info;
    let schema = &info.schema;
    let (ranker, cut) = parse_hybrid(&r)?;
    let answers = sub_searches(shards, &r, now).await?;
    let nq = answers[0].1.len();
    if answers.iter().any(|(_, a)| a.len() != nq) {
        return Err(ApiError::invalid(
            "every search request of a hybrid search must have the same number of queries",
        ));
    }
    let mut topks = Vec::with_capacity(nq);
    let mut scores = Vec::new();
    let mut pks = Vec::new();
    for q in 0..nq {
        let per: Vec<(Metric, &Ranked)> = answers.iter().map(|(m, a)| (*m, &a[q])).collect();
        let fused = fuse(&ranker, &per)
            .into_iter()
            .skip(cut.offset)
            .take(cut.limit);
        let before = pks.len();
        for (pk, s) in fused {
            scores.push(search::round_score(s, cut.round));
            pks.push(pk);
        }
        topks.push((pks.len() - before) as i64);
    }
    let out = resolve_search_output(schema, &r.output_fields)?;
    let fields_data = if out.fields.is_empty() {
        Vec::new()
    } else {
        let parts = Proxy::read_partitions(info, &r.partition_names)?;
        let batch = rows_by_pk(shards, &pks, now, &parts).await?;
        columns_of(schema, &batch, &out.fields)
    };
    ok(SearchResults {
        collection_name: info.name().to_string(),
        session_ts: now.0,
        results: Some(ps::SearchResultData {
            num_queries: nq as i64,
            top_k: cut.limit as i64,
            fields_data,
            scores,
            ids: Some(super::convert::ids(&pks, schema)),
            topks,
            output_fields: out.echo,
            primary_field_name: schema.primary_field().name.clone(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// A search answer split per query into `(pk, score)` lists.
fn ranked_per_query(res: &SearchResults) -> ApiResult<Vec<Ranked>> {
    use ps::i_ds::IdField;
    let data = res
        .results
        .as_ref()
        .ok_or_else(|| ApiError::internal("a sub-search returned no results"))?;
    let pks: Vec<Pk> = match data.ids.as_ref().and_then(|i| i.id_field.as_ref()) {
        Some(IdField::IntId(a)) => a.data.iter().map(|&v| Pk::Int(v)).collect(),
        Some(IdField::StrId(a)) => a.data.iter().cloned().map(Pk::Str).collect(),
        None => Vec::new(),
    };
    let mut out = Vec::with_capacity(data.topks.len());
    let mut at = 0usize;
    for &n in &data.topks {
        let end = at + n as usize;
        out.push(
            pks[at..end]
                .iter()
                .cloned()
                .zip(data.scores[at..end].iter().copied())
                .collect(),
        );
        at = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
