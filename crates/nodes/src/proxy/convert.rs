//! Conversions between the Milvus wire types and Quiver's data model.

use std::collections::HashMap;

use quiver_core::batch::{Batch, ColumnData, FieldColumn, Pk};
use quiver_core::schema::{CollectionSchema, DataType, FieldSchema, DYNAMIC_FIELD_NAME};

use crate::error::{code, ApiError, ApiResult};
use crate::pb::common::KeyValuePair;
use crate::pb::schema as ps;
use crate::pb::schema::field_data::Field as FdField;
use crate::pb::schema::scalar_field::Data as Sd;
use crate::pb::schema::vector_field::Data as Vd;

fn kv(k: &str, v: impl ToString) -> KeyValuePair {
    KeyValuePair {
        key: k.to_string(),
        value: v.to_string(),
    }
}

fn param<'a>(params: &'a [KeyValuePair], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
}

/// A wire schema to ours, validated.
pub fn schema_from_proto(p: &ps::CollectionSchema, name: &str) -> ApiResult<CollectionSchema> {
    let illegal = |m: String| ApiError::new(code::ILLEGAL_SCHEMA, m);
    let mut fields = Vec::new();
    for f in &p.fields {
        if f.is_dynamic || f.name == DYNAMIC_FIELD_NAME {
            continue;
        }
        let dt = match f.data_type {
            1 => DataType::Bool,
            2 => DataType::Int8,
            3 => DataType::Int16,
            4 => DataType::Int32,
            5 => DataType::Int64,
            10 => DataType::Float,
            11 => DataType::Double,
            21 => {
                let ml = param(&f.type_params, "max_length").ok_or_else(|| {
                    illegal(format!(
                        "type param(max_length) should be specified for the field({})",
                        f.name
                    ))
                })?;
                let max_length = ml.parse().map_err(|_| {
                    illegal(format!(
                        "field {}: max_length {ml:?} is not a number",
                        f.name
                    ))
                })?;
                DataType::VarChar { max_length }
            }
            23 => DataType::Json,
            101 => {
                let d = param(&f.type_params, "dim").ok_or_else(|| {
                    illegal(format!(
                        "dimension is not defined in field type params of field {}",
                        f.name
                    ))
                })?;
                let dim = d
                    .parse()
                    .map_err(|_| illegal(format!("field {}: dim {d:?} is not a number", f.name)))?;
                DataType::FloatVector { dim }
            }
            other => {
                return Err(illegal(format!(
                    "field {}: data type {other} is not supported by Quiver yet",
                    f.name
                )))
            }
        };
        let mut fs = FieldSchema::new(&f.name, dt);
        fs.description = f.description.clone();
        fs.is_primary_key = f.is_primary_key;
        fs.auto_id = f.auto_id || (f.is_primary_key && p.auto_id);
        fs.nullable = f.nullable;
        fields.push(fs);
    }
    let schema_name = if p.name.is_empty() { name } else { &p.name };
    if schema_name != name {
        return Err(ApiError::invalid(format!(
            "collection name {name:?} does not match the schema's name {schema_name:?}"
        )));
    }
    let mut s = CollectionSchema::new(name, fields, p.enable_dynamic_field)
        .map_err(|e| illegal(e.to_string()))?;
    s.description = p.description.clone();
    Ok(s)
}

/// Our schema to the wire, without `$meta` (as Milvus's DescribeCollection does).
pub fn schema_to_proto(s: &CollectionSchema) -> ps::CollectionSchema {
    ps::CollectionSchema {
        name: s.name.clone(),
        description: s.description.clone(),
        auto_id: s.primary_field().auto_id,
        enable_dynamic_field: s.enable_dynamic_field,
        fields: s
            .fields
            .iter()
            .filter(|f| !f.is_dynamic)
            .map(|f| {
                let mut type_params = Vec::new();
                match f.data_type {
                    DataType::VarChar { max_length } => {
                        type_params.push(kv("max_length", max_length))
                    }
                    DataType::FloatVector { dim } => type_params.push(kv("dim", dim)),
                    _ => {}
                }
                ps::FieldSchema {
                    field_id: f.id.0,
                    name: f.name.clone(),
                    is_primary_key: f.is_primary_key,
                    description: f.description.clone(),
                    data_type: f.data_type.milvus_code(),
                    type_params,
                    auto_id: f.auto_id,
                    nullable: f.nullable,
                    ..Default::default()
                }
            })
            .collect(),
        ..Default::default()
    }
}

