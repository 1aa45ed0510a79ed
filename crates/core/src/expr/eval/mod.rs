//! The lowered form of a filter ([`Node`]) and its evaluation over one row.
//!
//! Evaluation is three-valued: a node yields a [`Datum`], and a boolean node yields
//! `Bool(true)`, `Bool(false)` or `Null` (unknown). Nothing here panics on any data:
//! rows out of range, missing columns and unparsable JSON all read as null.

use std::cmp::Ordering;

use crate::batch::{ColumnData, FieldColumn};
use crate::ids::FieldId;
use crate::segment::SegmentData;

use super::ast::{ArithOp, CmpOp, PathElem};
use super::Value;

mod in_set;
mod like;

pub(super) use in_set::InSet;
pub(super) use like::LikePattern;

/// 2^63 as a float: the first float above the Int64 range.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// A type-checked filter, ready to evaluate.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) enum Node {
    Const(Value),
    /// A scalar column; `pos` is its expected index in `SegmentData::columns`.
    Column {
        field: FieldId,
        pos: usize,
    },
    /// A value inside a JSON column; `doc` indexes the row's parsed documents.
    Json {
        doc: usize,
        path: Vec<PathElem>,
    },
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Cmp {
        op: CmpOp,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
    Range {
        lower: Box<Node>,
        lower_op: CmpOp,
        mid: Box<Node>,
        upper_op: CmpOp,
        upper: Box<Node>,
    },
    Arith {
        op: ArithOp,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
    Neg(Box<Node>),
    BitNot(Box<Node>),
    In {
        expr: Box<Node>,
        set: Box<InSet>,
        negated: bool,
    },
    Like {
        expr: Box<Node>,
        pattern: LikePattern,
    },
    IsNull {
        expr: Box<Node>,
        negated: bool,
    },
    /// `json_contains` (`Any` of one value), `json_contains_any`, `json_contains_all`
    /// and their `array_` aliases.
    Contains {
        mode: ContainsMode,
        expr: Box<Node>,
        values: Vec<Value>,
    },
    ArrayLength(Box<Node>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) enum ContainsMode {
    Any,
    All,
}

/// What a node is evaluated against.
pub(super) struct Ctx<'a> {
    pub(super) data: &'a SegmentData,
    pub(super) row: usize,
    /// The row's documents of each JSON column the filter reads (`None`: null or
    /// unparsable).
    pub(super) docs: &'a [Option<serde_json::Value>],
}

/// A value during evaluation, borrowed from the segment, the row's JSON or the filter.
#[derive(Debug, Clone, Copy)]
pub(super) enum Datum<'a> {
    /// Null, missing, or unknown.
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    /// A JSON array or object.
    Json(&'a serde_json::Value),
    /// An array from the filter text or a parameter.
    List(&'a [Value]),
}

impl<'a> Datum<'a> {
    pub(super) fn from_value(v: &'a Value) -> Datum<'a> {
        match v {
            Value::Null => Datum::Null,
            Value::Bool(b) => Datum::Bool(*b),
            Value::Int(i) => Datum::Int(*i),
            Value::Float(f) => Datum::Float(*f),
            Value::Str(s) => Datum::Str(s),
            Value::Array(items) => Datum::List(items),
            Value::Json(j) => Datum::from_json(j),
        }
    }

    pub(super) fn from_json(j: &'a serde_json::Value) -> Datum<'a> {
        match j {
            serde_json::Value::Null => Datum::Null,
            serde_json::Value::Bool(b) => Datum::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Datum::Int(i),
                None => n.as_f64().map_or(Datum::Null, Datum::Float),
            },
            serde_json::Value::String(s) => Datum::Str(s),
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => Datum::Json(j),
        }
    }

    pub(super) fn to_value(self) -> Value {
        match self {
            Datum::Null => Value::Null,
            Datum::Bool(b) => Value::Bool(b),
            Datum::Int(i) => Value::Int(i),
            Datum::Float(f) => Value::Float(f),
            Datum::Str(s) => Value::Str(s.to_string()),
            Datum::Json(j) => Value::from_json(j),
            Datum::List(items) => Value::Array(items.to_vec()),
        }
    }
}

impl Node {
    pub(super) fn eval<'a>(&'a self, ctx: &Ctx<'a>) -> Datum<'a> {
        match self {
            Node::Const(v) => Datum::from_value(v),
            Node::Column { field, pos } => column_value(ctx, *field, *pos),
            Node::Json { doc, path } => json_value(ctx, *doc, path),
            Node::Not(e) => match e.eval(ctx) {
                Datum::Bool(b) => Datum::Bool(!b),
                _ => Datum::Null,
            },
            Node::And(items) => all_of(items, ctx),
            Node::Or(items) => any_of(items, ctx),
            Node::Cmp { op, lhs, rhs } => compare(*op, lhs.eval(ctx), rhs.eval(ctx)),
            Node::Range {
                lower,
                lower_op,
                mid,
                upper_op,
                upper,
            } => {
                let m = mid.eval(ctx);
                both(
                    compare(*lower_op, lower.eval(ctx), m),
                    compare(*upper_op, m, upper.eval(ctx)),
                )
            }
            Node::Arith { op, lhs, rhs } => arith(*op, lhs.eval(ctx), rhs.eval(ctx)),
            Node::Neg(e) => match e.eval(ctx) {
                Datum::Int(i) => i.checked_neg().map_or(Datum::Null, Datum::Int),
                Datum::Float(f) => Datum::Float(-f),
                _ => Datum::Null,
            },
            Node::BitNot(e) => match e.eval(ctx) {
                Datum::Int(i) => Datum::Int(!i),
                _ => Datum::Null,
            },
            Node::In { expr, set, negated } => match set.contains(expr.eval(ctx)) {
                Datum::Bool(b) => Datum::Bool(b != *negated),
                other => other,
            },
            Node::Like { expr, pattern } => match expr.eval(ctx) {
                Datum::Str(s) => Datum::Bool(pattern.matches(s)),
                _ => Datum::Null,
            },
            Node::IsNull { expr, negated } => {
                Datum::Bool(matches!(expr.eval(ctx), Datum::Null) != *negated)
            }
            Node::Contains { mode, expr, values } => contains(*mode, expr.eval(ctx), values),
            Node::ArrayLength(e) => match e.eval(ctx) {
                Datum::Json(serde_json::Value::Array(items)) => Datum::Int(len_i64(items.len())),
                Datum::List(items) => Datum::Int(len_i64(items.len())),
                _ => Datum::Null,
            },
        }
    }
}

fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The column for `field`, looked up at its expected position first.
fn find_column(data: &SegmentData, field: FieldId, pos: usize) -> Option<&FieldColumn> {
    match data.columns.get(pos) {
        Some(c) if c.field_id == field => Some(c),
        _ => data.column(field),
    }
}

fn is_valid(col: &FieldColumn, row: usize) -> bool {
    col.valid
        .as_ref()
        .is_none_or(|v| v.get(row).copied().unwrap_or(false))
}

/// Parses the JSON document of `field` at `row` (`None` when null or unparsable).
pub(super) fn load_doc(
    data: &SegmentData,
    field: FieldId,
    pos: usize,
    row: usize,
) -> Option<serde_json::Value> {
    let col = find_column(data, field, pos)?;
    if !is_valid(col, row) {
        return None;
    }
    match &col.data {
        ColumnData::Json(docs) => serde_json::from_str(docs.get(row)?).ok(),
        _ => None,
    }
}

fn column_value<'a>(ctx: &Ctx<'a>, field: FieldId, pos: usize) -> Datum<'a> {
    let Some(col) = find_column(ctx.data, field, pos) else {
        return Datum::Null;
    };
    let row = ctx.row;
    if !is_valid(col, row) {
        return Datum::Null;
    }
    let value = match &col.data {
        ColumnData::Bool(v) => v.get(row).map(|&b| Datum::Bool(b)),
        ColumnData::Int8(v) => v.get(row).map(|&x| Datum::Int(i64::from(x))),
        ColumnData::Int16(v) => v.get(row).map(|&x| Datum::Int(i64::from(x))),
        ColumnData::Int32(v) => v.get(row).map(|&x| Datum::Int(i64::from(x))),
        ColumnData::Int64(v) => v.get(row).map(|&x| Datum::Int(x)),
        ColumnData::Float(v) => v.get(row).map(|&x| Datum::Float(f64::from(x))),
        ColumnData::Double(v) => v.get(row).map(|&x| Datum::Float(x)),
        ColumnData::VarChar(v) => v.get(row).map(|s| Datum::Str(s.as_str())),
        ColumnData::Json(_) | ColumnData::FloatVector { .. } => None,
    };
    value.unwrap_or(Datum::Null)
}

/// Follows a JSON path. A string key on an array reads an index and an integer on an
/// object reads that key, as a JSON pointer would.
fn json_value<'a>(ctx: &Ctx<'a>, doc: usize, path: &[PathElem]) -> Datum<'a> {
    let Some(mut cur) = ctx.docs.get(doc).and_then(Option::as_ref) else {
        return Datum::Null;
    };
    for step in path {
        let next = match (cur, step) {
            (serde_json::Value::Object(m), PathElem::Key(k)) => m.get(k),
            (serde_json::Value::Object(m), PathElem::Index(i)) => m.get(&i.to_string()),
            (serde_json::Value::Array(a), PathElem::Index(i)) => {
                usize::try_from(*i).ok().and_then(|i| a.get(i))
            }
            (serde_json::Value::Array(a), PathElem::Key(k)) => {
                k.parse::<usize>().ok().and_then(|i| a.get(i))
            }
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return Datum::Null,
        }
    }
    Datum::from_json(cur)
}

