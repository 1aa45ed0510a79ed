//! The compiler's static types ([`Ty`]), a lowered node with its type ([`Typed`]),
//! the type checks shared by several operators, and constant folding.

use super::super::ast::{CmpOp, Expr, PathElem};
use super::super::eval::{Ctx, Node};
use super::super::{ExprError, Value};
use crate::segment::SegmentData;

/// Static types. `Json` (a JSON or dynamic value) and `Null` are known only at run
/// time and are compatible with everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ty {
    Bool,
    Int,
    Float,
    Str,
    Json,
    Array,
    Null,
}

impl Ty {
    pub(super) fn name(self) -> &'static str {
        match self {
            Ty::Bool => "Bool",
            Ty::Int => "Int64",
            Ty::Float => "Double",
            Ty::Str => "VarChar",
            Ty::Json => "JSON",
            Ty::Array => "Array",
            Ty::Null => "null",
        }
    }

    pub(super) fn of(v: &Value) -> Ty {
        match v {
            Value::Null => Ty::Null,
            Value::Bool(_) => Ty::Bool,
            Value::Int(_) => Ty::Int,
            Value::Float(_) => Ty::Float,
            Value::Str(_) => Ty::Str,
            Value::Array(_) => Ty::Array,
            Value::Json(_) => Ty::Json,
        }
    }

    pub(super) fn is_dynamic(self) -> bool {
        matches!(self, Ty::Json | Ty::Null)
    }

    pub(super) fn is_number(self) -> bool {
        matches!(self, Ty::Int | Ty::Float)
    }

    pub(super) fn maybe_bool(self) -> bool {
        self == Ty::Bool || self.is_dynamic()
    }

    pub(super) fn maybe_number(self) -> bool {
        self.is_number() || self.is_dynamic()
    }
}

pub(super) fn comparable(a: Ty, b: Ty) -> bool {
    a.is_dynamic() || b.is_dynamic() || a == b || (a.is_number() && b.is_number())
}

/// A lowered sub-expression with its static type.
pub(super) struct Typed {
    pub(super) node: Node,
    pub(super) ty: Ty,
    /// For a field or JSON path: how to name it and its declared type, for messages.
    pub(super) field: Option<(String, &'static str)>,
}

impl Typed {
    /// A computed (non-field) value, folded when all its inputs are constants.
    pub(super) fn computed(node: Node, ty: Ty) -> Typed {
        Typed {
            node: fold(node),
            ty,
            field: None,
        }
    }

    pub(super) fn describe(&self) -> String {
        describe(self.ty, self.field.as_ref())
    }
}

pub(super) fn describe(ty: Ty, field: Option<&(String, &'static str)>) -> String {
    match field {
        Some((name, declared)) => format!("field {name} of type {declared}"),
        None => ty.name().to_string(),
    }
}

pub(super) fn constant(v: Value) -> Typed {
    let ty = Ty::of(&v);
    Typed {
        node: Node::Const(v),
        ty,
        field: None,
    }
}

/// `name["k"][0]` for messages.
pub(super) fn display_path(name: &str, path: &[PathElem]) -> String {
    let mut s = name.to_string();
    for step in path {
        match step {
            PathElem::Key(k) => s.push_str(&format!("[{k:?}]")),
            PathElem::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Whether every direct input of `node` is a constant (so the node can be folded).
fn foldable(node: &Node) -> bool {
    pub(super) fn c(n: &Node) -> bool {
        matches!(n, Node::Const(_))
    }
    match node {
        Node::Const(_) | Node::Column { .. } | Node::Json { .. } => false,
        Node::Not(e) | Node::Neg(e) | Node::BitNot(e) | Node::ArrayLength(e) => c(e),
        Node::And(items) | Node::Or(items) => items.iter().all(c),
        Node::Cmp { lhs, rhs, .. } | Node::Arith { lhs, rhs, .. } => c(lhs) && c(rhs),
        Node::Range {
            lower, mid, upper, ..
        } => c(lower) && c(mid) && c(upper),
        Node::In { expr, .. }
        | Node::Like { expr, .. }
        | Node::IsNull { expr, .. }
        | Node::Contains { expr, .. } => c(expr),
    }
}

/// Evaluates a node whose inputs are all constants.
fn fold(node: Node) -> Node {
    if !foldable(&node) {
        return node;
    }
    let empty = SegmentData {
        columns: Vec::new(),
        timestamps: Vec::new(),
    };
    let ctx = Ctx {
        data: &empty,
        row: 0,
        docs: &[],
    };
    let value = node.eval(&ctx).to_value();
    Node::Const(value)
}

pub(super) fn need_array(name: &str, t: &Typed, e: &Expr) -> Result<(), ExprError> {
    if matches!(t.ty, Ty::Json | Ty::Array | Ty::Null) {
        Ok(())
    } else {
        Err(ExprError::new(
            e.column,
            format!(
                "{name} needs a JSON field or an array, not {}",
                t.describe()
            ),
        ))
    }
}

/// Checks that `a op b` can be compared; the error points at the field if there is one.
pub(super) fn check_comparison(
    op: CmpOp,
    (a, l): (&Typed, &Expr),
    (b, r): (&Typed, &Expr),
) -> Result<(), ExprError> {
    let column = if a.field.is_none() && b.field.is_some() {
        r.column
    } else {
        l.column
    };
    if !comparable(a.ty, b.ty) {
        return Err(ExprError::new(
            column,
            format!("cannot compare {} with {}", a.describe(), b.describe()),
        ));
    }
    if op.is_ordering() {
        for t in [a, b] {
            if matches!(t.ty, Ty::Bool | Ty::Array) {
                return Err(ExprError::new(
                    column,
                    format!("operator \"{}\" cannot order {}", op.symbol(), t.describe()),
                ));
            }
        }
    }
    Ok(())
}
