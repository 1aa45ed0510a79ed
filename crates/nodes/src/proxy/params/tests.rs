use super::*;
use crate::error::code;

fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn nq_is_capped_at_milvus_limit() {
    check_nq(1).unwrap();
    check_nq(MAX_NQ).unwrap();
    let e = check_nq(MAX_NQ + 1).unwrap_err();
    assert_eq!(e.code, code::INVALID_PARAMETER);
    assert_eq!(
        e.reason,
        "nq (number of search vector per search request) should be in range [1, 16384], but got 16385"
    );
    assert!(check_nq(0).is_err());
}

#[test]
fn round_decimal_is_minus_one_or_zero_to_six() {
    assert_eq!(round_decimal(&map(&[])).unwrap(), -1);
    assert_eq!(round_decimal(&map(&[("round_decimal", "-1")])).unwrap(), -1);
    assert_eq!(round_decimal(&map(&[("round_decimal", " 6")])).unwrap(), 6);
    for bad in ["99", "7", "-2", "abc", "1.5", ""] {
        let e = round_decimal(&map(&[("round_decimal", bad)])).unwrap_err();
        assert_eq!(e.code, code::INVALID_PARAMETER, "{bad}");
        assert!(
            e.reason
                .starts_with(&format!("round_decimal [{bad}] is invalid")),
            "{}",
            e.reason
        );
    }
}
