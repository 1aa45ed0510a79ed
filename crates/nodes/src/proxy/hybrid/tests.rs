use super::*;

fn kv(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn rrf_rewards_agreement_between_searches() {
    let r = Ranker::parse(&kv(&[]), 2).unwrap();
    assert_eq!(r, Ranker::Rrf { k: 60.0 });
    let a: Ranked = vec![(Pk::Int(1), 0.9), (Pk::Int(2), 0.8), (Pk::Int(3), 0.1)];
    let b: Ranked = vec![(Pk::Int(2), 5.0), (Pk::Int(4), 4.0)];
    let fused = fuse(&r, &[(Metric::IP, &a), (Metric::L2, &b)]);
    let order: Vec<i64> = fused
        .iter()
        .map(|(p, _)| match p {
            Pk::Int(v) => *v,
            _ => 0,
        })
        .collect();
    assert_eq!(order, vec![2, 1, 4, 3]);
    assert!((fused[0].1 - (1.0 / 62.0 + 1.0 / 61.0) as f32).abs() < 1e-7);
}

#[test]
fn weighted_fusion_normalizes_each_metric() {
    let r = Ranker::parse(
        &kv(&[
            ("strategy", "weighted"),
            ("params", r#"{"weights":[1.0,0.5],"norm_score":true}"#),
        ]),
        2,
    )
    .unwrap();
    let a: Ranked = vec![(Pk::Int(1), 0.5)];
    let b: Ranked = vec![(Pk::Int(1), 0.0), (Pk::Int(2), 1.0)];
    let fused = fuse(&r, &[(Metric::Cosine, &a), (Metric::L2, &b)]);
    // 1: 1.0 * (1 + 0.5) / 2 + 0.5 * (1 - 0) = 1.25; 2: 0.5 * (1 - 2 atan(1) / pi) = 0.25.
    assert!((fused[0].1 - 1.25).abs() < 1e-6 && fused[0].0 == Pk::Int(1));
    assert!((fused[1].1 - 0.25).abs() < 1e-6);
}

#[test]
fn bad_rankers_are_refused() {
    let bad = |pairs: &[(&str, &str)], n| Ranker::parse(&kv(pairs), n).unwrap_err().reason;
    assert!(bad(&[("strategy", "magic")], 1).contains("not supported"));
    assert!(bad(&[("strategy", "rrf"), ("params", r#"{"k":0}"#)], 1).contains("range"));
    assert!(bad(
        &[("strategy", "weighted"), ("params", r#"{"weights":[0.5]}"#)],
        2
    )
    .contains("1 weights"));
    assert!(bad(
        &[("strategy", "weighted"), ("params", r#"{"weights":[2]}"#)],
        1
    )
    .contains("[0, 1]"));
}
