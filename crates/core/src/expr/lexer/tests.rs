//! The lexer's tests: numbers, strings, escapes, keywords, operators, columns.

use super::*;

fn toks(src: &str) -> Vec<Tok> {
    tokenize(src)
        .unwrap_or_else(|e| panic!("{src}: {e}"))
        .into_iter()
        .map(|t| t.tok)
        .collect()
}

#[test]
fn numbers_in_every_base() {
    assert_eq!(
        toks("0x1F 0o17 017 0b101 42 0"),
        [
            Tok::Int(31),
            Tok::Int(15),
            Tok::Int(15),
            Tok::Int(5),
            Tok::Int(42),
            Tok::Int(0),
            Tok::Eof
        ]
    );
    assert_eq!(
        toks("1.5e2 .5 1. 2E-1 3e+2"),
        [
            Tok::Float(150.0),
            Tok::Float(0.5),
            Tok::Float(1.0),
            Tok::Float(0.2),
            Tok::Float(300.0),
            Tok::Eof
        ]
    );
    assert_eq!(toks("18446744073709551615"), [Tok::Int(u64::MAX), Tok::Eof]);
}

#[test]
fn bad_numbers_are_errors() {
    for src in [
        "09",
        "0x",
        "0b102",
        "1e",
        "12abc",
        "99999999999999999999",
        "1e999",
        "1.2.3",
    ] {
        let e = tokenize(src).expect_err(src);
        assert_eq!(e.column, 1, "{src}: {e}");
    }
}

#[test]
fn strings_and_escapes() {
    assert_eq!(
        toks(r#"'it\'s' "a\"b\\c\n\u00e9\t" r"raw\n""#),
        [
            Tok::Str("it's".into()),
            Tok::Str("a\"b\\c\n\u{e9}\t".into()),
            Tok::Str("raw\\n".into()),
            Tok::Eof
        ]
    );
    assert_eq!(
        toks(r#""\ud83d\ude00\x41\101""#),
        [Tok::Str("\u{1F600}AA".into()), Tok::Eof]
    );
    let e = tokenize("\"abc").unwrap_err();
    assert_eq!(e.column, 1);
    assert!(e.message.contains("unterminated"), "{e}");
    let e = tokenize(r#"a == "x\q""#).unwrap_err();
    assert_eq!(e.column, 8, "{e}");
    assert!(tokenize(r#""\ud83d""#).is_err());
    assert!(tokenize(r#""\u12""#).is_err());
    assert!(tokenize("'abc\\").is_err());
}

#[test]
fn keywords_and_operators() {
    assert_eq!(
        toks("and AND && or OR || not NOT ! in IN like LIKE is IS null NULL"),
        [
            Tok::And,
            Tok::And,
            Tok::And,
            Tok::Or,
            Tok::Or,
            Tok::Or,
            Tok::Not,
            Tok::Not,
            Tok::Not,
            Tok::In,
            Tok::In,
            Tok::Like,
            Tok::Like,
            Tok::Is,
            Tok::Is,
            Tok::Null,
            Tok::Null,
            Tok::Eof
        ]
    );
    assert_eq!(
        toks("true True TRUE false False FALSE"),
        [
            Tok::Bool(true),
            Tok::Bool(true),
            Tok::Bool(true),
            Tok::Bool(false),
            Tok::Bool(false),
            Tok::Bool(false),
            Tok::Eof
        ]
    );
    assert_eq!(
        toks("a<=b>=c==d!=e**f"),
        [
            Tok::Ident("a".into()),
            Tok::Le,
            Tok::Ident("b".into()),
            Tok::Ge,
            Tok::Ident("c".into()),
            Tok::Eq,
            Tok::Ident("d".into()),
            Tok::Ne,
            Tok::Ident("e".into()),
            Tok::Pow,
            Tok::Ident("f".into()),
            Tok::Eof
        ]
    );
    assert_eq!(
        toks("$meta And"),
        [
            Tok::Ident("$meta".into()),
            Tok::Ident("And".into()),
            Tok::Eof
        ]
    );
    assert_eq!(tokenize("a = 1").unwrap_err().column, 3);
    assert_eq!(tokenize("\u{e9}").unwrap_err().column, 1);
    assert_eq!(tokenize("$ x").unwrap_err().column, 1);
}

#[test]
fn columns_count_characters() {
    let t = tokenize("'\u{e9}' == x").unwrap();
    assert_eq!(t[1].column, 5);
    assert_eq!(t[2].column, 8);
    assert_eq!(t[3].column, 9);
}
