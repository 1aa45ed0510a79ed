use super::*;
use quiver_core::batch::Pk;
use quiver_core::ids::SegmentId;

fn hits(n: usize) -> Vec<Hit> {
    (0..n)
        .map(|i| Hit {
            pk: Pk::Int(i as i64),
            score: i as f32,
            distance: i as f32,
            segment: SegmentId(1),
            row: i as u32,
        })
        .collect()
}

fn schema() -> CollectionSchema {
    CollectionSchema::new(
        "g",
        vec![
            FieldSchema::new("id", DataType::Int64).primary(false),
            FieldSchema::new("doc", DataType::Int64),
            FieldSchema::new("v", DataType::FloatVector { dim: 2 }),
        ],
        false,
    )
    .unwrap()
}

#[test]
fn groups_keep_their_best_hits_together_in_best_first_order() {
    let s = schema();
    let g = GroupBy {
        field: s.field("doc").unwrap(),
        size: 2,
        strict: false,
    };
    let keys: Vec<GroupKey> = [1, 2, 1, 1, 3, 2, 4]
        .iter()
        .map(|k| GroupKey::Int(*k))
        .collect();
    let out = group(&g, &hits(7), &keys, 2, false);
    // Group 1 (hits 0, 2; hit 3 overflows), then group 2 (hits 1, 5); 3 and 4 are
    // groups beyond the limit.
    assert_eq!(out.hits, vec![0, 2, 1, 5]);
    assert!(!out.wants_more);
    let out = group(&g, &hits(7), &keys, 5, false);
    assert_eq!(out.hits, vec![0, 2, 1, 5, 4, 6]);
    assert!(
        out.wants_more,
        "too few groups and the shards may have more"
    );
    assert!(!group(&g, &hits(7), &keys, 5, true).wants_more);
}

#[test]
fn strict_groups_ask_for_more_until_full() {
    let s = schema();
    let g = GroupBy {
        field: s.field("doc").unwrap(),
        size: 2,
        strict: true,
    };
    let keys = vec![GroupKey::Int(1), GroupKey::Null, GroupKey::Int(1)];
    let out = group(&g, &hits(3), &keys, 2, false);
    assert_eq!(out.hits, vec![0, 2, 1]);
    assert!(out.wants_more, "the null group holds one hit of two");
}

#[test]
fn parameters_are_validated() {
    let s = schema();
    let kv = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let none = serde_json::Map::new();
    assert!(GroupBy::parse(&s, &kv(&[]), &none, 10).unwrap().is_none());
    let g = GroupBy::parse(
        &s,
        &kv(&[("group_by_field", "doc"), ("group_size", "3")]),
        &none,
        10,
    )
    .unwrap()
    .unwrap();
    assert_eq!((g.size, g.strict), (3, false));
    let err = |pairs: &[(&str, &str)]| GroupBy::parse(&s, &kv(pairs), &none, 10).err().unwrap();
    assert_eq!(
        err(&[("group_by_field", "nope")]).code,
        code::FIELD_NOT_FOUND
    );
    assert!(err(&[("group_by_field", "v")]).reason.contains("only Bool"));
    assert!(err(&[("group_by_field", "doc"), ("group_size", "0")])
        .reason
        .contains("group_size"));
    assert!(err(&[("group_by_field", "doc"), ("group_size", "2000")])
        .reason
        .contains("group_size"));
    assert!(
        err(&[("group_by_field", "doc"), ("strict_group_size", "maybe")])
            .reason
            .contains("boolean")
    );
}
