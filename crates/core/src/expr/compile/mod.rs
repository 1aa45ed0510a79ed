//! Type-checking an [`Expr`] against a collection schema and lowering it to a
//! [`Node`] tree: names resolve to columns (or to paths in the dynamic field),
//! templates to their values, and constant sub-expressions fold.

use std::collections::BTreeMap;

use crate::ids::FieldId;
use crate::schema::{CollectionSchema, DataType};

use super::ast::{ArithOp, CmpOp, Expr, ExprKind, PathElem, UnaryOp};
use super::eval::{ContainsMode, InSet, LikePattern, Node};
use super::{ExprError, Value};

mod types;

use types::{
    check_comparison, comparable, constant, describe, display_path, need_array, Ty, Typed,
};

/// A lowered filter and the JSON columns it reads.
pub(super) struct Lowered {
    pub(super) root: Node,
    /// `(field, position in the schema)` of each JSON column read; `Node::Json::doc`
    /// indexes this list.
    pub(super) json_fields: Vec<(FieldId, usize)>,
}

pub(super) fn lower(
    expr: &Expr,
    schema: &CollectionSchema,
    params: &BTreeMap<String, Value>,
) -> Result<Lowered, ExprError> {
    let mut c = Compiler {
        schema,
        params,
        json_fields: Vec::new(),
    };
    let t = c.expr(expr)?;
    if !t.ty.maybe_bool() {
        return Err(ExprError::new(
            expr.column,
            format!(
                "a filter must be a boolean expression, not {}",
                t.describe()
            ),
        ));
    }
    Ok(Lowered {
        root: t.node,
        json_fields: c.json_fields,
    })
}

struct Compiler<'s> {
    schema: &'s CollectionSchema,
    params: &'s BTreeMap<String, Value>,
    json_fields: Vec<(FieldId, usize)>,
}

