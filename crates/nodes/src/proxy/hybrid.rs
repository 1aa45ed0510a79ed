//! Hybrid search: several vector searches over one collection (usually on different
//! vector fields), fused per query by a ranker — reciprocal rank fusion (RRF) or a
//! weighted sum of normalized scores — as Milvus's `HybridSearch` does.

use std::collections::{BTreeMap, HashMap};

use quiver_core::batch::Pk;
use quiver_core::search::Metric;
use quiver_core::tso::Timestamp;

use super::params::{kv_map, parse_usize, MAX_TOPK};
use super::reads;
use super::shards::Shards;
use crate::error::{code, ApiError, ApiResult};
use crate::pb::milvus::{HybridSearchRequest, SearchResults};
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

/// Runs every sub-search at the guarantee `now` and fuses their answers.
pub async fn hybrid_search(
    shards: &Shards<'_>,
    r: HybridSearchRequest,
    now: Timestamp,
) -> ApiResult<SearchResults> {
    let info = shards.info;
    let schema = &info.schema;
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
    let round: i64 = rank
        .get("round_decimal")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1);
    // Each sub-search runs as a search of its own, without output fields.
    let mut answers: Vec<(Metric, Vec<Ranked>)> = Vec::with_capacity(r.requests.len());
    for mut sub in r.requests.clone() {
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
        let metric = reads::metric_of(info, &sub)?;
        let res = reads::search(shards, sub, now).await?;
        answers.push((metric, ranked_per_query(&res)?));
    }
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
        let fused: Vec<(Pk, f32)> = fuse(&ranker, &per)
            .into_iter()
            .skip(offset)
            .take(limit)
            .collect();
        topks.push(fused.len() as i64);
        for (pk, s) in fused {
            scores.push(reads::round_score(s, round));
            pks.push(pk);
        }
    }
    let out = reads::resolve_search_output(schema, &r.output_fields)?;
    let fields_data = if out.fields.is_empty() {
        Vec::new()
    } else {
        let parts = super::Proxy::read_partitions(info, &r.partition_names)?;
        let batch = reads::rows_by_pk(shards, &pks, now, &parts).await?;
        reads::columns_of(schema, &batch, &out.fields)
    };
    super::ok(SearchResults {
        collection_name: info.name().to_string(),
        session_ts: now.0,
        results: Some(ps::SearchResultData {
            num_queries: nq as i64,
            top_k: limit as i64,
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
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rrf_rewards_agreement_between_searches() {
        let r = Ranker::parse(&kv(&[]), 2).unwrap();
        assert_eq!(r, Ranker::Rrf { k: 60.0 });
        let a: Ranked = vec![(Pk::Int(1), 0.9), (Pk::Int(2), 0.8), (Pk::Int(3), 0.1)];
        let b: Ranked = vec![(Pk::Int(2), 5.0), (Pk::Int(4), 4.0)];
        let fused = fuse(&r, &[(Metric::IP, &a), (Metric::L2, &b)]);
        let order: Vec<i64> = fused
            .iter()
            .map(|(p, _)| match p {
                Pk::Int(v) => *v,
                _ => 0,
            })
            .collect();
        assert_eq!(order, vec![2, 1, 4, 3]);
        assert!((fused[0].1 - (1.0 / 62.0 + 1.0 / 61.0) as f32).abs() < 1e-7);
    }

    #[test]
    fn weighted_fusion_normalizes_each_metric() {
        let r = Ranker::parse(
            &kv(&[
                ("strategy", "weighted"),
                ("params", r#"{"weights":[1.0,0.5],"norm_score":true}"#),
            ]),
            2,
        )
        .unwrap();
        let a: Ranked = vec![(Pk::Int(1), 0.5)];
        let b: Ranked = vec![(Pk::Int(1), 0.0), (Pk::Int(2), 1.0)];
        let fused = fuse(&r, &[(Metric::Cosine, &a), (Metric::L2, &b)]);
        // 1: 1.0 * (1 + 0.5) / 2 + 0.5 * (1 - 0) = 1.25; 2: 0.5 * (1 - 2 atan(1) / pi) = 0.25.
        assert!((fused[0].1 - 1.25).abs() < 1e-6 && fused[0].0 == Pk::Int(1));
        assert!((fused[1].1 - 0.25).abs() < 1e-6);
    }

    #[test]
    fn bad_rankers_are_refused() {
        let bad = |pairs: &[(&str, &str)], n| Ranker::parse(&kv(pairs), n).unwrap_err().reason;
        assert!(bad(&[("strategy", "magic")], 1).contains("not supported"));
        assert!(bad(&[("strategy", "rrf"), ("params", r#"{"k":0}"#)], 1).contains("range"));
        assert!(bad(
            &[("strategy", "weighted"), ("params", r#"{"weights":[0.5]}"#)],
            2
        )
        .contains("1 weights"));
        assert!(bad(
            &[("strategy", "weighted"), ("params", r#"{"weights":[2]}"#)],
            1
        )
        .contains("[0, 1]"));
    }
}
