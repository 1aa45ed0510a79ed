//! End-to-end tests: compile filters against a schema and evaluate them on rows.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::batch::{ColumnData, FieldColumn, Pk};
use crate::ids::FieldId;
use crate::schema::{CollectionSchema, DataType, FieldSchema};
use crate::segment::SegmentData;
use crate::tso::Timestamp;

/// id(100) tag(101) name(102) a(103) x(104, nullable) age(105) meta(106, JSON)
/// score(107, Float) flag(108, Bool) vec(109), then $meta(110) when dynamic.
fn schema(dynamic: bool) -> CollectionSchema {
    CollectionSchema::new(
        "t",
        vec![
            FieldSchema::new("id", DataType::Int64).primary(false),
            FieldSchema::new("tag", DataType::Int64),
            FieldSchema::new("name", DataType::VarChar { max_length: 16 }),
            FieldSchema::new("a", DataType::Int64),
            FieldSchema::new("x", DataType::Int32).nullable(),
            FieldSchema::new("age", DataType::Int32),
            FieldSchema::new("meta", DataType::Json),
            FieldSchema::new("score", DataType::Float),
            FieldSchema::new("flag", DataType::Bool),
            FieldSchema::new("vec", DataType::FloatVector { dim: 2 }),
        ],
        dynamic,
    )
    .unwrap()
}

fn data(dynamic: bool) -> SegmentData {
    let mut columns = vec![
        FieldColumn::new(FieldId(100), ColumnData::Int64(vec![1, 2, 3])),
        FieldColumn::new(FieldId(101), ColumnData::Int64(vec![5, 20, 7])),
        FieldColumn::new(
            FieldId(102),
            ColumnData::VarChar(vec!["alice".into(), "bob".into(), "anna".into()]),
        ),
        FieldColumn::new(FieldId(103), ColumnData::Int64(vec![2, 1, 4])),
        FieldColumn {
            field_id: FieldId(104),
            data: ColumnData::Int32(vec![10, 0, 30]),
            valid: Some(vec![true, false, true]),
        },
        FieldColumn::new(FieldId(105), ColumnData::Int32(vec![30, 40, 50])),
        FieldColumn::new(
            FieldId(106),
            ColumnData::Json(vec![
                r#"{"k":"x","arr":[2,1],"tags":["x","y"]}"#.into(),
                r#"{"k":"y","arr":[0],"tags":["z"],"n":null}"#.into(),
                r#"{"arr":"no"}"#.into(),
            ]),
        ),
        FieldColumn::new(FieldId(107), ColumnData::Float(vec![0.5, 1.5, 2.5])),
        FieldColumn::new(FieldId(108), ColumnData::Bool(vec![true, false, true])),
        FieldColumn::new(
            FieldId(109),
            ColumnData::FloatVector {
                dim: 2,
                data: vec![0.0; 6],
            },
        ),
    ];
    if dynamic {
        columns.push(FieldColumn::new(
            FieldId(110),
            ColumnData::Json(vec![
                r#"{"color":"red","size":3}"#.into(),
                r#"{"color":"blue"}"#.into(),
                "{}".into(),
            ]),
        ));
    }
    SegmentData {
        columns,
        timestamps: vec![Timestamp(1); 3],
    }
}

fn params() -> BTreeMap<String, Value> {
    let mut p = BTreeMap::new();
    p.insert(
        "tags".to_string(),
        Value::Array(vec![Value::Int(5), Value::Int(7)]),
    );
    p.insert("n".to_string(), Value::Int(6));
    p.insert("p".to_string(), Value::from("a%"));
    p.insert("strs".to_string(), Value::Array(vec![Value::from("a")]));
    p.insert("ids".to_string(), Value::Json(serde_json::json!([1, 3])));
    p
}

/// Checks the rows `src` matches, compiled here and after a trip over the wire (the
/// proxy sends reads their filter compiled).
fn check(src: &str, expected: &[usize]) {
    let p = compile(src, &schema(true), &params()).unwrap_or_else(|e| panic!("{src}: {e}"));
    assert_eq!(p.matching_rows(&data(true)), expected, "{src}");
    let bytes = postcard::to_allocvec(&p).expect("a plan serializes");
    let back: Predicate =
        postcard::from_bytes(&bytes).unwrap_or_else(|e| panic!("{src}: plan decode: {e}"));
    assert_eq!(back.matching_rows(&data(true)), expected, "{src} (decoded)");
    assert_eq!(back.matches_all(), p.matches_all(), "{src} (decoded)");
}

