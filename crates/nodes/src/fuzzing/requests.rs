//! The Milvus requests whose payloads the proxy decodes itself, beyond what gRPC's
//! own decoding checks: a collection schema (sent as protobuf bytes inside
//! CreateCollection), an insert's columns, and a search's placeholder group of query
//! vectors. Each must come back as a value or a Milvus status, never a panic.

use prost::Message;

use crate::pb::milvus::{InsertRequest, SearchRequest};
use crate::pb::schema as ps;
use crate::proxy::{batch_from_fields, decode_queries, schema_from_proto, schema_to_proto};

use super::fuzz_schema;

/// The first byte picks the request; the rest is its protobuf encoding.
pub fn milvus_request(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 3 {
        0 => schema(rest),
        1 => insert(rest),
        _ => search(rest),
    }
}

/// A schema that validates survives the way back to the wire and in again.
fn schema(bytes: &[u8]) {
    let Ok(p) = ps::CollectionSchema::decode(bytes) else {
        return;
    };
    if let Ok(s) = schema_from_proto(&p, &p.name) {
        let again = schema_from_proto(&schema_to_proto(&s), &s.name);
        assert_eq!(again.ok(), Some(s));
    }
}

/// Columns against a fixed schema (id, tag, v of dim 4); a batch that validates has
/// exactly the rows the request announced.
fn insert(bytes: &[u8]) {
    let Ok(r) = InsertRequest::decode(bytes) else {
        return;
    };
    let rows = r.num_rows as usize;
    let schema = fuzz_schema();
    if let Ok(b) = batch_from_fields(
        &schema,
        r.fields_data,
        rows,
        |n| (0..n as i64).collect(),
        false,
    ) {
        assert_eq!(b.num_rows, rows);
        assert!(b.columns.iter().all(|c| c.data.len() == rows));
    }
}

/// Query vectors of dimension 4: what decodes is `nq` finite vectors of that size.
fn search(bytes: &[u8]) {
    let Ok(r) = SearchRequest::decode(bytes) else {
        return;
    };
    if let Ok(qs) = decode_queries(&r, 4) {
        assert!(!qs.is_empty());
        assert!(qs
            .iter()
            .all(|q| q.len() == 4 && q.iter().all(|x| x.is_finite())));
    }
}

/// Valid encodings of each request: the tests start from them (and a fuzzing corpus
/// can).
#[cfg(test)]
pub(crate) fn seeds() -> Vec<Vec<u8>> {
    use crate::pb::common::{PlaceholderGroup, PlaceholderValue};
    use crate::pb::milvus::search_request::SearchInput;
    use crate::pb::schema::field_data::Field;
    use crate::pb::schema::scalar_field::Data as Sd;
    use crate::pb::schema::vector_field::Data as Vd;

    let scalar = |name: &str, data: Sd| ps::FieldData {
        field_name: name.into(),
        field: Some(Field::Scalars(ps::ScalarField { data: Some(data) })),
        ..Default::default()
    };
    let insert = InsertRequest {
        num_rows: 2,
        fields_data: vec![
            scalar("id", Sd::LongData(ps::LongArray { data: vec![1, 2] })),
            scalar(
                "tag",
                Sd::StringData(ps::StringArray {
                    data: vec!["a".into(), "b".into()],
                }),
            ),
            ps::FieldData {
                field_name: "v".into(),
                field: Some(Field::Vectors(ps::VectorField {
                    dim: 4,
                    data: Some(Vd::FloatVector(ps::FloatArray { data: vec![0.5; 8] })),
                })),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let group = PlaceholderGroup {
        placeholders: vec![PlaceholderValue {
            tag: "$0".into(),
            r#type: 101,
            values: vec![[1f32, 2.0, 3.0, 4.0]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect()],
            ..Default::default()
        }],
    };
    let search = SearchRequest {
        search_input: Some(SearchInput::PlaceholderGroup(group.encode_to_vec())),
        nq: 1,
        ..Default::default()
    };
    let with = |sel: u8, body: Vec<u8>| [vec![sel], body].concat();
    vec![
        with(0, schema_to_proto(&fuzz_schema()).encode_to_vec()),
        with(1, insert.encode_to_vec()),
        with(2, search.encode_to_vec()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds are accepted, so the fuzzer starts from inputs that reach the checks.
    #[test]
    fn every_seed_decodes() {
        let s = seeds();
        let p = ps::CollectionSchema::decode(&s[0][1..]).unwrap();
        assert!(schema_from_proto(&p, &p.name).is_ok());
        let r = InsertRequest::decode(&s[1][1..]).unwrap();
        let b = batch_from_fields(&fuzz_schema(), r.fields_data, 2, |_| vec![], false);
        assert_eq!(b.unwrap().num_rows, 2);
        let q = decode_queries(&SearchRequest::decode(&s[2][1..]).unwrap(), 4).unwrap();
        assert_eq!(q, vec![vec![1.0, 2.0, 3.0, 4.0]]);
    }
}
