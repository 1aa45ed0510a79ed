use super::*;
use crate::rpc::SearchKnobs;

fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn index_params_parse_into_types() {
    let p = SearchKnobs::from_milvus(&pairs(&[
        ("ef", "64"),
        ("nprobe", "8"),
        ("radius", "0.5"),
        ("range_filter", " 0.9 "),
        ("unknown", "x"),
    ]))
    .unwrap();
    assert_eq!(p.ann.ef, Some(64));
    assert_eq!(p.ann.nprobe, Some(8));
    assert_eq!(p.range.radius, Some(0.5));
    assert_eq!(p.range.range_filter, Some(0.9));
    assert_eq!(
        SearchKnobs::from_milvus(&[]).unwrap(),
        SearchKnobs::default()
    );
}

#[test]
fn bad_index_params_are_refused_with_the_shards_messages() {
    let bad = |kv: &[(&str, &str)]| SearchKnobs::from_milvus(&pairs(kv)).unwrap_err();
    let e = bad(&[("radius", "near")]);
    assert_eq!(e.code, code::INVALID_PARAMETER);
    assert!(e
        .reason
        .contains("search param radius=\"near\" is not a number"));
    assert!(bad(&[("ef", "0")]).reason.starts_with("search params: "));
}

#[test]
fn hostile_ef_values_are_refused_not_ignored() {
    let bad = |v: &str| SearchKnobs::from_milvus(&pairs(&[("ef", v)])).unwrap_err();
    for v in ["-1", "abc", "1.5", "99999999999"] {
        let e = bad(v);
        assert_eq!(e.code, code::INVALID_PARAMETER, "{v}");
        assert!(e.reason.contains("'ef'"), "{}", e.reason);
    }
}
