//! Milvus boolean filter expressions.
//!
//! A filter such as `age > 20 and meta["tags"][0] == "x"` is parsed ([`parse`]),
//! type-checked against a collection schema and lowered ([`compile()`]), then evaluated
//! row by row over a segment ([`Predicate::eval`]).
//!
//! Semantics, where Milvus leaves room or Quiver chooses:
//!
//! - Nulls. A null (a null row of a nullable field, a missing JSON key or path, a JSON
//!   `null`, a null template value) makes every comparison, `in`, `like` and
//!   `json_contains*` *unknown*. Logic is three-valued as in SQL: `not unknown` is
//!   unknown, `false and unknown` is false, `true or unknown` is true. A row matches
//!   only when the whole filter is true. `is null` / `is not null` are never unknown.
//! - Mixed kinds at run time. Comparing a JSON or dynamic value with a value of
//!   another kind (`meta["k"] > 1` where `k` holds a string) is unknown too, so
//!   neither `==` nor `!=` (nor `not (...)`) matches it. `x in [..]` means
//!   `x == a or x == b ...`, so a list mixing kinds can make it unknown. Milvus
//!   itself makes JSON `!=` true for missing keys and mismatched kinds.
//! - Mixed kinds at compile time. Comparing a typed scalar field with a value of
//!   another kind (`name > 3` for a VarChar `name`) is an error naming the field and
//!   both types. Int and Float compare numerically, exactly.
//! - Arithmetic. Integer `+ - * / %` stay integers: `/` truncates toward zero and `%`
//!   takes the sign of the dividend (as in Milvus, C and Go). Overflow, division by
//!   zero and modulo by zero give null, so the comparison using them is unknown,
//!   never a panic. `**` always yields a float. Constant sub-expressions are folded.
//! - `not` binds tighter than comparisons (Milvus's grammar): `not a == 1` means
//!   `(not a) == 1` and is rejected for a non-boolean `a`; write `not (a == 1)`.
//! - Limits: sources longer than [`MAX_SOURCE_LEN`] bytes and trees nested deeper than
//!   [`MAX_DEPTH`] are rejected, so hostile input cannot exhaust the stack. Chains of
//!   `and` / `or` are flattened and do not count toward the depth.

mod ast;
mod compile;
mod eval;
mod lexer;
mod parser;

use std::collections::BTreeMap;

use thiserror::Error;

use crate::batch::{ColumnData, FieldColumn, Pk};
use crate::ids::FieldId;
use crate::schema::{CollectionSchema, DataType, FieldSchema};
use crate::segment::SegmentData;
use crate::tso::Timestamp;

use eval::Node;

pub use ast::{ArithOp, CmpOp, Expr, ExprKind, PathElem, UnaryOp};
pub use parser::parse;

/// Longest accepted filter source, in bytes.
pub const MAX_SOURCE_LEN: usize = 64 * 1024;
/// Deepest accepted nesting (parentheses, unary operators, operands of operators).
/// Parsing takes about six stack frames per level; 128 levels stay well inside a
/// 2 MiB thread stack even in unoptimised builds.
pub const MAX_DEPTH: usize = 128;

/// Why a filter expression was rejected. `column` is the 1-based character position
/// in the source of the offending token.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("filter error at column {column}: {message}")]
pub struct ExprError {
    pub message: String,
    pub column: usize,
}

impl ExprError {
    pub fn new(column: usize, message: impl Into<String>) -> Self {
        ExprError {
            message: message.into(),
            column,
        }
    }
}

/// A literal, or the value of a template parameter.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Value>),
    /// Carried as JSON text on the wire: postcard cannot describe a free-form value.
    Json(#[serde(with = "json_text")] serde_json::Value),
}

/// A JSON value as its text, for binary encodings that need a fixed shape.
mod json_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &serde_json::Value, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<serde_json::Value, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(serde::de::Error::custom)
    }
}

impl Value {
    /// Converts JSON to a value: scalars and arrays become native values, objects
    /// stay [`Value::Json`].
    pub fn from_json(j: &serde_json::Value) -> Value {
        match j {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => n.as_f64().map_or(Value::Null, Value::Float),
            },
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(items) => {
                Value::Array(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(_) => Value::Json(j.clone()),
        }
    }

    /// The same value with JSON scalars and arrays turned into native values.
    fn normalized(self) -> Value {
        match self {
            Value::Json(j) => Value::from_json(&j),
            Value::Array(items) => Value::Array(items.into_iter().map(Value::normalized).collect()),
            other => other,
        }
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::Array(v)
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        Value::from_json(&v)
    }
}

/// A compiled filter, bound to one schema. It travels compiled between roles (the
/// proxy compiles a read's filter once); evaluation never panics whatever the plan
/// names — a column or document it cannot find reads as null.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Predicate {
    /// `None` for the empty filter.
    root: Option<Node>,
    /// The JSON columns read, parsed once per evaluated row.
    json_fields: Vec<(FieldId, usize)>,
    pk_field: Option<FieldId>,
}