fn wrong(field: &str, want: &DataType, got: &str) -> ApiError {
    ApiError::invalid(format!(
        "field {field:?} expects {} data, got {got}",
        want.name()
    ))
}

fn scalar_name(d: &Sd) -> &'static str {
    match d {
        Sd::BoolData(_) => "Bool",
        Sd::IntData(_) => "Int32",
        Sd::LongData(_) => "Int64",
        Sd::FloatData(_) => "Float",
        Sd::DoubleData(_) => "Double",
        Sd::StringData(_) => "VarChar",
        Sd::BytesData(_) => "Bytes",
        Sd::ArrayData(_) => "Array",
        Sd::JsonData(_) => "JSON",
        _ => "an unsupported type",
    }
}

/// Expands compacted nullable values (`data` holds only valid rows) to dense rows.
fn expand<T: Clone + Default>(vals: Vec<T>, valid: &[bool], field: &str) -> ApiResult<Vec<T>> {
    if valid.is_empty() {
        return Ok(vals);
    }
    let n_valid = valid.iter().filter(|v| **v).count();
    if vals.len() == valid.len() {
        // Some clients send dense data with placeholders.
        return Ok(vals);
    }
    if vals.len() != n_valid {
        return Err(ApiError::invalid(format!(
            "field {field:?}: {} values for {n_valid} non-null rows",
            vals.len()
        )));
    }
    let mut it = vals.into_iter();
    Ok(valid
        .iter()
        .map(|v| {
            if *v {
                it.next().unwrap_or_default()
            } else {
                T::default()
            }
        })
        .collect())
}

fn column_from_field_data(f: &FieldSchema, fd: ps::FieldData) -> ApiResult<FieldColumn> {
    let name = &f.name;
    let valid = fd.valid_data;
    let data = match (fd.field, &f.data_type) {
        (Some(FdField::Scalars(s)), dt) => {
            let Some(d) = s.data else {
                return Err(wrong(name, dt, "no data"));
            };
            scalar_column(name, d, dt, &valid)?
        }
        (Some(FdField::Vectors(v)), DataType::FloatVector { dim }) => match v.data {
            Some(Vd::FloatVector(fv)) => {
                // Compared as sent: a hostile dim (-1) must not wrap into a large one.
                if v.dim != i64::from(*dim) {
                    return Err(ApiError::invalid(format!(
                        "the dim ({}) of field data({name}) is not equal to schema dim ({dim})",
                        v.dim
                    )));
                }
                ColumnData::FloatVector {
                    dim: *dim,
                    data: fv.data,
                }
            }
            _ => return Err(wrong(name, &f.data_type, "a non-float vector")),
        },
        (Some(FdField::Vectors(_)), dt) => return Err(wrong(name, dt, "vectors")),
        (_, dt) => return Err(wrong(name, dt, "no data")),
    };
    Ok(FieldColumn {
        field_id: f.id,
        data,
        // Non-nullable fields were checked to have no nulls by batch validation
        // only if `valid` reaches it, so keep what the client sent for those too.
        valid: (!valid.is_empty()).then_some(valid),
    })
}