fn all_of<'a>(items: &'a [Node], ctx: &Ctx<'a>) -> Datum<'static> {
    let mut unknown = false;
    for item in items {
        match item.eval(ctx) {
            Datum::Bool(true) => {}
            Datum::Bool(false) => return Datum::Bool(false),
            _ => unknown = true,
        }
    }
    if unknown {
        Datum::Null
    } else {
        Datum::Bool(true)
    }
}

fn any_of<'a>(items: &'a [Node], ctx: &Ctx<'a>) -> Datum<'static> {
    let mut unknown = false;
    for item in items {
        match item.eval(ctx) {
            Datum::Bool(true) => return Datum::Bool(true),
            Datum::Bool(false) => {}
            _ => unknown = true,
        }
    }
    if unknown {
        Datum::Null
    } else {
        Datum::Bool(false)
    }
}

fn both(a: Datum<'_>, b: Datum<'_>) -> Datum<'static> {
    match (a, b) {
        (Datum::Bool(false), _) | (_, Datum::Bool(false)) => Datum::Bool(false),
        (Datum::Bool(true), Datum::Bool(true)) => Datum::Bool(true),
        _ => Datum::Null,
    }
}

/// Compares an integer with a float exactly (no rounding of large integers).
fn cmp_int_float(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    if f >= TWO_POW_63 {
        return Some(Ordering::Less);
    }
    if f < -TWO_POW_63 {
        return Some(Ordering::Greater);
    }
    let t = f.trunc();
    // `t` is integral and inside the Int64 range here, so the cast is exact.
    match i.cmp(&(t as i64)) {
        Ordering::Equal => t.partial_cmp(&f),
        other => Some(other),
    }
}

