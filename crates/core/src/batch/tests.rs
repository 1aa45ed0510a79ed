//! Validation and row selection of batches; `schema` and `batch` are fixtures other
//! modules' tests share.

use super::*;
use crate::schema::FieldSchema;

pub fn schema() -> CollectionSchema {
    CollectionSchema::new(
        "t",
        vec![
            FieldSchema::new("id", DataType::Int64).primary(false),
            FieldSchema::new("name", DataType::VarChar { max_length: 4 }).nullable(),
            FieldSchema::new("v", DataType::FloatVector { dim: 2 }),
        ],
        true,
    )
    .unwrap()
}

pub fn batch(ids: &[i64]) -> Batch {
    let n = ids.len();
    Batch {
        num_rows: n,
        columns: vec![
            FieldColumn::new(FieldId(100), ColumnData::Int64(ids.to_vec())),
            FieldColumn::new(FieldId(101), ColumnData::VarChar(vec!["ab".into(); n])),
            FieldColumn::new(
                FieldId(102),
                ColumnData::FloatVector {
                    dim: 2,
                    data: ids.iter().flat_map(|&i| [i as f32, 1.0]).collect(),
                },
            ),
            FieldColumn::new(FieldId(103), ColumnData::Json(vec!["{}".into(); n])),
        ],
    }
}

#[test]
fn a_good_batch_validates() {
    batch(&[1, 2, 3]).validate(&schema()).unwrap();
}

#[test]
fn errors_name_the_field_and_problem() {
    let s = schema();
    let mut b = batch(&[1, 2]);
    b.columns[2].data = ColumnData::FloatVector {
        dim: 3,
        data: vec![0.0; 6],
    };
    assert_eq!(
        b.validate(&s),
        Err(BatchError::WrongDim {
            field: "v".into(),
            expected: 2,
            got: 3
        })
    );

    // Right dim, but not whole vectors: the message must not claim a dim mismatch.
    let mut b = batch(&[1, 2]);
    b.columns[2].data = ColumnData::FloatVector {
        dim: 2,
        data: vec![0.0; 5],
    };
    assert_eq!(
        b.validate(&s).unwrap_err().to_string(),
        "field \"v\" has 5 values, not a whole number of vectors of dim 2"
    );

    let mut b = batch(&[1, 2]);
    b.columns[1].data = ColumnData::VarChar(vec!["ab".into(), "abcde".into()]);
    let e = b.validate(&s).unwrap_err();
    assert_eq!(
        e.to_string(),
        "field \"name\" row 1: value is 5 bytes long, max_length is 4"
    );

    let mut b = batch(&[1, 2]);
    b.columns.remove(1);
    assert_eq!(b.validate(&s), Err(BatchError::MissingField("name".into())));

    let mut b = batch(&[1, 2]);
    b.columns[0].data = ColumnData::Float(vec![1.0, 2.0]);
    assert!(matches!(b.validate(&s), Err(BatchError::WrongType { .. })));

    // Repeated keys are an insert's right; only an upsert refuses them.
    let b = batch(&[7, 8, 7]);
    assert_eq!(b.validate(&s), Ok(()));
    assert_eq!(
        b.check_unique_pks(&s),
        Err(BatchError::DuplicatePrimaryKey {
            field: "id".into(),
            pk: "7".into(),
            first: 0,
            second: 2
        })
    );

    let mut b = batch(&[1]);
    b.columns[3].data = ColumnData::Json(vec!["[1]".into()]);
    assert!(matches!(
        b.validate(&s),
        Err(BatchError::DynamicNotObject { .. })
    ));

    let mut b = batch(&[1]);
    b.columns[2].valid = Some(vec![false]);
    assert!(matches!(
        b.validate(&s),
        Err(BatchError::NullNotAllowed { .. })
    ));

    let mut b = batch(&[1]);
    b.columns[1].valid = Some(vec![false]);
    b.validate(&s).unwrap();
}

#[test]
fn take_selects_rows() {
    let b = batch(&[1, 2, 3]).take(&[2, 0]);
    assert_eq!(b.num_rows, 2);
    assert_eq!(b.columns[0].data, ColumnData::Int64(vec![3, 1]));
    assert_eq!(b.columns[2].data.vector(0), Some(&[3.0f32, 1.0][..]));
}

#[test]
fn json_values_are_capped_at_milvus_max_length() {
    let s = schema();
    let at_cap = format!(
        "{{\"x\":\"{}\"}}",
        "y".repeat(super::validate::MAX_JSON_BYTES - 8)
    );
    assert_eq!(at_cap.len(), super::validate::MAX_JSON_BYTES);
    let mut b = batch(&[1, 2]);
    b.columns[3].data = ColumnData::Json(vec!["{}".into(), at_cap.clone()]);
    b.validate(&s).unwrap();
    let over = format!(
        "{{\"x\":\"{}\"}}",
        "y".repeat(super::validate::MAX_JSON_BYTES)
    );
    b.columns[3].data = ColumnData::Json(vec!["{}".into(), over]);
    assert_eq!(
        b.validate(&s).unwrap_err().to_string(),
        "the length (65544) of json field ($meta) exceeds max length (65536) at row 1"
    );
}
