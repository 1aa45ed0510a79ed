//! Reading request parameters: key-value lists, template values, search parameters.

use std::collections::{BTreeMap, HashMap};

use quiver_core::expr::Value;

use crate::error::{ApiError, ApiResult};
use crate::pb::common::KeyValuePair;
use crate::pb::schema::{template_array_value, template_value, TemplateArrayValue, TemplateValue};

/// Milvus's limit on topk (and on topk + offset).
pub const MAX_TOPK: usize = 16_384;

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

fn value_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Str(s) => serde_json::Value::String(s.clone()),
        Value::Array(a) => serde_json::Value::Array(a.iter().map(value_to_json).collect()),
        Value::Json(j) => j.clone(),
    }
}

/// Template values as JSON text, for the internal wire (ints stay ints, floats floats).
pub fn params_to_json(params: &BTreeMap<String, Value>) -> String {
    let m: serde_json::Map<String, serde_json::Value> = params
        .iter()
        .map(|(k, v)| (k.clone(), value_to_json(v)))
        .collect();
    serde_json::Value::Object(m).to_string()
}

/// The inverse of [`params_to_json`]; empty text means no parameters.
pub fn params_from_json(text: &str) -> ApiResult<BTreeMap<String, Value>> {
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(m)) => Ok(m
            .iter()
            .map(|(k, v)| (k.clone(), Value::from_json(v)))
            .collect()),
        _ => Err(ApiError::invalid(
            "template parameters are not a JSON object",
        )),
    }
}

#[cfg(test)]
mod tests;
