//! The parser: tokens to an [`Expr`] tree, with Milvus's operator precedence.
//!
//! Precedence, highest first: `**`; unary `+ - not ! ~`; `* / %`; `+ -`;
//! `in` / `not in`; `< <= > >=` (and range chains `1 < x <= 5`); `== !=`; `and`;
//! `or`. `like` and `is [not] null` are postfix and bind tightest, as in Milvus.

use super::ast::{leaf, mk, too_deep, ArithOp, CmpOp, Expr, ExprKind, PathElem, UnaryOp};
use super::lexer::{tokenize, Tok, Token};
use super::{ExprError, MAX_DEPTH, MAX_SOURCE_LEN};

/// Functions Milvus has that Quiver does not implement yet (a clearer error than
/// "unknown function").
const UNSUPPORTED_FUNCTIONS: &[&str] = &[
    "text_match",
    "phrase_match",
    "random_sample",
    "element_filter",
    "match_all",
    "match_any",
    "match_least",
    "match_most",
    "match_exact",
    "st_equals",
    "st_touches",
    "st_overlaps",
    "st_crosses",
    "st_contains",
    "st_intersects",
    "st_within",
    "st_dwithin",
    "st_isvalid",
    "exists",
];

fn function_arity(name: &str) -> Option<usize> {
    match name {
        "json_contains" | "json_contains_all" | "json_contains_any" | "array_contains"
        | "array_contains_all" | "array_contains_any" => Some(2),
        "array_length" => Some(1),
        _ => None,
    }
}

/// Parses a filter expression. The source must not be empty; see
/// [`super::compile()`] for the "empty filter matches everything" rule.
pub fn parse(src: &str) -> Result<Expr, ExprError> {
    if src.len() > MAX_SOURCE_LEN {
        return Err(ExprError::new(
            1,
            format!(
                "the filter expression is too long ({} bytes; the limit is {MAX_SOURCE_LEN})",
                src.len()
            ),
        ));
    }
    let mut p = Parser {
        toks: tokenize(src)?,
        pos: 0,
        depth: 0,
    };
    if p.at(&Tok::Eof) {
        return Err(ExprError::new(1, "the filter expression is empty"));
    }
    let e = p.binary(0)?;
    if !p.at(&Tok::Eof) {
        return Err(p.unexpected("an operator or the end of the expression"));
    }
    Ok(e)
}

/// A binary operator as seen by the precedence climber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Infix {
    Or,
    And,
    Cmp(CmpOp),
    In { negated: bool },
    Arith(ArithOp),
    Unsupported(&'static str),
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    /// Current recursion depth (nested unary operators, parentheses, arrays, calls).
    depth: usize,
}

impl Parser {
    fn peek_at(&self, n: usize) -> &Tok {
        let i = (self.pos + n).min(self.toks.len() - 1);
        &self.toks[i].tok
    }

    fn peek(&self) -> &Tok {
        self.peek_at(0)
    }

    fn at(&self, t: &Tok) -> bool {
        self.peek() == t
    }

    fn column(&self) -> usize {
        self.toks[self.pos.min(self.toks.len() - 1)].column
    }

    /// Takes the current token (the trailing end-of-input token is never passed).
    fn bump(&mut self) -> Tok {
        let i = self.pos.min(self.toks.len() - 1);
        if i + 1 < self.toks.len() {
            self.pos = i + 1;
        }
        std::mem::replace(&mut self.toks[i].tok, Tok::Eof)
    }

    fn unexpected(&self, expected: &str) -> ExprError {
        ExprError::new(
            self.column(),
            format!("unexpected {}, expected {expected}", self.peek().describe()),
        )
    }