/// Compiles a filter against a schema. Empty/whitespace-only source = match everything.
pub fn compile(
    src: &str,
    schema: &CollectionSchema,
    params: &BTreeMap<String, Value>,
) -> Result<Predicate, ExprError> {
    let pk_field = schema
        .fields
        .iter()
        .find(|f| f.is_primary_key)
        .map(|f| f.id);
    if src.len() <= MAX_SOURCE_LEN && src.trim().is_empty() {
        return Ok(Predicate {
            root: None,
            json_fields: Vec::new(),
            pk_field,
        });
    }
    let expr = parse(src)?;
    let lowered = compile::lower(&expr, schema, params)?;
    Ok(Predicate {
        root: Some(lowered.root),
        json_fields: lowered.json_fields,
        pk_field,
    })
}

impl Predicate {
    /// Whether every row matches: the empty filter, or one that folds to `true`.
    pub fn matches_all(&self) -> bool {
        match &self.root {
            None => true,
            Some(Node::Const(Value::Bool(b))) => *b,
            Some(_) => false,
        }
    }

    /// Whether `row` of `data` matches (unknown counts as no match). Never panics,
    /// even for a row out of range or data that does not fit the schema.
    pub fn eval(&self, data: &SegmentData, row: usize) -> bool {
        let Some(root) = &self.root else {
            return true;
        };
        let docs: Vec<Option<serde_json::Value>> = self
            .json_fields
            .iter()
            .map(|&(field, pos)| eval::load_doc(data, field, pos, row))
            .collect();
        let ctx = eval::Ctx {
            data,
            row,
            docs: &docs,
        };
        matches!(root.eval(&ctx), eval::Datum::Bool(true))
    }

    /// The rows of `data` that match, in order.
    pub fn matching_rows(&self, data: &SegmentData) -> Vec<usize> {
        (0..data.num_rows())
            .filter(|&r| self.eval(data, r))
            .collect()
    }

    /// If the predicate is exactly `pk in [...]` / `pk == v` (possibly with `or` of
    /// those), the keys, in the order written and without duplicates; used for
    /// delete-by-id and get. Otherwise `None`.
    pub fn primary_keys(&self) -> Option<Vec<Pk>> {
        let pk = self.pk_field?;
        let root = self.root.as_ref()?;
        let mut keys = Vec::new();
        collect_pks(root, pk, &mut keys)?;
        let mut seen = std::collections::BTreeSet::new();
        keys.retain(|k| seen.insert(k.clone()));
        Some(keys)
    }
}

fn is_pk_column(node: &Node, pk: FieldId) -> bool {
    matches!(node, Node::Column { field, .. } if *field == pk)
}

fn to_pk(v: &Value) -> Option<Pk> {
    match v {
        Value::Int(i) => Some(Pk::Int(*i)),
        Value::Str(s) => Some(Pk::Str(s.clone())),
        // An integral float can equal an Int64 key; other values match no key.
        Value::Float(f) => eval::float_as_int(*f).map(Pk::Int),
        _ => None,
    }
}

fn collect_pks(node: &Node, pk: FieldId, out: &mut Vec<Pk>) -> Option<()> {
    match node {
        Node::Or(items) => {
            for item in items {
                collect_pks(item, pk, out)?;
            }
            Some(())
        }
        Node::In {
            expr,
            set,
            negated: false,
        } if is_pk_column(expr, pk) => {
            out.extend(set.items.iter().filter_map(to_pk));
            Some(())
        }
        Node::Cmp {
            op: CmpOp::Eq,
            lhs,
            rhs,
        } => match (&**lhs, &**rhs) {
            (n, Node::Const(v)) | (Node::Const(v), n) if is_pk_column(n, pk) => {
                out.extend(to_pk(v));
                Some(())
            }
            _ => None,
        },
        _ => None,
    }
}

/// The fixed schema [`fuzz`] compiles against: Int64 pk `id`, nullable Int32 `age`,
/// VarChar `name`, Double `score`, JSON `meta`, FloatVector `vec`, dynamic fields on.
pub fn fuzz_schema() -> CollectionSchema {
    let fields = vec![
        FieldSchema::new("id", DataType::Int64).primary(false),
        FieldSchema::new("age", DataType::Int32).nullable(),
        FieldSchema::new("name", DataType::VarChar { max_length: 64 }),
        FieldSchema::new("score", DataType::Double),
        FieldSchema::new("meta", DataType::Json),
        FieldSchema::new("vec", DataType::FloatVector { dim: 2 }),
    ];
    // The fallback is unreachable for this fixed schema; it avoids a panic path.
    CollectionSchema::new("fuzz", fields.clone(), true).unwrap_or_else(|_| CollectionSchema {
        name: "fuzz".into(),
        description: String::new(),
        fields,
        enable_dynamic_field: false,
    })
}

