//! Evaluation's tests: `like` patterns, exact numeric comparison, `in` sets,
//! arithmetic that never panics.

use super::*;

fn like(pattern: &str, s: &str) -> bool {
    LikePattern::new(pattern).matches(s)
}

#[test]
fn like_patterns() {
    assert!(like("a%", "abc"));
    assert!(!like("a%", "bac"));
    assert!(like("%c", "abc"));
    assert!(like("%b%", "abc"));
    assert!(like("abc", "abc"));
    assert!(!like("abc", "abcd"));
    assert!(like("a_c", "abc"));
    assert!(!like("a_c", "ac"));
    assert!(like("%", ""));
    assert!(like("", ""));
    assert!(!like("", "a"));
    assert!(like("a%b%c", "axxbyyc"));
    assert!(!like("a%b%c", "axxbyy"));
    assert!(like("%a_b%", "xxaxbyy"));
    assert!(like("a\\%", "a%"));
    assert!(!like("a\\%", "ab"));
    assert!(like("_\u{e9}_", "x\u{e9}y"));
    assert!(like("%%%a", "ba"));
}

#[test]
fn numbers_compare_exactly_across_int_and_float() {
    assert_eq!(cmp_int_float(1, 1.5), Some(Ordering::Less));
    assert_eq!(cmp_int_float(-1, -1.5), Some(Ordering::Greater));
    assert_eq!(cmp_int_float(2, 2.0), Some(Ordering::Equal));
    assert_eq!(cmp_int_float(i64::MAX, TWO_POW_63), Some(Ordering::Less));
    assert_eq!(cmp_int_float(i64::MIN, -TWO_POW_63), Some(Ordering::Equal));
    assert_eq!(cmp_int_float(0, f64::NAN), None);
    assert_eq!(float_as_int(3.0), Some(3));
    assert_eq!(float_as_int(3.5), None);
    assert_eq!(float_as_int(f64::INFINITY), None);
}

#[test]
fn in_sets_are_three_valued() {
    let set = InSet::new(vec![Value::Int(1), Value::Float(2.5), Value::Float(3.0)]);
    assert!(matches!(set.contains(Datum::Int(1)), Datum::Bool(true)));
    assert!(matches!(set.contains(Datum::Int(3)), Datum::Bool(true)));
    assert!(matches!(set.contains(Datum::Float(2.5)), Datum::Bool(true)));
    assert!(matches!(set.contains(Datum::Float(1.0)), Datum::Bool(true)));
    assert!(matches!(set.contains(Datum::Int(4)), Datum::Bool(false)));
    assert!(matches!(set.contains(Datum::Null), Datum::Null));
    // A string is not comparable with numbers: unknown, not false.
    assert!(matches!(set.contains(Datum::Str("1")), Datum::Null));
    let mixed = InSet::new(vec![Value::Str("a".into()), Value::Null]);
    assert!(matches!(mixed.contains(Datum::Str("a")), Datum::Bool(true)));
    assert!(matches!(mixed.contains(Datum::Str("b")), Datum::Null));
}

#[test]
fn integer_arithmetic_truncates_and_never_panics() {
    assert!(matches!(int_arith(ArithOp::Div, 7, 2), Datum::Int(3)));
    assert!(matches!(int_arith(ArithOp::Div, -7, 2), Datum::Int(-3)));
    assert!(matches!(int_arith(ArithOp::Mod, -7, 3), Datum::Int(-1)));
    assert!(matches!(int_arith(ArithOp::Div, 1, 0), Datum::Null));
    assert!(matches!(int_arith(ArithOp::Mod, 1, 0), Datum::Null));
    assert!(matches!(int_arith(ArithOp::Div, i64::MIN, -1), Datum::Null));
    assert!(matches!(int_arith(ArithOp::Mod, i64::MIN, -1), Datum::Null));
    assert!(matches!(int_arith(ArithOp::Add, i64::MAX, 1), Datum::Null));
    assert!(matches!(float_arith(ArithOp::Div, 1.0, 0.0), Datum::Null));
    assert!(matches!(int_arith(ArithOp::Pow, 2, 10), Datum::Float(f) if f == 1024.0));
}