impl Compiler<'_> {
    fn expr(&mut self, e: &Expr) -> Result<Typed, ExprError> {
        match &e.kind {
            ExprKind::Bool(b) => Ok(constant(Value::Bool(*b))),
            ExprKind::Int(i) => Ok(constant(Value::Int(*i))),
            ExprKind::Float(f) => Ok(constant(Value::Float(*f))),
            ExprKind::Str(s) => Ok(constant(Value::Str(s.clone()))),
            ExprKind::Array(items) => self.array(items),
            ExprKind::Template(name) => match self.params.get(name) {
                Some(v) => Ok(constant(v.clone().normalized())),
                None => Err(ExprError::new(
                    e.column,
                    format!("template parameter {{{name}}} has no value"),
                )),
            },
            ExprKind::Field { name, path } => self.field(name, path, e.column),
            ExprKind::Unary { op, expr } => self.unary(*op, expr),
            ExprKind::Arith { op, lhs, rhs } => self.arith(*op, lhs, rhs),
            ExprKind::Cmp { op, lhs, rhs } => self.comparison(*op, lhs, rhs),
            ExprKind::Range {
                lower,
                lower_op,
                expr,
                upper_op,
                upper,
            } => self.range(lower, *lower_op, expr, *upper_op, upper),
            ExprKind::And(items) => self.logical(items, true),
            ExprKind::Or(items) => self.logical(items, false),
            ExprKind::In {
                expr,
                list,
                negated,
            } => self.in_list(expr, list, *negated),
            ExprKind::Like { expr, pattern } => self.like(expr, pattern),
            ExprKind::IsNull { expr, negated } => {
                let t = self.expr(expr)?;
                Ok(Typed::computed(
                    Node::IsNull {
                        expr: Box::new(t.node),
                        negated: *negated,
                    },
                    Ty::Bool,
                ))
            }
            ExprKind::Call { name, args } => self.call(name, args, e.column),
        }
    }

    /// The index of a JSON column in the row's parsed documents.
    fn doc(&mut self, field: FieldId, pos: usize) -> usize {
        if let Some(i) = self.json_fields.iter().position(|&(f, _)| f == field) {
            return i;
        }
        self.json_fields.push((field, pos));
        self.json_fields.len() - 1
    }

    fn array(&mut self, items: &[Expr]) -> Result<Typed, ExprError> {
        let mut values = Vec::with_capacity(items.len());
        for item in items {
            match self.expr(item)?.node {
                Node::Const(v) => values.push(v),
                _ => {
                    return Err(ExprError::new(
                        item.column,
                        "array elements must be constants",
                    ))
                }
            }
        }
        Ok(constant(Value::Array(values)))
    }

    fn field(&mut self, name: &str, path: &[PathElem], column: usize) -> Result<Typed, ExprError> {
        let schema = self.schema;
        if let Some(f) = schema.field(name) {
            let pos = schema.position(f.id).unwrap_or(usize::MAX);
            let ty = match f.data_type {
                DataType::Bool => Ty::Bool,
                DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => Ty::Int,
                DataType::Float | DataType::Double => Ty::Float,
                DataType::VarChar { .. } => Ty::Str,
                DataType::Json => {
                    let doc = self.doc(f.id, pos);
                    return Ok(Typed {
                        node: Node::Json {
                            doc,
                            path: path.to_vec(),
                        },
                        ty: Ty::Json,
                        field: Some((display_path(name, path), "JSON")),
                    });
                }
                DataType::FloatVector { .. } => {
                    return Err(ExprError::new(
                        column,
                        format!("vector field \"{name}\" cannot be used in a filter expression"),
                    ))
                }
            };
            if !path.is_empty() {
                return Err(ExprError::new(
                    column,
                    format!(
                        "field \"{name}\" of type {} is not JSON and cannot be indexed",
                        f.data_type.name()
                    ),
                ));
            }
            return Ok(Typed {
                node: Node::Column { field: f.id, pos },
                ty,
                field: Some((format!("{name:?}"), f.data_type.name())),
            });
        }
        // A name that is not a field is a key of the dynamic field, if there is one.
        let dynamic = if schema.enable_dynamic_field {
            schema.dynamic_field()
        } else {
            None
        };
        let Some(meta) = dynamic else {
            return Err(ExprError::new(
                column,
                format!("field \"{name}\" does not exist"),
            ));
        };
        let pos = schema.position(meta.id).unwrap_or(usize::MAX);
        let doc = self.doc(meta.id, pos);
        let full: Vec<PathElem> = std::iter::once(PathElem::Key(name.to_string()))
            .chain(path.iter().cloned())
            .collect();
        Ok(Typed {
            node: Node::Json { doc, path: full },
            ty: Ty::Json,
            field: Some((display_path(name, path), "JSON")),
        })
    }

    fn unary(&mut self, op: UnaryOp, e: &Expr) -> Result<Typed, ExprError> {
        let t = self.expr(e)?;
        match op {
            UnaryOp::Not => {
                if !t.ty.maybe_bool() {
                    return Err(ExprError::new(
                        e.column,
                        format!(
                            "the operand of \"not\" must be boolean, not {} (\"not\" binds tighter than comparisons: write not (a == b))",
                            t.describe()
                        ),
                    ));
                }
                Ok(Typed::computed(Node::Not(Box::new(t.node)), Ty::Bool))
            }
            UnaryOp::Plus | UnaryOp::Neg => {
                if !t.ty.maybe_number() {
                    return Err(ExprError::new(
                        e.column,
                        format!(
                            "unary \"{}\" needs a number, not {}",
                            op.symbol(),
                            t.describe()
                        ),
                    ));
                }
                if op == UnaryOp::Plus {
                    return Ok(t);
                }
                let ty = t.ty;
                Ok(Typed::computed(Node::Neg(Box::new(t.node)), ty))
            }
            UnaryOp::BitNot => {
                if !matches!(t.ty, Ty::Int | Ty::Json | Ty::Null) {
                    return Err(ExprError::new(
                        e.column,
                        format!("\"~\" needs an integer, not {}", t.describe()),
                    ));
                }
                let ty = t.ty;
                Ok(Typed::computed(Node::BitNot(Box::new(t.node)), ty))
            }
        }
    }

    fn arith(&mut self, op: ArithOp, l: &Expr, r: &Expr) -> Result<Typed, ExprError> {
        let a = self.expr(l)?;
        let b = self.expr(r)?;
        for (t, e) in [(&a, l), (&b, r)] {
            if !t.ty.maybe_number() {
                return Err(ExprError::new(
                    e.column,
                    format!(
                        "operator \"{}\" needs numbers, not {}",
                        op.symbol(),
                        t.describe()
                    ),
                ));
            }
        }
        let ty = if a.ty.is_dynamic() || b.ty.is_dynamic() {
            Ty::Json
        } else if op == ArithOp::Pow || a.ty == Ty::Float || b.ty == Ty::Float {
            Ty::Float
        } else {
            Ty::Int
        };
        Ok(Typed::computed(
            Node::Arith {
                op,
                lhs: Box::new(a.node),
                rhs: Box::new(b.node),
            },
            ty,
        ))
    }

    fn comparison(&mut self, op: CmpOp, l: &Expr, r: &Expr) -> Result<Typed, ExprError> {
        let a = self.expr(l)?;
        let b = self.expr(r)?;
        check_comparison(op, (&a, l), (&b, r))?;
        Ok(Typed::computed(
            Node::Cmp {
                op,
                lhs: Box::new(a.node),
                rhs: Box::new(b.node),
            },
            Ty::Bool,
        ))
    }

    fn range(
        &mut self,
        lower: &Expr,
        lower_op: CmpOp,
        mid: &Expr,
        upper_op: CmpOp,
        upper: &Expr,
    ) -> Result<Typed, ExprError> {
        let lo = self.expr(lower)?;
        let m = self.expr(mid)?;
        let hi = self.expr(upper)?;
        check_comparison(lower_op, (&lo, lower), (&m, mid))?;
        check_comparison(upper_op, (&m, mid), (&hi, upper))?;
        Ok(Typed::computed(
            Node::Range {
                lower: Box::new(lo.node),
                lower_op,
                mid: Box::new(m.node),
                upper_op,
                upper: Box::new(hi.node),
            },
            Ty::Bool,
        ))
    }

    fn logical(&mut self, items: &[Expr], is_and: bool) -> Result<Typed, ExprError> {
        let word = if is_and { "and" } else { "or" };
        let mut nodes = Vec::with_capacity(items.len());
        for item in items {
            let t = self.expr(item)?;
            if !t.ty.maybe_bool() {
                return Err(ExprError::new(
                    item.column,
                    format!(
                        "the operands of \"{word}\" must be boolean, not {}",
                        t.describe()
                    ),
                ));
            }
            nodes.push(t.node);
        }
        let node = if is_and {
            Node::And(nodes)
        } else {
            Node::Or(nodes)
        };
        Ok(Typed::computed(node, Ty::Bool))
    }

    fn in_list(&mut self, e: &Expr, list: &Expr, negated: bool) -> Result<Typed, ExprError> {
        let word = if negated { "not in" } else { "in" };
        let a = self.expr(e)?;
        let b = self.expr(list)?;
        let items = match b.node {
            Node::Const(Value::Array(items)) => items,
            _ => {
                return Err(ExprError::new(
                    list.column,
                    format!(
                        "the right side of \"{word}\" must be an array of constants, not {}",
                        describe(b.ty, b.field.as_ref())
                    ),
                ))
            }
        };
        for v in &items {
            let vt = Ty::of(v);
            if !comparable(a.ty, vt) {
                return Err(ExprError::new(
                    list.column,
                    format!(
                        "cannot compare {} with {} in the \"{word}\" list",
                        a.describe(),
                        vt.name()
                    ),
                ));
            }
        }
        Ok(Typed::computed(
            Node::In {
                expr: Box::new(a.node),
                set: Box::new(InSet::new(items)),
                negated,
            },
            Ty::Bool,
        ))
    }

    fn like(&mut self, e: &Expr, pattern: &Expr) -> Result<Typed, ExprError> {
        let a = self.expr(e)?;
        if !matches!(a.ty, Ty::Str | Ty::Json | Ty::Null) {
            return Err(ExprError::new(
                e.column,
                format!("\"like\" matches strings, not {}", a.describe()),
            ));
        }
        let p = self.expr(pattern)?;
        let Node::Const(Value::Str(text)) = p.node else {
            return Err(ExprError::new(
                pattern.column,
                "the pattern of \"like\" must be a string",
            ));
        };
        Ok(Typed::computed(
            Node::Like {
                expr: Box::new(a.node),
                pattern: LikePattern::new(&text),
            },
            Ty::Bool,
        ))
    }

    fn call(&mut self, name: &str, args: &[Expr], column: usize) -> Result<Typed, ExprError> {
        match (name, args) {
            ("array_length", [x]) => {
                let a = self.expr(x)?;
                need_array(name, &a, x)?;
                Ok(Typed::computed(
                    Node::ArrayLength(Box::new(a.node)),
                    Ty::Int,
                ))
            }
            (
                "json_contains" | "array_contains" | "json_contains_all" | "array_contains_all"
                | "json_contains_any" | "array_contains_any",
                [x, v],
            ) => {
                let a = self.expr(x)?;
                need_array(name, &a, x)?;
                let b = self.expr(v)?;
                let Node::Const(value) = b.node else {
                    return Err(ExprError::new(
                        v.column,
                        format!("the second argument of {name} must be a constant"),
                    ));
                };
                let (mode, values) = if name.ends_with("_all") || name.ends_with("_any") {
                    let Value::Array(values) = value else {
                        return Err(ExprError::new(
                            v.column,
                            format!("the second argument of {name} must be an array"),
                        ));
                    };
                    let mode = if name.ends_with("_all") {
                        ContainsMode::All
                    } else {
                        ContainsMode::Any
                    };
                    (mode, values)
                } else {
                    (ContainsMode::Any, vec![value])
                };
                Ok(Typed::computed(
                    Node::Contains {
                        mode,
                        expr: Box::new(a.node),
                        values,
                    },
                    Ty::Bool,
                ))
            }
            _ => Err(ExprError::new(
                column,
                format!("unknown function \"{name}\" or wrong number of arguments"),
            )),
        }
    }
}
