//! The parsed form of a filter: the [`Expr`] tree, its operators, and how a node is
//! built with its height so no tree grows deeper than [`MAX_DEPTH`].

use super::{ExprError, MAX_DEPTH};

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    /// 1-based character column of the node: where a literal or name starts, or the
    /// operator of an operation.
    pub column: usize,
    pub(super) height: usize,
}

impl Expr {
    /// Height of the tree under this node (a literal has height 1).
    pub fn height(&self) -> usize {
        self.height
    }
}

/// The shape of an [`Expr`].
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `[a, b, ...]`.
    Array(Vec<Expr>),
    /// `{name}`, replaced by a parameter value when compiled.
    Template(String),
    /// A schema field, `$meta`, or a dynamic-field name, with an optional JSON path.
    Field {
        name: String,
        path: Vec<PathElem>,
    },
    Unary {
        op: UnaryOp,
        expr: Box<Expr>,
    },
    Arith {
        op: ArithOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Cmp {
        op: CmpOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `lower lower_op expr upper_op upper`, e.g. `1 < x <= 5` or `5 > x >= 1`.
    Range {
        lower: Box<Expr>,
        lower_op: CmpOp,
        expr: Box<Expr>,
        upper_op: CmpOp,
        upper: Box<Expr>,
    },
    /// A chain `a and b and ...`, flattened.
    And(Vec<Expr>),
    /// A chain `a or b or ...`, flattened.
    Or(Vec<Expr>),
    In {
        expr: Box<Expr>,
        list: Box<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
    },
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    /// A function call; `name` is in lower case.
    Call {
        name: String,
        args: Vec<Expr>,
    },
}

/// One step of a JSON path: `["key"]` or `[0]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PathElem {
    Key(String),
    Index(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum UnaryOp {
    Plus,
    Neg,
    Not,
    BitNot,
}

impl UnaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            UnaryOp::Plus => "+",
            UnaryOp::Neg => "-",
            UnaryOp::Not => "not",
            UnaryOp::BitNot => "~",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl ArithOp {
    pub fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Mod => "%",
            ArithOp::Pow => "**",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// `< <= > >=`.
    pub fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }

    pub(super) fn is_ascending(self) -> bool {
        matches!(self, CmpOp::Lt | CmpOp::Le)
    }
}

pub(super) fn too_deep(column: usize) -> ExprError {
    ExprError::new(
        column,
        format!("the expression is nested too deeply (the limit is {MAX_DEPTH} levels)"),
    )
}

fn child_height(kind: &ExprKind) -> usize {
    fn h(e: &Expr) -> usize {
        e.height
    }
    match kind {
        ExprKind::Bool(_)
        | ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Str(_)
        | ExprKind::Template(_)
        | ExprKind::Field { .. } => 0,
        ExprKind::Array(v)
        | ExprKind::And(v)
        | ExprKind::Or(v)
        | ExprKind::Call { args: v, .. } => v.iter().map(h).max().unwrap_or(0),
        ExprKind::Unary { expr, .. } | ExprKind::IsNull { expr, .. } => h(expr),
        ExprKind::Arith { lhs, rhs, .. } | ExprKind::Cmp { lhs, rhs, .. } => h(lhs).max(h(rhs)),
        ExprKind::In {
            expr: lhs,
            list: rhs,
            ..
        }
        | ExprKind::Like {
            expr: lhs,
            pattern: rhs,
        } => h(lhs).max(h(rhs)),
        ExprKind::Range {
            lower, expr, upper, ..
        } => h(lower).max(h(expr)).max(h(upper)),
    }
}

/// Builds a node, refusing trees taller than [`MAX_DEPTH`] (so that compiling,
/// evaluating and dropping them cannot exhaust the stack).
pub(super) fn mk(kind: ExprKind, column: usize) -> Result<Expr, ExprError> {
    let height = 1 + child_height(&kind);
    if height > MAX_DEPTH {
        return Err(too_deep(column));
    }
    Ok(Expr {
        kind,
        column,
        height,
    })
}

pub(super) fn leaf(kind: ExprKind, column: usize) -> Expr {
    Expr {
        kind,
        column,
        height: 1,
    }
}