/// Three rows for [`fuzz_schema`], with a null, a NaN, an unparsable JSON document and
/// a JSON array at the top level.
fn fuzz_segment(schema: &CollectionSchema) -> SegmentData {
    let id = |name: &str| schema.field(name).map_or(FieldId(0), |f| f.id);
    let json = |docs: [&str; 3]| ColumnData::Json(docs.iter().map(|s| s.to_string()).collect());
    SegmentData {
        columns: vec![
            FieldColumn::new(id("id"), ColumnData::Int64(vec![1, 2, 3])),
            FieldColumn {
                field_id: id("age"),
                data: ColumnData::Int32(vec![30, 0, -5]),
                valid: Some(vec![true, false, true]),
            },
            FieldColumn::new(
                id("name"),
                ColumnData::VarChar(vec!["alice".into(), "bob".into(), String::new()]),
            ),
            FieldColumn::new(id("score"), ColumnData::Double(vec![0.5, f64::NAN, -1e300])),
            FieldColumn::new(
                id("meta"),
                json([
                    r#"{"k":"x","arr":[1,2,3],"tags":["x","y"],"n":null,"o":{"a":[{"b":1}]}}"#,
                    r#"[1,2.5,"s",true,null,{"k":[]}]"#,
                    "not json",
                ]),
            ),
            FieldColumn::new(
                id("vec"),
                ColumnData::FloatVector {
                    dim: 2,
                    data: vec![0.0; 6],
                },
            ),
            FieldColumn::new(
                id("$meta"),
                json([
                    r#"{"color":"red","tag":5,"big":18446744073709551615}"#,
                    "{}",
                    r#"{"color":3,"tag":[1,"x"]}"#,
                ]),
            ),
        ],
        timestamps: vec![Timestamp(1), Timestamp(2), Timestamp(3)],
    }
}

/// Fuzz entry point: any bytes, tried as filter source against [`fuzz_schema`] and
/// evaluated on three rows (and one past the end). Must never panic.
pub fn fuzz(data: &[u8]) {
    let src = String::from_utf8_lossy(data);
    let schema = fuzz_schema();
    let segment = fuzz_segment(&schema);
    let mut params = BTreeMap::new();
    params.insert(
        "tags".to_string(),
        Value::Array(vec![Value::Int(1), Value::Str("x".into()), Value::Null]),
    );
    params.insert("n".to_string(), Value::Int(5));
    params.insert("s".to_string(), Value::Str("a%".into()));
    params.insert("f".to_string(), Value::Float(f64::NAN));
    params.insert(
        "j".to_string(),
        Value::Json(serde_json::json!({"a": [1, {"b": null}]})),
    );
    let _ = parse(&src);
    if let Ok(p) = compile(&src, &schema, &params) {
        for row in 0..=segment.num_rows() {
            let _ = p.eval(&segment, row);
        }
        let _ = p.primary_keys();
        let _ = p.matches_all();
    }
}

/// A compiled plan as it arrives over the wire: decoded (or refused) and evaluated on
/// every row without panicking; whatever decodes re-encodes to a plan that matches
/// the same rows.
pub fn fuzz_plan(data: &[u8]) {
    // Each level of nesting costs at least a byte; bounding the input bounds the
    // recursion of decoding and evaluating (plans from the proxy are depth-capped).
    if data.len() > 4096 {
        return;
    }
    let Ok(p) = postcard::from_bytes::<Predicate>(data) else {
        return;
    };
    let segment = fuzz_segment(&fuzz_schema());
    let rows: Vec<bool> = (0..=segment.num_rows())
        .map(|r| p.eval(&segment, r))
        .collect();
    let _ = p.primary_keys();
    let again = postcard::to_allocvec(&p).unwrap_or_default();
    if let Ok(q) = postcard::from_bytes::<Predicate>(&again) {
        let rows_again: Vec<bool> = (0..=segment.num_rows())
            .map(|r| q.eval(&segment, r))
            .collect();
        assert_eq!(rows, rows_again, "a re-encoded plan matches other rows");
    }
}

/// An encoded plan of `src` compiled against the fuzz schema (a seed for
/// [`fuzz_plan`]).
pub fn fuzz_plan_seed(src: &str) -> Vec<u8> {
    compile(src, &fuzz_schema(), &BTreeMap::new())
        .ok()
        .and_then(|p| postcard::to_allocvec(&p).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
