//! A search's parameters, parsed once at the proxy into types: the request-level ones
//! ([`SearchSpec`]: topk, offset, rounding, the vector field and metric) and the ones
//! every shard's index needs ([`SearchKnobs`]: `ef`, `nprobe`, `rerank`, `refine_k`,
//! `radius`, `range_filter`), which travel typed to the shards and the query nodes.

use std::collections::BTreeMap;

use quiver_core::schema::{DataType, FieldSchema};
use quiver_core::search::Metric;

use super::params::{kv_map, parse_usize, round_decimal, MAX_TOPK};
use crate::coordinator::CollectionInfo;
use crate::error::{code, ApiError, ApiResult};
use crate::pb::milvus::SearchRequest;
use crate::rpc::SearchKnobs;

/// The request-level parameters of one search.
pub(super) struct SearchSpec<'a> {
    /// Hits per query the client wants, after skipping `offset` of them.
    pub topk: usize,
    pub offset: usize,
    /// Decimal places to round scores to (0..=6), or -1 to leave them.
    pub round_decimal: i64,
    /// The vector field searched, its dimension, and the metric.
    pub field: &'a FieldSchema,
    pub dim: usize,
    pub metric: Metric,
    /// The search's key-values and its `params` JSON object, for what is parsed later
    /// (grouping, and the index parameters).
    pub kvs: BTreeMap<String, String>,
    pub inner: serde_json::Map<String, serde_json::Value>,
}

impl<'a> SearchSpec<'a> {
    /// Reads and checks the request-level parameters of `r` against the collection.
    pub fn parse(info: &'a CollectionInfo, r: &SearchRequest) -> ApiResult<SearchSpec<'a>> {
        let kvs = kv_map(&r.search_params);
        let (topk, offset) = topk_and_offset(&kvs)?;
        let inner = inner_params(&kvs)?;
        let (field, metric) = field_and_metric(info, &kvs, &inner)?;
        let dim = match field.data_type {
            DataType::FloatVector { dim } => dim as usize,
            _ => unreachable!("field_and_metric returns a vector field"),
        };
        let round_decimal = round_decimal(&kvs)?;
        Ok(SearchSpec {
            topk,
            offset,
            round_decimal,
            field,
            dim,
            metric,
            kvs,
            inner,
        })
    }

    /// Candidates per query the shards are asked for.
    pub fn k(&self) -> usize {
        self.topk + self.offset
    }

    /// The index and range parameters, parsed and checked: a bad value is refused
    /// here, before any shard is asked.
    pub fn knobs(&self) -> ApiResult<SearchKnobs> {
        SearchKnobs::from_milvus(&self.index_pairs())
    }

    /// The index parameters as text pairs: every inner parameter but `metric_type`.
    fn index_pairs(&self) -> Vec<(String, String)> {
        self.inner
            .iter()
            .filter(|(key, _)| key.as_str() != "metric_type")
            .map(|(key, v)| {
                let text = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                (key.clone(), text)
            })
            .collect()
    }
}

fn topk_and_offset(kvs: &BTreeMap<String, String>) -> ApiResult<(usize, usize)> {
    let topk = parse_usize(kvs, "topk")?.ok_or_else(|| {
        ApiError::new(
            code::MISSING_PARAMETER,
            "topk is missing from search params",
        )
    })?;
    let offset = parse_usize(kvs, "offset")?.unwrap_or(0);
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
    Ok((topk, offset))
}

/// The `params` JSON object of a search's key-values (empty when absent).
fn inner_params(
    kvs: &BTreeMap<String, String>,
) -> ApiResult<serde_json::Map<String, serde_json::Value>> {
    Ok(match kvs.get("params") {
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

/// The metric a search request uses (see [`field_and_metric`]).
pub(super) fn metric_of(info: &CollectionInfo, r: &SearchRequest) -> ApiResult<Metric> {
    let kvs = kv_map(&r.search_params);
    let inner = inner_params(&kvs)?;
    Ok(field_and_metric(info, &kvs, &inner)?.1)
}

/// The vector field a search names (or the only one) and the metric it uses: the
/// client's, which must match the field's index, or the index's.
fn field_and_metric<'a>(
    info: &'a CollectionInfo,
    kvs: &BTreeMap<String, String>,
    inner: &serde_json::Map<String, serde_json::Value>,
) -> ApiResult<(&'a FieldSchema, Metric)> {
    let field = vector_field(info, kvs)?;
    let asked = kvs
        .get("metric_type")
        .cloned()
        .or_else(|| {
            inner
                .get("metric_type")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .filter(|m| !m.is_empty());
    let metric = match (asked, info.index_on(&field.name)) {
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

/// The vector field a search names in `anns_field`, or the collection's only one.
fn vector_field<'a>(
    info: &'a CollectionInfo,
    kvs: &BTreeMap<String, String>,
) -> ApiResult<&'a FieldSchema> {
    let schema = &info.schema;
    if let Some(name) = kvs.get("anns_field").filter(|s| !s.is_empty()) {
        return schema
            .field(name)
            .filter(|f| f.data_type.is_vector())
            .ok_or_else(|| {
                ApiError::new(
                    code::FIELD_NOT_FOUND,
                    format!("failed to get field schema: vector field {name} not found"),
                )
            });
    }
    let mut vs = schema.vector_fields();
    let first = vs
        .next()
        .ok_or_else(|| ApiError::invalid("collection has no vector field"))?;
    if vs.next().is_some() {
        return Err(ApiError::invalid(
            "multiple anns_fields exist, please specify a anns_field in search_params",
        ));
    }
    Ok(first)
}

#[cfg(test)]
mod tests;
