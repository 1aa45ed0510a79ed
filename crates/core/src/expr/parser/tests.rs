//! The parser's tests: precedence, paths, ranges, templates, errors, depth limits.

use super::*;

#[test]
fn precedence_follows_milvus() {
    let e = parse("1 + 2 * 3").unwrap();
    let ExprKind::Arith {
        op: ArithOp::Add,
        rhs,
        ..
    } = &e.kind
    else {
        panic!("{e:?}")
    };
    assert!(matches!(
        rhs.kind,
        ExprKind::Arith {
            op: ArithOp::Mul,
            ..
        }
    ));

    // Unary `not` binds tighter than `==`, as in Milvus.
    let e = parse("not a == 1").unwrap();
    let ExprKind::Cmp {
        op: CmpOp::Eq, lhs, ..
    } = &e.kind
    else {
        panic!("{e:?}")
    };
    assert!(matches!(
        lhs.kind,
        ExprKind::Unary {
            op: UnaryOp::Not,
            ..
        }
    ));

    let e = parse("a or b and c or d").unwrap();
    let ExprKind::Or(items) = &e.kind else {
        panic!("{e:?}")
    };
    assert_eq!(items.len(), 3);
    assert!(matches!(items[1].kind, ExprKind::And(_)));

    let e = parse("-2 ** 2").unwrap();
    assert!(matches!(
        e.kind,
        ExprKind::Unary {
            op: UnaryOp::Neg,
            ..
        }
    ));

    let e = parse("a in [1] == true").unwrap();
    assert!(matches!(e.kind, ExprKind::Cmp { op: CmpOp::Eq, .. }));

    let e = parse("a + 1 < 3 AND b || c").unwrap();
    assert!(matches!(e.kind, ExprKind::Or(_)));
}

#[test]
fn paths_ranges_templates() {
    let e = parse(r#"meta["a"][0]["b"] > 1"#).unwrap();
    let ExprKind::Cmp { lhs, .. } = &e.kind else {
        panic!("{e:?}")
    };
    assert_eq!(
        lhs.kind,
        ExprKind::Field {
            name: "meta".into(),
            path: vec![
                PathElem::Key("a".into()),
                PathElem::Index(0),
                PathElem::Key("b".into())
            ]
        }
    );
    assert!(matches!(
        parse("1 < x <= 5").unwrap().kind,
        ExprKind::Range {
            lower_op: CmpOp::Lt,
            upper_op: CmpOp::Le,
            ..
        }
    ));
    assert!(matches!(
        parse("5 > x >= 1").unwrap().kind,
        ExprKind::Range { .. }
    ));
    assert!(parse("1 < x > 5").is_err());
    assert!(parse("1 < x < 5 < 7").is_err());
    assert!(matches!(
        parse("x in {tags}").unwrap().kind,
        ExprKind::In { negated: false, .. }
    ));
    assert!(matches!(
        parse("x not in [1, 2,]").unwrap().kind,
        ExprKind::In { negated: true, .. }
    ));
    assert!(matches!(
        parse("x IS NOT NULL").unwrap().kind,
        ExprKind::IsNull { negated: true, .. }
    ));
    assert!(matches!(
        parse("x like {p}").unwrap().kind,
        ExprKind::Like { .. }
    ));
    assert_eq!(
        parse("-9223372036854775808").unwrap().kind,
        ExprKind::Int(i64::MIN)
    );
    assert!(parse("9223372036854775808").is_err());
    assert!(matches!(
        parse("JSON_CONTAINS(a, 1)").unwrap().kind,
        ExprKind::Call { ref name, .. } if name == "json_contains"
    ));
    assert_eq!(parse("[]").unwrap().kind, ExprKind::Array(vec![]));
}

#[test]
fn errors_point_at_the_problem() {
    let cases = [
        ("age > ", 7, "end of input"),
        ("a == == 1", 6, "\"==\""),
        ("a == 1 2", 8, "number 2"),
        ("(a == 1", 8, "\")\""),
        ("foo(a)", 1, "unknown function"),
        ("Json_Contains(a, 1)", 1, "unknown function"),
        ("text_match(a, \"x\")", 1, "not supported"),
        ("json_contains(a)", 1, "takes 2"),
        ("a & b", 3, "not supported"),
        ("[1, 2][0]", 7, "\"[\""),
        ("1 is null", 3, "is null"),
        ("a[x]", 3, "string key"),
        ("a like 3", 8, "pattern"),
        ("{1}", 2, "template name"),
        ("exists a", 1, "not supported"),
        ("", 1, "empty"),
    ];
    for (src, column, needle) in cases {
        let e = parse(src).expect_err(src);
        assert_eq!(e.column, column, "{src}: {e}");
        assert!(e.message.contains(needle), "{src}: {e}");
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = format!(
        "{}a{}",
        "(".repeat(MAX_DEPTH + 10),
        ")".repeat(MAX_DEPTH + 10)
    );
    let e = parse(&deep).unwrap_err();
    assert!(e.message.contains("nested too deeply"), "{e}");
    let ok = format!("{}a{}", "(".repeat(100), ")".repeat(100));
    assert!(parse(&ok).is_ok());
    let nots = format!("{}a", "not ".repeat(MAX_DEPTH + 10));
    assert!(parse(&nots).is_err());
    let sum = format!("a{}", " + 1".repeat(MAX_DEPTH + 10));
    let e = parse(&sum).unwrap_err();
    assert!(e.message.contains("nested too deeply"), "{e}");
    let ors = std::iter::repeat_n("a == 1", 5000)
        .collect::<Vec<_>>()
        .join(" or ");
    assert_eq!(parse(&ors).unwrap().height(), 3);
    let long = "a".repeat(MAX_SOURCE_LEN + 1);
    assert!(parse(&long).unwrap_err().message.contains("too long"));
}
