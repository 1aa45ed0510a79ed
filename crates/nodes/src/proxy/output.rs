//! What a read returns: which fields (output-field names resolved against the schema,
//! `*` expanded, dynamic keys taken from `$meta`) and those fields' columns.

use quiver_core::batch::Batch;
use quiver_core::schema::{CollectionSchema, FieldSchema};

use super::convert;
use crate::error::{code, ApiError, ApiResult};
use crate::pb::schema as ps;

/// What a read returns: the fields (in schema order), the names to echo, count mode.
pub(super) struct Output<'a> {
    pub fields: Vec<&'a FieldSchema>,
    pub echo: Vec<String>,
    pub count: bool,
}

/// A query's output fields (`with_pk`: the primary key too) or `count(*)`.
pub(super) fn resolve_output<'a>(
    schema: &'a CollectionSchema,
    requested: &[String],
    with_pk: bool,
) -> ApiResult<Output<'a>> {
    let mut want: Vec<&FieldSchema> = Vec::new();
    let mut count = false;
    let add = |f: &'a FieldSchema, want: &mut Vec<&'a FieldSchema>| {
        if !want.iter().any(|w| w.id == f.id) {
            want.push(f);
        }
    };
    for name in requested {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        if name == "*" {
            for f in &schema.fields {
                add(f, &mut want);
            }
        } else if name.eq_ignore_ascii_case("count(*)") {
            count = true;
        } else if let Some(f) = schema.field(name) {
            add(f, &mut want);
        } else if let Some(meta) = schema.dynamic_field() {
            // A dynamic key: the client picks it out of `$meta`.
            add(meta, &mut want);
        } else {
            return Err(ApiError::new(
                code::FIELD_NOT_FOUND,
                format!("field {name} not exist"),
            ));
        }
    }
    if count && !want.is_empty() {
        return Err(ApiError::invalid(
            "count(*) cannot be combined with other output fields",
        ));
    }
    if with_pk && !count {
        add(schema.primary_field(), &mut want);
    }
    want.sort_by_key(|f| f.id);
    Ok(Output {
        fields: want,
        echo: expand_star(schema, requested),
        count,
    })
}

/// A search's output fields (no primary key unless asked; no `count(*)`).
pub(super) fn resolve_search_output<'a>(
    schema: &'a CollectionSchema,
    requested: &[String],
) -> ApiResult<Output<'a>> {
    let out = resolve_output(schema, requested, false)?;
    if out.count {
        return Err(ApiError::invalid("count(*) is not a search output field"));
    }
    Ok(out)
}

/// The output-field names to echo: `*` becomes every field (and `$meta`, from which
/// pymilvus then takes the dynamic keys), as Milvus's proxy does.
fn expand_star(schema: &CollectionSchema, requested: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in requested {
        if name.trim() == "*" {
            for f in &schema.fields {
                if !out.contains(&f.name) {
                    out.push(f.name.clone());
                }
            }
        } else if !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

/// The columns of `fields` in `batch`, as wire FieldData.
pub(super) fn columns_of(
    schema: &CollectionSchema,
    batch: &Batch,
    fields: &[&FieldSchema],
) -> Vec<ps::FieldData> {
    fields
        .iter()
        .map(|f| {
            let pos = schema.position(f.id).expect("schema field");
            convert::field_data(f, &batch.columns[pos])
        })
        .collect()
}
