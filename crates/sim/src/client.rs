//! Builders for the Milvus API requests a simulated client sends to a proxy. (In
//! simulation the workload calls the proxy's `MilvusService` methods directly; the
//! public API's wire encoding is covered by the pymilvus tests in real mode.)

use prost::Message;
use quiver_nodes::pb::common::{KeyValuePair, PlaceholderGroup, PlaceholderValue};
use quiver_nodes::pb::milvus::{
    search_request::SearchInput, CreateCollectionRequest, CreateIndexRequest, FlushRequest,
    InsertRequest, LoadCollectionRequest, QueryRequest, SearchRequest, UpsertRequest,
};
use quiver_nodes::pb::schema::{
    self as ps, field_data::Field, scalar_field::Data as Sd, vector_field::Data as Vd,
    CollectionSchema, FieldData, FieldSchema,
};

/// Consistency level Strong on the wire.
pub const STRONG: i32 = 0;

fn kv(k: &str, v: &str) -> KeyValuePair {
    KeyValuePair {
        key: k.into(),
        value: v.into(),
    }
}

/// A collection with an Int64 primary key `id` and a float vector `v`.
pub fn create_collection(name: &str, dim: u32, shards: i32) -> CreateCollectionRequest {
    let schema = CollectionSchema {
        name: name.into(),
        fields: vec![
            FieldSchema {
                name: "id".into(),
                is_primary_key: true,
                data_type: 5,
                ..Default::default()
            },
            FieldSchema {
                name: "v".into(),
                data_type: 101,
                type_params: vec![kv("dim", &dim.to_string())],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    CreateCollectionRequest {
        collection_name: name.into(),
        schema: schema.encode_to_vec(),
        shards_num: shards,
        consistency_level: STRONG,
        ..Default::default()
    }
}

pub fn create_flat_index(name: &str, metric: &str) -> CreateIndexRequest {
    CreateIndexRequest {
        collection_name: name.into(),
        field_name: "v".into(),
        extra_params: vec![kv("index_type", "FLAT"), kv("metric_type", metric)],
        ..Default::default()
    }
}

pub fn load(name: &str) -> LoadCollectionRequest {
    LoadCollectionRequest {
        collection_name: name.into(),
        ..Default::default()
    }
}

pub fn flush(name: &str) -> FlushRequest {
    FlushRequest {
        collection_names: vec![name.into()],
        ..Default::default()
    }
}

/// The deterministic vector of key `id`.
pub fn vector(id: i64, dim: u32) -> Vec<f32> {
    (0..dim as i64)
        .map(|i| ((id * 31 + i * 7) % 101) as f32 + (id as f32) * 1e-3)
        .collect()
}

fn rows(ids: &[i64], dim: u32) -> Vec<FieldData> {
    vec![
        FieldData {
            r#type: 5,
            field_name: "id".into(),
            field: Some(Field::Scalars(ps::ScalarField {
                data: Some(Sd::LongData(ps::LongArray { data: ids.to_vec() })),
            })),
            ..Default::default()
        },
        FieldData {
            r#type: 101,
            field_name: "v".into(),
            field: Some(Field::Vectors(ps::VectorField {
                dim: dim as i64,
                data: Some(Vd::FloatVector(ps::FloatArray {
                    data: ids.iter().flat_map(|&i| vector(i, dim)).collect(),
                })),
            })),
            ..Default::default()
        },
    ]
}

pub fn insert(name: &str, ids: &[i64], dim: u32) -> InsertRequest {
    InsertRequest {
        collection_name: name.into(),
        fields_data: rows(ids, dim),
        num_rows: ids.len() as u32,
        ..Default::default()
    }
}

pub fn upsert(name: &str, ids: &[i64], dim: u32) -> UpsertRequest {
    UpsertRequest {
        collection_name: name.into(),
        fields_data: rows(ids, dim),
        num_rows: ids.len() as u32,
        ..Default::default()
    }
}

/// Deletes keys by a `id in [...]` expression, as pymilvus does.
pub fn delete_ids(name: &str, ids: &[i64]) -> quiver_nodes::pb::milvus::DeleteRequest {
    let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    quiver_nodes::pb::milvus::DeleteRequest {
        collection_name: name.into(),
        expr: format!("id in [{}]", list.join(",")),
        ..Default::default()
    }
}

/// Top-`k` of each query vector, Strong consistency.
pub fn search(name: &str, queries: &[Vec<f32>], k: usize) -> SearchRequest {
    let group = PlaceholderGroup {
        placeholders: vec![PlaceholderValue {
            tag: "$0".into(),
            r#type: 101,
            values: queries
                .iter()
                .map(|q| q.iter().flat_map(|x| x.to_le_bytes()).collect())
                .collect(),
            ..Default::default()
        }],
    };
    SearchRequest {
        collection_name: name.into(),
        search_input: Some(SearchInput::PlaceholderGroup(group.encode_to_vec())),
        dsl_type: 1,
        search_params: vec![kv("topk", &k.to_string()), kv("params", "{}")],
        nq: queries.len() as i64,
        consistency_level: STRONG,
        ..Default::default()
    }
}

/// `count(*)` of the whole collection, Strong consistency.
pub fn count(name: &str) -> QueryRequest {
    QueryRequest {
        collection_name: name.into(),
        output_fields: vec!["count(*)".into()],
        consistency_level: STRONG,
        ..Default::default()
    }
}

/// The Int64 ids of a search or query answer.
pub fn int_ids(ids: &Option<ps::IDs>) -> Vec<i64> {
    match ids.as_ref().and_then(|i| i.id_field.as_ref()) {
        Some(ps::i_ds::IdField::IntId(l)) => l.data.clone(),
        _ => Vec::new(),
    }
}

/// The single Int64 of a `count(*)` answer.
pub fn count_of(fields: &[FieldData]) -> Option<i64> {
    match fields.first()?.field.as_ref()? {
        Field::Scalars(ps::ScalarField {
            data: Some(Sd::LongData(l)),
        }) => l.data.first().copied(),
        _ => None,
    }
}

/// The wire value of a consistency level.
pub fn level_code(level: crate::model::Level) -> i32 {
    use crate::model::Level;
    match level {
        Level::Strong => 0,
        Level::Session => 1,
        Level::Bounded => 2,
        Level::Eventually => 3,
    }
}

/// Every key of the collection (`id >= 0`) at a consistency level; `session_ts` is the
/// client's last write timestamp (what pymilvus sends for Session).
pub fn scan(name: &str, level: crate::model::Level, session_ts: u64) -> QueryRequest {
    QueryRequest {
        collection_name: name.into(),
        expr: "id >= 0".into(),
        output_fields: vec!["id".into()],
        consistency_level: level_code(level),
        guarantee_timestamp: session_ts,
        ..Default::default()
    }
}

/// Top-`k` of one query vector at a consistency level.
pub fn search_at(
    name: &str,
    query: &[f32],
    k: usize,
    level: crate::model::Level,
    session_ts: u64,
) -> SearchRequest {
    SearchRequest {
        consistency_level: level_code(level),
        guarantee_timestamp: session_ts,
        ..search(name, &[query.to_vec()], k)
    }
}

/// The Int64 values of the `id` column of a query answer.
pub fn id_column(fields: &[FieldData]) -> Vec<i64> {
    fields
        .iter()
        .find(|f| f.field_name == "id")
        .and_then(|f| match f.field.as_ref()? {
            Field::Scalars(ps::ScalarField {
                data: Some(Sd::LongData(l)),
            }) => Some(l.data.clone()),
            _ => None,
        })
        .unwrap_or_default()
}