/// The integer a float is exactly equal to, if any.
pub(super) fn float_as_int(f: f64) -> Option<i64> {
    if f.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&f) {
        Some(f as i64)
    } else {
        None
    }
}

/// Equality of two values: `None` when unknown (a null, or values of different
/// kinds such as a string and a number).
fn equal(a: Datum<'_>, b: Datum<'_>) -> Option<bool> {
    match (a, b) {
        (Datum::Null, _) | (_, Datum::Null) => None,
        (Datum::Int(x), Datum::Int(y)) => Some(x == y),
        (Datum::Int(x), Datum::Float(y)) | (Datum::Float(y), Datum::Int(x)) => {
            Some(cmp_int_float(x, y) == Some(Ordering::Equal))
        }
        (Datum::Float(x), Datum::Float(y)) => Some(x == y),
        (Datum::Str(x), Datum::Str(y)) => Some(x == y),
        (Datum::Bool(x), Datum::Bool(y)) => Some(x == y),
        (Datum::Json(_) | Datum::List(_), Datum::Json(_) | Datum::List(_)) => {
            Some(composite_eq(a, b))
        }
        _ => None,
    }
}

/// Order of two numbers or two strings; `None` otherwise.
fn order(a: Datum<'_>, b: Datum<'_>) -> Option<Ordering> {
    match (a, b) {
        (Datum::Int(x), Datum::Int(y)) => Some(x.cmp(&y)),
        (Datum::Int(x), Datum::Float(y)) => cmp_int_float(x, y),
        (Datum::Float(x), Datum::Int(y)) => cmp_int_float(y, x).map(Ordering::reverse),
        (Datum::Float(x), Datum::Float(y)) => x.partial_cmp(&y),
        (Datum::Str(x), Datum::Str(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

pub(super) fn compare(op: CmpOp, a: Datum<'_>, b: Datum<'_>) -> Datum<'static> {
    let result = match op {
        CmpOp::Eq => equal(a, b),
        CmpOp::Ne => equal(a, b).map(|e| !e),
        CmpOp::Lt => order(a, b).map(|o| o == Ordering::Less),
        CmpOp::Le => order(a, b).map(|o| o != Ordering::Greater),
        CmpOp::Gt => order(a, b).map(|o| o == Ordering::Greater),
        CmpOp::Ge => order(a, b).map(|o| o != Ordering::Less),
    };
    result.map_or(Datum::Null, Datum::Bool)
}

/// Structural equality used inside arrays and objects: nulls equal nulls, numbers
/// compare numerically.
fn structural_eq(a: Datum<'_>, b: Datum<'_>) -> bool {
    match (a, b) {
        (Datum::Null, Datum::Null) => true,
        (Datum::Json(_) | Datum::List(_), Datum::Json(_) | Datum::List(_)) => composite_eq(a, b),
        _ => equal(a, b) == Some(true),
    }
}

fn composite_eq(a: Datum<'_>, b: Datum<'_>) -> bool {
    if let (Datum::Json(serde_json::Value::Object(x)), Datum::Json(serde_json::Value::Object(y))) =
        (a, b)
    {
        return x.len() == y.len()
            && x.iter().all(|(k, v)| {
                y.get(k)
                    .is_some_and(|w| structural_eq(Datum::from_json(v), Datum::from_json(w)))
            });
    }
    match (array_items(a), array_items(b)) {
        (Some(x), Some(y)) => {
            x.len() == y.len() && x.into_iter().zip(y).all(|(p, q)| structural_eq(p, q))
        }
        _ => false,
    }
}

/// The elements of an array value.
fn array_items(d: Datum<'_>) -> Option<Vec<Datum<'_>>> {
    match d {
        Datum::Json(serde_json::Value::Array(items)) => {
            Some(items.iter().map(Datum::from_json).collect())
        }
        Datum::List(items) => Some(items.iter().map(Datum::from_value).collect()),
        _ => None,
    }
}

fn contains(mode: ContainsMode, d: Datum<'_>, values: &[Value]) -> Datum<'static> {
    let Some(items) = array_items(d) else {
        return Datum::Null;
    };
    let has = |v: &Value| {
        let v = Datum::from_value(v);
        items.iter().any(|&e| structural_eq(e, v))
    };
    Datum::Bool(match mode {
        ContainsMode::Any => values.iter().any(has),
        ContainsMode::All => values.iter().all(has),
    })
}

/// Arithmetic. Integers stay integers (`/` truncates toward zero, `%` takes the sign
/// of the dividend); overflow and division or modulo by zero give null; `**` is
/// always a float.
fn arith(op: ArithOp, a: Datum<'_>, b: Datum<'_>) -> Datum<'static> {
    match (a, b) {
        (Datum::Int(x), Datum::Int(y)) => int_arith(op, x, y),
        (Datum::Int(x), Datum::Float(y)) => float_arith(op, x as f64, y),
        (Datum::Float(x), Datum::Int(y)) => float_arith(op, x, y as f64),
        (Datum::Float(x), Datum::Float(y)) => float_arith(op, x, y),
        _ => Datum::Null,
    }
}

fn int_arith(op: ArithOp, x: i64, y: i64) -> Datum<'static> {
    let r = match op {
        ArithOp::Add => x.checked_add(y),
        ArithOp::Sub => x.checked_sub(y),
        ArithOp::Mul => x.checked_mul(y),
        ArithOp::Div => x.checked_div(y),
        ArithOp::Mod => x.checked_rem(y),
        ArithOp::Pow => return float_arith(op, x as f64, y as f64),
    };
    r.map_or(Datum::Null, Datum::Int)
}

fn float_arith(op: ArithOp, x: f64, y: f64) -> Datum<'static> {
    let r = match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div | ArithOp::Mod if y == 0.0 => return Datum::Null,
        ArithOp::Div => x / y,
        ArithOp::Mod => x % y,
        ArithOp::Pow => x.powf(y),
    };
    Datum::Float(r)
}

#[cfg(test)]
mod tests;
