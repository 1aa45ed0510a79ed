//! The tokenizer: filter source to tokens, each with its 1-based column (counted in
//! characters, not bytes).

use super::ExprError;

/// One token of the filter language.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// An integer literal; a leading minus is a separate token.
    Int(u64),
    Float(f64),
    Str(String),
    Ident(String),
    Bool(bool),
    And,
    Or,
    Not,
    In,
    Like,
    Is,
    Null,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Pow,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    Tilde,
    Amp,
    Pipe,
    Caret,
    Shl,
    Shr,
    Eof,
}

impl Tok {
    /// How the token is named in error messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Int(v) => format!("number {v}"),
            Tok::Float(v) => format!("number {v}"),
            Tok::Str(s) => format!("string {}", quote_short(s)),
            Tok::Ident(s) => format!("identifier {}", quote_short(s)),
            Tok::Bool(b) => format!("keyword \"{b}\""),
            Tok::And | Tok::Or | Tok::Not | Tok::In | Tok::Like | Tok::Is | Tok::Null => {
                format!("keyword \"{}\"", self.symbol())
            }
            Tok::Eof => "end of input".to_string(),
            _ => format!("\"{}\"", self.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::And => "and",
            Tok::Or => "or",
            Tok::Not => "not",
            Tok::In => "in",
            Tok::Like => "like",
            Tok::Is => "is",
            Tok::Null => "null",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::Comma => ",",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Pow => "**",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Eq => "==",
            Tok::Ne => "!=",
            Tok::Tilde => "~",
            Tok::Amp => "&",
            Tok::Pipe => "|",
            Tok::Caret => "^",
            Tok::Shl => "<<",
            Tok::Shr => ">>",
            Tok::Int(_) | Tok::Float(_) | Tok::Str(_) | Tok::Ident(_) | Tok::Bool(_) | Tok::Eof => {
                ""
            }
        }
    }
}

/// A token and the column it starts at.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) column: usize,
}

/// `s` quoted for a message, cut to 40 characters.
pub(super) fn quote_short(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}...")
    }
}

