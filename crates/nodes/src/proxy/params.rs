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
