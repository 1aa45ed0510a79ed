use super::*;
use crate::pb::schema::{CollectionSchema, FieldSchema};

fn schema(fields: usize, dynamic: bool) -> CollectionSchema {
    let mut fs: Vec<FieldSchema> = (0..fields)
        .map(|i| FieldSchema {
            name: format!("f{i}"),
            ..Default::default()
        })
        .collect();
    if dynamic {
        fs.push(FieldSchema {
            name: "$meta".into(),
            is_dynamic: true,
            ..Default::default()
        });
    }
    CollectionSchema {
        fields: fs,
        ..Default::default()
    }
}

#[test]
fn at_most_64_fields_not_counting_the_dynamic_one() {
    check_field_count(&schema(64, true)).unwrap();
    let e = check_field_count(&schema(65, false)).unwrap_err();
    assert_eq!(e.code, code::INVALID_PARAMETER);
    assert_eq!(
        e.reason,
        "maximum field's number should be limited to 64, got 65"
    );
}