fn check_err(src: &str, dynamic: bool, column: usize, needle: &str) -> ExprError {
    let e = compile(src, &schema(dynamic), &params()).expect_err(src);
    assert_eq!(e.column, column, "{src}: {e}");
    assert!(e.message.contains(needle), "{src}: {e}");
    e
}

fn str_pk_schema(pk: &str) -> CollectionSchema {
    CollectionSchema::new(
        "s",
        vec![
            FieldSchema::new(pk, DataType::VarChar { max_length: 8 }).primary(false),
            FieldSchema::new("age", DataType::Int64),
            FieldSchema::new("vec", DataType::FloatVector { dim: 2 }),
        ],
        false,
    )
    .unwrap()
}

fn str_pk_data() -> SegmentData {
    SegmentData {
        columns: vec![
            FieldColumn::new(
                FieldId(100),
                ColumnData::VarChar(vec!["k1".into(), "k4".into(), "k5".into()]),
            ),
            FieldColumn::new(FieldId(101), ColumnData::Int64(vec![0, 2, 5])),
            FieldColumn::new(
                FieldId(102),
                ColumnData::FloatVector {
                    dim: 2,
                    data: vec![0.0; 6],
                },
            ),
        ],
        timestamps: vec![Timestamp(1); 3],
    }
}