    fn expect(&mut self, t: &Tok, what: &str) -> Result<(), ExprError> {
        if self.at(t) {
            self.bump();
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn infix(&self) -> Option<(u8, Infix)> {
        let r = match self.peek() {
            // Operators Milvus has but Quiver does not: precedence 0 so the outermost
            // loop reports them.
            Tok::Amp => (0, Infix::Unsupported("&")),
            Tok::Pipe => (0, Infix::Unsupported("|")),
            Tok::Caret => (0, Infix::Unsupported("^")),
            Tok::Shl => (0, Infix::Unsupported("<<")),
            Tok::Shr => (0, Infix::Unsupported(">>")),
            Tok::Or => (1, Infix::Or),
            Tok::And => (2, Infix::And),
            Tok::Eq => (3, Infix::Cmp(CmpOp::Eq)),
            Tok::Ne => (3, Infix::Cmp(CmpOp::Ne)),
            Tok::Lt => (4, Infix::Cmp(CmpOp::Lt)),
            Tok::Le => (4, Infix::Cmp(CmpOp::Le)),
            Tok::Gt => (4, Infix::Cmp(CmpOp::Gt)),
            Tok::Ge => (4, Infix::Cmp(CmpOp::Ge)),
            Tok::In => (5, Infix::In { negated: false }),
            Tok::Not if matches!(self.peek_at(1), Tok::In) => (5, Infix::In { negated: true }),
            Tok::Plus => (6, Infix::Arith(ArithOp::Add)),
            Tok::Minus => (6, Infix::Arith(ArithOp::Sub)),
            Tok::Star => (7, Infix::Arith(ArithOp::Mul)),
            Tok::Slash => (7, Infix::Arith(ArithOp::Div)),
            Tok::Percent => (7, Infix::Arith(ArithOp::Mod)),
            _ => return None,
        };
        Some(r)
    }

    fn ordering_op(&self) -> Option<CmpOp> {
        match self.peek() {
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Ge => Some(CmpOp::Ge),
            _ => None,
        }
    }

    /// Precedence climbing over the binary operators.
    fn binary(&mut self, min_prec: u8) -> Result<Expr, ExprError> {
        let mut lhs = self.unary()?;
        while let Some((prec, op)) = self.infix() {
            if prec < min_prec {
                break;
            }
            let column = self.column();
            lhs = match op {
                Infix::Unsupported(sym) => {
                    return Err(ExprError::new(
                        column,
                        format!("operator \"{sym}\" is not supported"),
                    ))
                }
                Infix::Or | Infix::And => self.logical(lhs, op, prec, column)?,
                Infix::Cmp(first) if first.is_ordering() => {
                    self.ordering(lhs, first, prec, column)?
                }
                Infix::Cmp(op) => {
                    let rhs = self.right_operand(prec)?;
                    let (lhs, rhs) = (Box::new(lhs), Box::new(rhs));
                    mk(ExprKind::Cmp { op, lhs, rhs }, column)?
                }
                Infix::In { negated } => {
                    if negated {
                        self.bump();
                    }
                    let list = Box::new(self.right_operand(prec)?);
                    let expr = Box::new(lhs);
                    mk(
                        ExprKind::In {
                            expr,
                            list,
                            negated,
                        },
                        column,
                    )?
                }
                Infix::Arith(op) => {
                    let rhs = self.right_operand(prec)?;
                    let (lhs, rhs) = (Box::new(lhs), Box::new(rhs));
                    mk(ExprKind::Arith { op, lhs, rhs }, column)?
                }
            };
        }
        Ok(lhs)
    }

    /// Takes the operator and parses its right operand, which binds tighter.
    fn right_operand(&mut self, prec: u8) -> Result<Expr, ExprError> {
        self.bump();
        self.binary(prec + 1)
    }

    /// A chain of `or` (or of `and`), flattened into one node.
    fn logical(
        &mut self,
        first: Expr,
        op: Infix,
        prec: u8,
        column: usize,
    ) -> Result<Expr, ExprError> {
        let mut items = vec![first];
        while self.infix().map(|(_, o)| o) == Some(op) {
            items.push(self.right_operand(prec)?);
        }
        let kind = if op == Infix::Or {
            ExprKind::Or(items)
        } else {
            ExprKind::And(items)
        };
        mk(kind, column)
    }

    /// `a < b`, or a range `lo < x <= hi` when a second ordering follows.
    fn ordering(
        &mut self,
        lhs: Expr,
        first: CmpOp,
        prec: u8,
        column: usize,
    ) -> Result<Expr, ExprError> {
        let mid = self.right_operand(prec)?;
        let Some(second) = self.ordering_op() else {
            let (lhs, rhs) = (Box::new(lhs), Box::new(mid));
            return mk(
                ExprKind::Cmp {
                    op: first,
                    lhs,
                    rhs,
                },
                column,
            );
        };
        if first.is_ascending() != second.is_ascending() {
            return Err(ExprError::new(
                self.column(),
                format!(
                    "invalid range: \"{}\" cannot follow \"{}\"; write lo < x < hi or hi > x > lo",
                    second.symbol(),
                    first.symbol()
                ),
            ));
        }
        let upper = self.right_operand(prec)?;
        if self.ordering_op().is_some() {
            return Err(ExprError::new(
                self.column(),
                "a range chains at most two comparisons (lo < x < hi)",
            ));
        }
        let kind = ExprKind::Range {
            lower: Box::new(lhs),
            lower_op: first,
            expr: Box::new(mid),
            upper_op: second,
            upper: Box::new(upper),
        };
        mk(kind, column)
    }

    /// Unary operators; every nesting level passes through here, so this is where
    /// recursion depth is bounded.
    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.depth >= MAX_DEPTH {
            return Err(too_deep(self.column()));
        }
        self.depth += 1;
        let result = self.unary_inner();
        self.depth -= 1;
        result
    }

    fn unary_inner(&mut self) -> Result<Expr, ExprError> {
        let column = self.column();
        let op = match self.peek() {
            Tok::Plus => UnaryOp::Plus,
            Tok::Minus => UnaryOp::Neg,
            Tok::Not => UnaryOp::Not,
            Tok::Tilde => UnaryOp::BitNot,
            _ => return self.power(),
        };
        self.bump();
        // -9223372036854775808 is an Int64 literal although its magnitude is not.
        let is_min = op == UnaryOp::Neg
            && matches!(self.peek(), Tok::Int(v) if *v == 1u64 << 63)
            && !matches!(self.peek_at(1), Tok::Pow);
        if is_min {
            self.bump();
            return Ok(leaf(ExprKind::Int(i64::MIN), column));
        }
        let operand = self.unary()?;
        mk(
            ExprKind::Unary {
                op,
                expr: Box::new(operand),
            },
            column,
        )
    }

    /// `base ** exponent`, right-associative; the exponent may carry a sign.
    fn power(&mut self) -> Result<Expr, ExprError> {
        let base = self.postfix()?;
        if !self.at(&Tok::Pow) {
            return Ok(base);
        }
        let column = self.column();
        self.bump();
        let exponent = self.unary()?;
        mk(
            ExprKind::Arith {
                op: ArithOp::Pow,
                lhs: Box::new(base),
                rhs: Box::new(exponent),
            },
            column,
        )
    }

    /// A primary followed by JSON subscripts, then an optional `like "pattern"` or
    /// `is [not] null`.
    fn postfix(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.primary()?;
        if let ExprKind::Field { path, .. } = &mut e.kind {
            while matches!(self.peek(), Tok::LBracket) {
                self.bump();
                let column = self.column();
                let elem = match self.bump() {
                    Tok::Str(s) => PathElem::Key(s),
                    Tok::Int(v) => match i64::try_from(v) {
                        Ok(i) => PathElem::Index(i),
                        Err(_) => return Err(ExprError::new(column, "the index is out of range")),
                    },
                    other => {
                        return Err(ExprError::new(
                            column,
                            format!(
                                "unexpected {}, expected a string key or an integer index",
                                other.describe()
                            ),
                        ))
                    }
                };
                path.push(elem);
                self.expect(&Tok::RBracket, "\"]\"")?;
            }
        }
        match self.peek() {
            Tok::Like => {
                let column = self.column();
                self.bump();
                let pattern_column = self.column();
                let pattern = match self.bump() {
                    Tok::Str(s) => leaf(ExprKind::Str(s), pattern_column),
                    Tok::LBrace => self.template(pattern_column)?,
                    other => {
                        return Err(ExprError::new(
                            pattern_column,
                            format!("unexpected {}, expected a string pattern", other.describe()),
                        ))
                    }
                };
                mk(
                    ExprKind::Like {
                        expr: Box::new(e),
                        pattern: Box::new(pattern),
                    },
                    column,
                )
            }
            Tok::Is => {
                let column = self.column();
                self.bump();
                let negated = self.at(&Tok::Not);
                if negated {
                    self.bump();
                }
                self.expect(&Tok::Null, "\"null\"")?;
                if !matches!(e.kind, ExprKind::Field { .. }) {
                    return Err(ExprError::new(
                        column,
                        "\"is null\" applies only to a field or a JSON path",
                    ));
                }
                mk(
                    ExprKind::IsNull {
                        expr: Box::new(e),
                        negated,
                    },
                    column,
                )
            }
            _ => Ok(e),
        }
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let column = self.column();
        match self.bump() {
            Tok::Int(v) => match i64::try_from(v) {
                Ok(v) => Ok(leaf(ExprKind::Int(v), column)),
                Err(_) => Err(ExprError::new(
                    column,
                    format!("integer {v} is out of range for Int64"),
                )),
            },
            Tok::Float(v) => Ok(leaf(ExprKind::Float(v), column)),
            Tok::Str(s) => Ok(leaf(ExprKind::Str(s), column)),
            Tok::Bool(b) => Ok(leaf(ExprKind::Bool(b), column)),
            Tok::Ident(name) => {
                if self.at(&Tok::LParen) {
                    return self.call(name, column);
                }
                if (name == "exists" || name == "EXISTS") && matches!(self.peek(), Tok::Ident(_)) {
                    return Err(ExprError::new(column, "\"exists\" is not supported"));
                }
                Ok(leaf(
                    ExprKind::Field {
                        name,
                        path: Vec::new(),
                    },
                    column,
                ))
            }
            Tok::LParen => {
                let e = self.binary(0)?;
                self.expect(&Tok::RParen, "\")\"")?;
                Ok(e)
            }
            Tok::LBracket => self.array(column),
            Tok::LBrace => self.template(column),
            other => Err(ExprError::new(
                column,
                format!("unexpected {}, expected an expression", other.describe()),
            )),
        }
    }

    /// `[a, b, ...]` after the opening bracket; a trailing comma is allowed.
    fn array(&mut self, column: usize) -> Result<Expr, ExprError> {
        let mut items = Vec::new();
        loop {
            if self.at(&Tok::RBracket) {
                self.bump();
                break;
            }
            items.push(self.binary(0)?);
            match self.peek() {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RBracket => {
                    self.bump();
                    break;
                }
                _ => return Err(self.unexpected("\",\" or \"]\"")),
            }
        }
        mk(ExprKind::Array(items), column)
    }

    /// `{name}` after the opening brace.
    fn template(&mut self, column: usize) -> Result<Expr, ExprError> {
        let name_column = self.column();
        let name = match self.bump() {
            Tok::Ident(n) => n,
            other => {
                return Err(ExprError::new(
                    name_column,
                    format!("unexpected {}, expected a template name", other.describe()),
                ))
            }
        };
        self.expect(&Tok::RBrace, "\"}\"")?;
        Ok(leaf(ExprKind::Template(name), column))
    }

    /// `name(args)`; the current token is the opening parenthesis.
    fn call(&mut self, name: String, column: usize) -> Result<Expr, ExprError> {
        let lower = name.to_ascii_lowercase();
        let case_ok = name == lower || name == name.to_ascii_uppercase();
        let arity = if case_ok {
            function_arity(&lower)
        } else {
            None
        };
        let Some(arity) = arity else {
            let message = if case_ok && UNSUPPORTED_FUNCTIONS.contains(&lower.as_str()) {
                format!("function \"{name}\" is not supported")
            } else {
                format!("unknown function \"{name}\"")
            };
            return Err(ExprError::new(column, message));
        };
        self.bump();
        let mut args = Vec::new();
        while !self.at(&Tok::RParen) {
            args.push(self.binary(0)?);
            if self.at(&Tok::Comma) {
                self.bump();
            } else if !self.at(&Tok::RParen) {
                return Err(self.unexpected("\",\" or \")\""));
            }
        }
        self.bump();
        if args.len() != arity {
            let plural = if arity == 1 { "" } else { "s" };
            return Err(ExprError::new(
                column,
                format!(
                    "function {lower} takes {arity} argument{plural}, got {}",
                    args.len()
                ),
            ));
        }
        mk(ExprKind::Call { name: lower, args }, column)
    }
}

#[cfg(test)]
mod tests;