/// A scalar wire column as a column of type `dt`, null rows expanded by `valid`.
fn scalar_column(name: &str, d: Sd, dt: &DataType, valid: &[bool]) -> ApiResult<ColumnData> {
    Ok(match (d, dt) {
        (Sd::BoolData(v), DataType::Bool) => ColumnData::Bool(expand(v.data, valid, name)?),
        (Sd::IntData(v), DataType::Int8) => {
            ColumnData::Int8(narrow(expand(v.data, valid, name)?, name, "Int8")?)
        }
        (Sd::IntData(v), DataType::Int16) => {
            ColumnData::Int16(narrow(expand(v.data, valid, name)?, name, "Int16")?)
        }
        (Sd::IntData(v), DataType::Int32) => ColumnData::Int32(expand(v.data, valid, name)?),
        (Sd::LongData(v), DataType::Int64) => ColumnData::Int64(expand(v.data, valid, name)?),
        (Sd::FloatData(v), DataType::Float) => ColumnData::Float(expand(v.data, valid, name)?),
        (Sd::DoubleData(v), DataType::Double) => ColumnData::Double(expand(v.data, valid, name)?),
        (Sd::StringData(v), DataType::VarChar { .. }) => {
            ColumnData::VarChar(expand(v.data, valid, name)?)
        }
        (Sd::JsonData(v), DataType::Json) => {
            ColumnData::Json(json_texts(expand(v.data, valid, name)?, valid, name)?)
        }
        (d, dt) => return Err(wrong(name, dt, scalar_name(&d))),
    })
}

/// 32-bit wire integers as a narrower type `T` (named `ty`), each in range.
fn narrow<T: TryFrom<i32>>(vals: Vec<i32>, name: &str, ty: &str) -> ApiResult<Vec<T>> {
    vals.into_iter()
        .map(|x| {
            T::try_from(x)
                .map_err(|_| ApiError::invalid(format!("field {name:?}: {x} is out of {ty} range")))
        })
        .collect()
}

/// JSON rows as text; a null row (empty bytes, not valid) becomes `null`.
fn json_texts(rows: Vec<Vec<u8>>, valid: &[bool], name: &str) -> ApiResult<Vec<String>> {
    rows.into_iter()
        .enumerate()
        .map(|(i, b)| {
            if b.is_empty() && !valid.is_empty() && !valid[i] {
                return Ok("null".to_string());
            }
            String::from_utf8(b).map_err(|_| {
                ApiError::invalid(format!("field {name:?} row {i}: JSON is not UTF-8"))
            })
        })
        .collect()
}

/// The rows of an Insert/Upsert request as a batch in schema order. Generates
/// primary keys for auto-id collections from `next_ids`.
pub fn batch_from_fields(
    schema: &CollectionSchema,
    fields: Vec<ps::FieldData>,
    num_rows: usize,
    mut next_ids: impl FnMut(usize) -> Vec<i64>,
    allow_pk_with_auto_id: bool,
) -> ApiResult<Batch> {
    let mut by_name: HashMap<String, ps::FieldData> = HashMap::new();
    for fd in fields {
        let key = if fd.is_dynamic {
            DYNAMIC_FIELD_NAME.to_string()
        } else {
            fd.field_name.clone()
        };
        if schema.field(&key).is_none() {
            return Err(ApiError::new(
                code::FIELD_NOT_FOUND,
                format!(
                    "field {:?} does not exist in collection {}",
                    fd.field_name, schema.name
                ),
            ));
        }
        if by_name.insert(key, fd).is_some() {
            return Err(ApiError::invalid("a field appears twice in the request"));
        }
    }
    let mut columns = Vec::with_capacity(schema.fields.len());
    for f in &schema.fields {
        let col = match by_name.remove(&f.name) {
            Some(fd) if f.auto_id && !allow_pk_with_auto_id => {
                let _ = fd;
                return Err(ApiError::invalid(format!(
                    "field {:?} is an auto-id primary key; do not send it",
                    f.name
                )));
            }
            Some(fd) => column_from_field_data(f, fd)?,
            None if f.auto_id => FieldColumn::new(f.id, ColumnData::Int64(next_ids(num_rows))),
            None if f.is_dynamic => {
                FieldColumn::new(f.id, ColumnData::Json(vec!["{}".to_string(); num_rows]))
            }
            None if f.nullable => FieldColumn {
                field_id: f.id,
                data: match ColumnData::empty(&f.data_type) {
                    ColumnData::VarChar(_) => ColumnData::VarChar(vec![String::new(); num_rows]),
                    ColumnData::Json(_) => ColumnData::Json(vec!["null".into(); num_rows]),
                    ColumnData::Bool(_) => ColumnData::Bool(vec![false; num_rows]),
                    ColumnData::Int8(_) => ColumnData::Int8(vec![0; num_rows]),
                    ColumnData::Int16(_) => ColumnData::Int16(vec![0; num_rows]),
                    ColumnData::Int32(_) => ColumnData::Int32(vec![0; num_rows]),
                    ColumnData::Int64(_) => ColumnData::Int64(vec![0; num_rows]),
                    ColumnData::Float(_) => ColumnData::Float(vec![0.0; num_rows]),
                    ColumnData::Double(_) => ColumnData::Double(vec![0.0; num_rows]),
                    other => other,
                },
                valid: Some(vec![false; num_rows]),
            },
            None => {
                return Err(ApiError::new(
                    code::MISSING_PARAMETER,
                    format!("field {:?} is missing from the data", f.name),
                ))
            }
        };
        columns.push(col);
    }
    let batch = Batch { num_rows, columns };
    batch
        .validate(schema)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(batch)
}