#[test]
fn quickstart_filters() {
    check(r#"tag < 10 and name like "a%""#, &[0, 2]);
    check("id in [1,2,3]", &[0, 1, 2]);
    check("id not in [2]", &[0, 2]);
    check(r#"color == "red""#, &[0]);
    check(r#"meta["k"] == "x""#, &[0]);
    check(r#"meta["arr"][0] > 1"#, &[0]);
    check("a % 2 == 0", &[0, 2]);
    check("not (a == 1)", &[0, 2]);
    check("1 < a <= 5", &[0, 2]);
    check("5 > a >= 2", &[0, 2]);
    check("2 <= a < 4", &[0]);
    check("x is null", &[1]);
    check("tag in {tags}", &[0, 2]);
    check(r#"json_contains(meta["tags"], "x")"#, &[0]);
}

#[test]
fn string_primary_keys() {
    let schema = str_pk_schema("pk");
    let rows = |src: &str| {
        compile(src, &schema, &BTreeMap::new())
            .unwrap_or_else(|e| panic!("{src}: {e}"))
            .matching_rows(&str_pk_data())
    };
    assert_eq!(rows(r#"pk > "k3" and (age > 1)"#), [1, 2]);
    assert_eq!(rows("pk in ['k1','k5']"), [0, 2]);
    assert_eq!(rows(r#"pk not in ["k4"]"#), [0, 2]);
    let p = compile("pk in ['k1','k5']", &schema, &BTreeMap::new()).unwrap();
    assert_eq!(
        p.primary_keys(),
        Some(vec![Pk::Str("k1".into()), Pk::Str("k5".into())])
    );

    let schema = str_pk_schema("id");
    let p = compile("id in ['a','b']", &schema, &BTreeMap::new()).unwrap();
    assert_eq!(
        p.primary_keys(),
        Some(vec![Pk::Str("a".into()), Pk::Str("b".into())])
    );
    assert!(p.matching_rows(&str_pk_data()).is_empty());
    let e = compile("id == 1", &schema, &BTreeMap::new()).unwrap_err();
    assert!(
        e.message.contains("VarChar") && e.message.contains("Int64"),
        "{e}"
    );
}

#[test]
fn dynamic_fields() {
    check("size > 2", &[0]);
    check(r#"$meta["color"] == "blue""#, &[1]);
    check("color is null", &[2]);
    check("color is not null", &[0, 1]);
    // A missing key is null, so neither == nor != matches it.
    check(r#"color != "red""#, &[1]);
    check("size * 2 == 6", &[0]);
    let e = check_err(
        r#"color == "red""#,
        false,
        1,
        "field \"color\" does not exist",
    );
    assert_eq!(
        e.to_string(),
        "filter error at column 1: field \"color\" does not exist"
    );
    check_err("$meta == 1", false, 1, "does not exist");
}

#[test]
fn json_paths_and_functions() {
    check(r#"meta["n"] is null"#, &[0, 1, 2]);
    check(r#"meta["k"] is not null"#, &[0, 1]);
    check(r#"json_contains_any(meta["tags"], ["z", "x"])"#, &[0, 1]);
    check(r#"json_contains_all(meta["tags"], ["x", "y"])"#, &[0]);
    check(r#"ARRAY_CONTAINS(meta["tags"], "z")"#, &[1]);
    check(r#"array_contains_all(meta["tags"], [])"#, &[0, 1]);
    check(r#"array_length(meta["arr"]) == 2"#, &[0]);
    check(r#"array_length(meta["arr"]) >= 1"#, &[0, 1]);
    // Comparing a string with a number is unknown, not an error, for JSON values.
    check(r#"meta["k"] > 1"#, &[]);
    check(r#"meta["arr"] == [2, 1]"#, &[0]);
    check(r#"meta["arr"] == [2.0, 1]"#, &[0]);
    check(r#"meta["arr"]["0"] == 2"#, &[0]);
    check(r#"meta["k"] in ["y", "z"]"#, &[1]);
    check("meta[\"k\"] like \"%\"", &[0, 1]);
}

#[test]
fn nulls_are_unknown() {
    check("x > 5", &[0, 2]);
    check("not (x > 5)", &[]);
    check("x != 10", &[2]);
    check("x > 5 or a == 1", &[0, 1, 2]);
    check("x > 5 and a == 1", &[]);
    check("x in [10, 30]", &[0, 2]);
    check("x not in [10]", &[2]);
    check("x is not null", &[0, 2]);
    check("x IS NULL or x == 30", &[1, 2]);
}

#[test]
fn arithmetic() {
    check("a / 2 == 2", &[2]);
    check("a / 0 == 1", &[]);
    check("a % 0 == 0", &[]);
    check("not (a / 0 == 1)", &[]);
    check("a + tag > 10", &[1, 2]);
    check("score * 2 < 4", &[0, 1]);
    check("-a < -1", &[0, 2]);
    check("a ** 2 == 16", &[2]);
    check("(a + 1) * 2 == 6", &[0]);
    check("tag - a * 2 == 1", &[0]);
    check("tag > {n}", &[1, 2]);
    check("score > 1", &[1, 2]);
    check("score == 1.5", &[1]);
    check("score >= 0.5 and score <= 0.5", &[0]);
}

#[test]
fn logic_strings_and_templates() {
    check("!(a == 1)", &[0, 2]);
    check("a == 1 || a == 4", &[1, 2]);
    check("a == 2 && tag == 5", &[0]);
    check("NOT (a == 1) AND tag < 10", &[0, 2]);
    check("flag", &[0, 2]);
    check("not flag", &[1]);
    check("flag == true", &[0, 2]);
    check("flag != False", &[0, 2]);
    check(r#"name like "%b""#, &[1]);
    check(r#"name like "_nn_""#, &[2]);
    check(r#"name LIKE "%li%""#, &[0]);
    check(r#"name like "alice""#, &[0]);
    check("name like {p}", &[0, 2]);
    check(r#"name > "b""#, &[1]);
    check("name == 'anna'", &[2]);
    check("id in {ids}", &[0, 2]);
    check(
        &format!("{}a == 2{}", "(".repeat(100), ")".repeat(100)),
        &[0],
    );
    check(&format!("{}a > 1", "-".repeat(100)), &[0, 2]);
    check(&format!("{}flag", "not ".repeat(100)), &[0, 2]);
    let ors = (0..2000)
        .map(|i| format!("a == {i}"))
        .collect::<Vec<_>>()
        .join(" or ");
    check(&ors, &[0, 1, 2]);
}

#[test]
fn constants_fold() {
    let s = schema(true);
    let always = [
        "true",
        "TRUE",
        "1 + 2 * 3 == 7",
        "2 ** 3 == 8",
        "-2 ** 2 == -4",
        "7 / 2 == 3",
        "-7 / 2 == -3",
        "-7 % 3 == -1",
        "7.0 / 2 == 3.5",
        "(1 + 2) * 3 == 9",
        "not false",
        "true and not false",
        "~0 == -1",
        "-9223372036854775808 < 0",
        "\"b\" > \"a\"",
        "1 == 1.0",
        "[1, 2,] == [1, 2]",
        "1 in [1, 2]",
        "3 not in [1, 2]",
        "\"abc\" like \"a%c\"",
        "\"abc\" like \"a_c\"",
        r#""a%c" like "a\\%c""#,
        "0x10 == 16",
        "0o17 == 15",
        "017 == 15",
        "0b101 == 5",
        "1.5e2 == 150",
        "1 < 2 <= 2",
        "{n} == 6",
    ];
    for src in always {
        let p = compile(src, &s, &params()).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert!(p.matches_all(), "{src}: {p:?}");
        assert_eq!(p.matching_rows(&data(true)), [0, 1, 2], "{src}");
    }
    for src in [
        "1 == 2",
        "1 / 0 == 1",
        "not (1 / 0 == 1)",
        "9223372036854775807 + 1 > 0",
    ] {
        let p = compile(src, &s, &params()).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert!(!p.matches_all(), "{src}");
        assert!(p.matching_rows(&data(true)).is_empty(), "{src}");
    }
    for src in ["", "   \n\t"] {
        let p = compile(src, &s, &BTreeMap::new()).unwrap();
        assert!(p.matches_all());
        assert_eq!(p.primary_keys(), None);
        assert!(p.eval(&data(true), 0));
    }
}

#[test]
fn primary_keys_of_point_lookups() {
    let s = schema(true);
    let keys = |src: &str| {
        compile(src, &s, &BTreeMap::new())
            .unwrap_or_else(|e| panic!("{src}: {e}"))
            .primary_keys()
    };
    let ints = |v: &[i64]| Some(v.iter().map(|&i| Pk::Int(i)).collect::<Vec<_>>());
    assert_eq!(keys("id in [1,2,3]"), ints(&[1, 2, 3]));
    assert_eq!(keys("id == 2 or id in [3, 1, 2]"), ints(&[2, 3, 1]));
    assert_eq!(keys("2 == id"), ints(&[2]));
    assert_eq!(keys("id in []"), ints(&[]));
    assert_eq!(keys("id in [1.0, 2.5]"), ints(&[1]));
    assert_eq!(keys("id in [1] and tag > 1"), None);
    assert_eq!(keys("id > 1"), None);
    assert_eq!(keys("id not in [1]"), None);
    assert_eq!(keys("tag in [1]"), None);
    assert_eq!(keys("id == 1 or tag == 2"), None);
}

#[test]
fn errors_name_the_problem_and_column() {
    let e = check_err("agee > 3", false, 1, "field \"agee\" does not exist");
    assert_eq!(
        e.to_string(),
        "filter error at column 1: field \"agee\" does not exist"
    );
    check_err("age > ", true, 7, "unexpected end of input");
    check_err("\"abc", true, 1, "unterminated string");
    check_err("vec > 1", true, 1, "vector field \"vec\"");
    let e = check_err("name > 3", true, 1, "\"name\"");
    assert!(
        e.message.contains("VarChar") && e.message.contains("Int64"),
        "{e}"
    );
    check_err("3 < name", true, 5, "\"name\"");
    let e = check_err("age == \"x\"", true, 1, "\"age\"");
    assert!(
        e.message.contains("Int32") && e.message.contains("VarChar"),
        "{e}"
    );
    check_err("flag > true", true, 1, "cannot order");
    check_err("id in [\"a\"]", true, 7, "cannot compare");
    check_err("tag in {missing}", true, 8, "{missing}");
    check_err("tag in {strs}", true, 8, "cannot compare");
    check_err("age", true, 1, "must be a boolean");
    check_err("not age == 1", true, 5, "operand of \"not\"");
    check_err("age + name > 1", true, 7, "needs numbers");
    check_err("name like \"a%\" and age", true, 20, "operands of \"and\"");
    check_err("age[0] > 1", true, 1, "cannot be indexed");
    check_err("\"\u{e9}\" == agee", false, 8, "agee");
    check_err("id in age", true, 7, "array of constants");
    check_err("json_contains(age, 1)", true, 15, "needs a JSON field");
    check_err("json_contains(meta, age)", true, 21, "must be a constant");
    check_err("json_contains_all(meta, 1)", true, 25, "must be an array");
    check_err("[age] == [1]", true, 2, "must be constants");
    check_err("age like \"a\"", true, 1, "matches strings");
    check_err("foo(age)", true, 1, "unknown function");
    check_err("a == 1 2", true, 8, "unexpected number 2");
    check_err(
        &format!("{}a == 1{}", "(".repeat(300), ")".repeat(300)),
        true,
        MAX_DEPTH + 1,
        "nested too deeply",
    );
    let long = format!("{}a == 1", "a == 1 or ".repeat(7000));
    check_err(&long, true, 1, "too long");
}

#[test]
fn evaluation_never_panics_on_odd_data() {
    let s = schema(true);
    let p = compile(
        r#"x > 1 or meta["k"] == "x" or name like "a%" or color == 1"#,
        &s,
        &BTreeMap::new(),
    )
    .unwrap();
    // Rows past the end and data missing columns read as null.
    assert!(!p.eval(&data(true), 99));
    let empty = SegmentData {
        columns: Vec::new(),
        timestamps: Vec::new(),
    };
    assert!(!p.eval(&empty, 0));
    // Columns out of schema order are still found by field id.
    let mut shuffled = data(true);
    shuffled.columns.reverse();
    assert!(p.eval(&shuffled, 0));
    // A short validity vector and unparsable JSON do not panic.
    let mut broken = data(true);
    broken.columns[4].valid = Some(vec![]);
    broken.columns[6].data = ColumnData::Json(vec!["{".into(); 3]);
    assert!(p.eval(&broken, 0));
    assert!(!p.eval(&broken, 1));
}

#[test]
fn template_values_convert_from_json() {
    assert_eq!(
        Value::from(serde_json::json!([1, "a", null, {"k": 2}])),
        Value::Array(vec![
            Value::Int(1),
            Value::from("a"),
            Value::Null,
            Value::Json(serde_json::json!({"k": 2}))
        ])
    );
}

#[test]
fn fuzz_known_inputs() {
    for src in [
        "",
        "age > 1 and name like \"a%\"",
        "meta[\"o\"][\"a\"][0][\"b\"] == 1",
        "json_contains(meta, 1) or array_length(meta) > 2",
        "tag in {tags} and big > 1 and color != 3",
        "score > {f} or meta == {j} or {j} in [{j}]",
        "id in [1, 2] or id == 3",
        "$meta[\"tag\"][1] like \"%\"",
        "\u{0}\u{ff}\"",
    ] {
        fuzz(src.as_bytes());
    }
    fuzz(&[0xff, 0xfe, b'a']);
}

const ALPHABET: &[&str] = &[
    "a",
    "age",
    "name",
    "score",
    "meta",
    "vec",
    "$meta",
    "color",
    "id",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "{tags}",
    "{n}",
    "{j}",
    "{nope}",
    ",",
    "\"x\"",
    "'y'",
    "\"",
    "'",
    "\\",
    "1",
    "0",
    "-1",
    "0x",
    "0x1f",
    "017",
    "1.5e",
    "2.5",
    "1e308",
    "9223372036854775808",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "**",
    "~",
    "!",
    "&&",
    "||",
    "&",
    "and",
    "or",
    "not",
    "in",
    "not in",
    "like",
    "is",
    "null",
    "is not null",
    "true",
    "json_contains",
    "array_length",
    "json_contains_all",
    "[1,2]",
    "\"a%\"",
    "\u{e9}",
    " ",
];

proptest! {
    #[test]
    fn grammarish_inputs_never_panic(
        parts in proptest::collection::vec(proptest::sample::select(ALPHABET), 0..16)
    ) {
        fuzz(parts.join(" ").as_bytes());
        fuzz(parts.concat().as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        fuzz(&bytes);
    }
}
