//! Reading request parameters: key-value lists, template values, search parameters.

use std::collections::{BTreeMap, HashMap};

use quiver_core::expr::Value;

use crate::error::{ApiError, ApiResult};
use crate::pb::common::KeyValuePair;
use crate::pb::schema::{template_array_value, template_value, TemplateArrayValue, TemplateValue};

/// Milvus's limit on topk (and on topk + offset), and on a query's limit + offset
/// (`quotaAndLimits.limits.topK`, `maxQueryResultWindow`).
pub const MAX_TOPK: usize = 16_384;

/// Milvus's limit on the query vectors of one search (`quotaAndLimits.limits.nq`).
pub const MAX_NQ: usize = 16_384;

/// Refuses a search of `nq` query vectors outside Milvus's range.
pub fn check_nq(nq: usize) -> ApiResult<()> {
    if nq == 0 || nq > MAX_NQ {
        return Err(ApiError::invalid(format!(
            "nq (number of search vector per search request) should be in range [1, {MAX_NQ}], but got {nq}"
        )));
    }
    Ok(())
}

/// The `round_decimal` of search parameters: -1 (absent: leave scores as they are)
/// or 0..=6 places; anything else is refused, as Milvus does.
pub fn round_decimal(map: &BTreeMap<String, String>) -> ApiResult<i64> {
    let Some(v) = map.get("round_decimal") else {
        return Ok(-1);
    };
    match v.trim().parse::<i64>() {
        Ok(r) if r == -1 || (0..=6).contains(&r) => Ok(r),
        _ => Err(ApiError::invalid(format!(
            "round_decimal [{v}] is invalid, should be -1 or an integer in range [0, 6]"
        ))),
    }
}

pub fn kv_map(kvs: &[KeyValuePair]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect()
}

pub fn parse_usize(map: &BTreeMap<String, String>, key: &str) -> ApiResult<Option<usize>> {
    match map.get(key) {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "{key} [{v}] is invalid: expected a non-negative integer"
                ))
            }),
    }
}

fn array_value(a: TemplateArrayValue) -> Value {
    use template_array_value::Data;
    match a.data {
        Some(Data::BoolData(v)) => Value::Array(v.data.into_iter().map(Value::Bool).collect()),
        Some(Data::LongData(v)) => Value::Array(v.data.into_iter().map(Value::Int).collect()),
        Some(Data::DoubleData(v)) => Value::Array(v.data.into_iter().map(Value::Float).collect()),
        Some(Data::StringData(v)) => Value::Array(v.data.into_iter().map(Value::Str).collect()),
        Some(Data::ArrayData(v)) => Value::Array(v.data.into_iter().map(array_value).collect()),
        Some(Data::JsonData(v)) => Value::Array(
            v.data
                .into_iter()
                .map(|b| {
                    serde_json::from_slice(&b)
                        .map(Value::Json)
                        .unwrap_or(Value::Null)
                })
                .collect(),
        ),
        None => Value::Array(Vec::new()),
    }
}

/// Template values (`{name}` in filters) as expression values.
pub fn template_params(
    values: HashMap<String, TemplateValue>,
) -> ApiResult<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for (k, v) in values {
        let val = match v.val {
            Some(template_value::Val::BoolVal(b)) => Value::Bool(b),
            Some(template_value::Val::Int64Val(i)) => Value::Int(i),
            Some(template_value::Val::FloatVal(f)) => Value::Float(f),
            Some(template_value::Val::StringVal(s)) => Value::Str(s),
            Some(template_value::Val::ArrayVal(a)) => array_value(a),
            Some(template_value::Val::BytesVal(_)) | None => {
                return Err(ApiError::invalid(format!(
                    "template value {k:?} has an unsupported type"
                )))
            }
        };
        out.insert(k, val);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