/// Splits `src` into tokens; the last one is always [`Tok::Eof`].
pub(super) fn tokenize(src: &str) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut lx = Lexer {
        chars: &chars,
        pos: 0,
    };
    let mut out = Vec::new();
    loop {
        while lx.peek().is_some_and(char::is_whitespace) {
            lx.pos += 1;
        }
        let column = lx.pos + 1;
        let Some(c) = lx.peek() else {
            out.push(Token {
                tok: Tok::Eof,
                column,
            });
            return Ok(out);
        };
        let tok = lx.token(c, column)?;
        out.push(Token { tok, column });
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Keywords are accepted in lower or UPPER case (booleans also Capitalised).
fn keyword(w: &str) -> Option<Tok> {
    let tok = match w {
        "true" | "True" | "TRUE" => Tok::Bool(true),
        "false" | "False" | "FALSE" => Tok::Bool(false),
        "and" | "AND" => Tok::And,
        "or" | "OR" => Tok::Or,
        "not" | "NOT" => Tok::Not,
        "in" | "IN" => Tok::In,
        "like" | "LIKE" => Tok::Like,
        "is" | "IS" => Tok::Is,
        "null" | "NULL" => Tok::Null,
        _ => return None,
    };
    Some(tok)
}

fn unterminated(column: usize) -> ExprError {
    ExprError::new(column, "unterminated string")
}

struct Lexer<'a> {
    chars: &'a [char],
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    /// The source text from `start` to the current position.
    fn text(&self, start: usize) -> String {
        self.chars[start..self.pos].iter().collect()
    }

    fn skip_digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    fn token(&mut self, c: char, column: usize) -> Result<Tok, ExprError> {
        if matches!(c, 'r' | 'R') && matches!(self.peek_at(1), Some('"' | '\'')) {
            self.pos += 1;
            return self.raw_string(column);
        }
        if c == '"' || c == '\'' {
            return self.string(column);
        }
        if c.is_ascii_digit() || (c == '.' && self.peek_at(1).is_some_and(|d| d.is_ascii_digit())) {
            return self.number(column);
        }
        if is_ident_start(c) || (c == '$' && self.peek_at(1).is_some_and(is_ident_start)) {
            return Ok(self.word());
        }
        self.pos += 1;
        let (tok, extra) = match (c, self.peek()) {
            ('*', Some('*')) => (Tok::Pow, 1),
            ('*', _) => (Tok::Star, 0),
            ('<', Some('=')) => (Tok::Le, 1),
            ('<', Some('<')) => (Tok::Shl, 1),
            ('<', _) => (Tok::Lt, 0),
            ('>', Some('=')) => (Tok::Ge, 1),
            ('>', Some('>')) => (Tok::Shr, 1),
            ('>', _) => (Tok::Gt, 0),
            ('=', Some('=')) => (Tok::Eq, 1),
            ('=', _) => {
                return Err(ExprError::new(
                    column,
                    "unexpected character '=', use \"==\" to compare",
                ))
            }
            ('!', Some('=')) => (Tok::Ne, 1),
            ('!', _) => (Tok::Not, 0),
            ('&', Some('&')) => (Tok::And, 1),
            ('&', _) => (Tok::Amp, 0),
            ('|', Some('|')) => (Tok::Or, 1),
            ('|', _) => (Tok::Pipe, 0),
            ('^', _) => (Tok::Caret, 0),
            ('~', _) => (Tok::Tilde, 0),
            ('+', _) => (Tok::Plus, 0),
            ('-', _) => (Tok::Minus, 0),
            ('/', _) => (Tok::Slash, 0),
            ('%', _) => (Tok::Percent, 0),
            ('(', _) => (Tok::LParen, 0),
            (')', _) => (Tok::RParen, 0),
            ('[', _) => (Tok::LBracket, 0),
            (']', _) => (Tok::RBracket, 0),
            ('{', _) => (Tok::LBrace, 0),
            ('}', _) => (Tok::RBrace, 0),
            (',', _) => (Tok::Comma, 0),
            _ => {
                return Err(ExprError::new(
                    column,
                    format!("unexpected character {c:?}"),
                ))
            }
        };
        self.pos += extra;
        Ok(tok)
    }

    /// An identifier or keyword; the first character (a letter, `_` or `$`) is
    /// already known to be there.
    fn word(&mut self) -> Tok {
        let start = self.pos;
        self.pos += 1;
        while self.peek().is_some_and(is_ident_char) {
            self.pos += 1;
        }
        let w = self.text(start);
        if let Some(tok) = keyword(&w) {
            return tok;
        }
        Tok::Ident(w)
    }

    /// Decimal, octal (`0o17` or `017`), hex (`0x1F`), binary (`0b101`) integers and
    /// decimal floats (`1.5`, `.5`, `1.`, `1e-3`).
    fn number(&mut self, column: usize) -> Result<Tok, ExprError> {
        let start = self.pos;
        if let Some(tok) = self.prefixed_int(column) {
            return tok;
        }
        let int_start = self.pos;
        self.skip_digits();
        let int_part = self.text(int_start);
        let mut frac: Option<String> = None;
        if self.peek() == Some('.') {
            self.pos += 1;
            let s = self.pos;
            self.skip_digits();
            frac = Some(self.text(s));
        }
        let exp = self.exponent(start, column)?;
        if self.peek().is_some_and(|c| is_ident_char(c) || c == '.') {
            while self.peek().is_some_and(|c| is_ident_char(c) || c == '.') {
                self.pos += 1;
            }
            return Err(ExprError::new(
                column,
                format!("invalid number {}", quote_short(&self.text(start))),
            ));
        }
        let text = self.text(start);
        if frac.is_some() || exp.is_some() {
            return parse_float(&int_part, frac.as_deref(), exp.as_deref(), &text, column);
        }
        // C-style octal (`017`), as in Milvus's grammar.
        if let Some(octal) = int_part.strip_prefix('0').filter(|rest| !rest.is_empty()) {
            return parse_int(octal, 8, &text, column);
        }
        parse_int(&int_part, 10, &text, column)
    }

    /// An integer with a radix prefix (`0x`, `0o`, `0b`), if one starts here.
    fn prefixed_int(&mut self, column: usize) -> Option<Result<Tok, ExprError>> {
        if self.peek() != Some('0') {
            return None;
        }
        let radix = match self.peek_at(1) {
            Some('x' | 'X') => 16,
            Some('o' | 'O') => 8,
            Some('b' | 'B') => 2,
            _ => return None,
        };
        let start = self.pos;
        self.pos += 2;
        let digits_start = self.pos;
        while self.peek().is_some_and(is_ident_char) {
            self.pos += 1;
        }
        let digits = self.text(digits_start);
        Some(parse_int(&digits, radix, &self.text(start), column))
    }

    /// The exponent of a float (`e-3`), if one starts here; `start` is where the
    /// number began (for the error).
    fn exponent(&mut self, start: usize, column: usize) -> Result<Option<String>, ExprError> {
        if !matches!(self.peek(), Some('e' | 'E')) {
            return Ok(None);
        }
        self.pos += 1;
        let s = self.pos;
        if matches!(self.peek(), Some('+' | '-')) {
            self.pos += 1;
        }
        let digits = self.pos;
        self.skip_digits();
        if digits == self.pos {
            return Err(ExprError::new(
                column,
                format!(
                    "invalid number {}: the exponent has no digits",
                    quote_short(&self.text(start))
                ),
            ));
        }
        Ok(Some(self.text(s)))
    }

    /// A quoted string with C escapes; the current character is the opening quote.
    fn string(&mut self, column: usize) -> Result<Tok, ExprError> {
        let quote = self.chars[self.pos];
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(unterminated(column));
            };
            self.pos += 1;
            if c == quote {
                return Ok(Tok::Str(out));
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            // The backslash sits at index pos - 1, so its column is pos.
            let esc_column = self.pos;
            let Some(e) = self.peek() else {
                return Err(unterminated(column));
            };
            self.pos += 1;
            let decoded = match e {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                'a' => '\u{7}',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'v' => '\u{b}',
                '\\' | '\'' | '"' | '?' | '/' => e,
                '0'..='7' => self.octal_escape(e, esc_column)?,
                'x' => self.hex_escape(2, esc_column)?,
                'u' => self.unicode_escape(esc_column)?,
                'U' => self.hex_escape(8, esc_column)?,
                _ => {
                    return Err(ExprError::new(
                        esc_column,
                        format!("invalid escape sequence \"\\{e}\" in string"),
                    ))
                }
            };
            out.push(decoded);
        }
    }

    /// `r"..."`: no escapes; the current character is the opening quote.
    fn raw_string(&mut self, column: usize) -> Result<Tok, ExprError> {
        let quote = self.chars[self.pos];
        self.pos += 1;
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == quote {
                let s = self.text(start);
                self.pos += 1;
                return Ok(Tok::Str(s));
            }
            self.pos += 1;
        }
        Err(unterminated(column))
    }

    fn hex_digits(&mut self, n: usize, column: usize) -> Result<u32, ExprError> {
        let mut v: u32 = 0;
        for _ in 0..n {
            let Some(d) = self.peek().and_then(|c| c.to_digit(16)) else {
                return Err(ExprError::new(
                    column,
                    "invalid escape sequence in string: expected a hex digit",
                ));
            };
            v = v * 16 + d;
            self.pos += 1;
        }
        Ok(v)
    }

    fn hex_escape(&mut self, n: usize, column: usize) -> Result<char, ExprError> {
        let v = self.hex_digits(n, column)?;
        char::from_u32(v).ok_or_else(|| {
            ExprError::new(column, format!("invalid character code {v:#x} in string"))
        })
    }

    /// `\uXXXX`, combining a UTF-16 surrogate pair written as two escapes.
    fn unicode_escape(&mut self, column: usize) -> Result<char, ExprError> {
        let hi = self.hex_digits(4, column)?;
        if (0xD800..0xDC00).contains(&hi) {
            if self.peek() == Some('\\') && self.peek_at(1) == Some('u') {
                self.pos += 2;
                let lo = self.hex_digits(4, column)?;
                if (0xDC00..0xE000).contains(&lo) {
                    let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    if let Some(c) = char::from_u32(cp) {
                        return Ok(c);
                    }
                }
            }
            return Err(ExprError::new(
                column,
                "invalid unicode escape in string: unpaired surrogate",
            ));
        }
        char::from_u32(hi).ok_or_else(|| {
            ExprError::new(column, format!("invalid character code {hi:#x} in string"))
        })
    }

    /// `\N`, `\NN` or `\NNN` in octal; the first digit is already consumed.
    fn octal_escape(&mut self, first: char, column: usize) -> Result<char, ExprError> {
        let mut v = first.to_digit(8).unwrap_or(0);
        for _ in 0..2 {
            match self.peek().and_then(|c| c.to_digit(8)) {
                Some(d) => {
                    v = v * 8 + d;
                    self.pos += 1;
                }
                None => break,
            }
        }
        char::from_u32(v).ok_or_else(|| {
            ExprError::new(column, format!("invalid character code {v:#o} in string"))
        })
    }
}

/// A decimal float from its parts (any may be empty: `.5`, `1.`, `1e3`).
fn parse_float(
    int_part: &str,
    frac: Option<&str>,
    exp: Option<&str>,
    text: &str,
    column: usize,
) -> Result<Tok, ExprError> {
    let or_zero = |s: &str| {
        if s.is_empty() {
            "0".to_string()
        } else {
            s.to_string()
        }
    };
    let normalized = format!(
        "{}.{}e{}",
        or_zero(int_part),
        or_zero(frac.unwrap_or("")),
        or_zero(exp.unwrap_or(""))
    );
    match normalized.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Tok::Float(v)),
        _ => Err(ExprError::new(
            column,
            format!("number {} is out of range", quote_short(text)),
        )),
    }
}

fn parse_int(digits: &str, radix: u32, text: &str, column: usize) -> Result<Tok, ExprError> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(ExprError::new(
            column,
            format!("invalid number {}", quote_short(text)),
        ));
    }
    u64::from_str_radix(digits, radix)
        .map(Tok::Int)
        .map_err(|_| {
            ExprError::new(
                column,
                format!("integer {} is out of range", quote_short(text)),
            )
        })
}

#[cfg(test)]
mod tests;