/// One column of result rows as wire FieldData (nullable columns dense, with
/// `valid_data`).
pub fn field_data(f: &FieldSchema, col: &FieldColumn) -> ps::FieldData {
    // Results are dense: a null row keeps its placeholder value and `valid_data` says
    // it is null (pymilvus indexes `data[i]` by row). Only inserts arrive compacted.
    let valid = col.valid.clone().unwrap_or_default();
    let scalar = |d: Sd| Some(FdField::Scalars(ps::ScalarField { data: Some(d) }));
    let field = match &col.data {
        ColumnData::Bool(v) => scalar(Sd::BoolData(ps::BoolArray { data: v.clone() })),
        ColumnData::Int8(v) => scalar(Sd::IntData(ps::IntArray {
            data: v.iter().copied().map(i32::from).collect(),
        })),
        ColumnData::Int16(v) => scalar(Sd::IntData(ps::IntArray {
            data: v.iter().copied().map(i32::from).collect(),
        })),
        ColumnData::Int32(v) => scalar(Sd::IntData(ps::IntArray { data: v.clone() })),
        ColumnData::Int64(v) => scalar(Sd::LongData(ps::LongArray { data: v.clone() })),
        ColumnData::Float(v) => scalar(Sd::FloatData(ps::FloatArray { data: v.clone() })),
        ColumnData::Double(v) => scalar(Sd::DoubleData(ps::DoubleArray { data: v.clone() })),
        ColumnData::VarChar(v) => scalar(Sd::StringData(ps::StringArray { data: v.clone() })),
        ColumnData::Json(v) => scalar(Sd::JsonData(ps::JsonArray {
            data: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
        })),
        ColumnData::FloatVector { dim, data } => Some(FdField::Vectors(ps::VectorField {
            dim: *dim as i64,
            data: Some(Vd::FloatVector(ps::FloatArray { data: data.clone() })),
        })),
    };
    ps::FieldData {
        r#type: f.data_type.milvus_code(),
        field_name: f.name.clone(),
        field,
        field_id: f.id.0,
        is_dynamic: f.is_dynamic,
        valid_data: if f.nullable { valid } else { Vec::new() },
    }
}

/// Primary keys as wire IDs.
pub fn ids(pks: &[Pk], schema: &CollectionSchema) -> ps::IDs {
    use ps::i_ds::IdField;
    let field = match schema.primary_field().data_type {
        DataType::VarChar { .. } => IdField::StrId(ps::StringArray {
            data: pks
                .iter()
                .map(|p| match p {
                    Pk::Str(s) => s.clone(),
                    Pk::Int(i) => i.to_string(),
                })
                .collect(),
        }),
        _ => IdField::IntId(ps::LongArray {
            data: pks
                .iter()
                .map(|p| match p {
                    Pk::Int(i) => *i,
                    Pk::Str(_) => 0,
                })
                .collect(),
        }),
    };
    ps::IDs {
        id_field: Some(field),
    }
}
