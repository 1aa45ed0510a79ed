//! FLAT search against brute force, ties included.

use super::*;

/// Keys on a line: key k sits at x = k, so keys equidistant from a probe tie.
fn line(k: Key) -> Vec<f32> {
    vec![k as f32, 0.0]
}

#[test]
fn brute_force_ties() {
    let cands = set(&[1, 2, 3, 4, 5]);
    let top = brute_force_topk(&cands, &line(3), 3, line);
    // 2 and 4 tie at distance 1: key order decides.
    assert_eq!(top, vec![(3, 0.0), (2, 1.0), (4, 1.0)]);
    assert_eq!(compare_topk(&top, &top, 1e-4), Ok(()));
    // The tie in the other order is fine.
    assert_eq!(
        compare_topk(&top, &[(3, 0.0), (4, 1.0), (2, 1.0)], 1e-4),
        Ok(())
    );
    // So is a tie broken the other way at the cut-off: top-2 may be {3, 4}.
    let top2 = brute_force_topk(&cands, &line(3), 2, line);
    assert_eq!(top2, vec![(3, 0.0), (2, 1.0)]);
    assert!(
        check_search_exact(1, &cands, &line(3), 2, &[(3, 0.0), (4, 1.0)], 1e-4, line).is_empty()
    );
    // A worse key, a wrong distance, a missing key, a non-candidate: rejected.
    assert!(compare_topk(&top, &[(3, 0.0), (2, 1.0), (5, 4.0)], 1e-4).is_err());
    assert!(compare_topk(&top, &[(3, 0.0), (2, 1.0)], 1e-4).is_err());
    assert!(compare_topk(&top, &[(3, 0.0), (2, 1.0), (2, 1.0)], 1e-4).is_err());
    assert!(compare_topk(&top2, &[(3, 0.0), (5, 1.0)], 1e-4).is_ok()); // claims only
    let v = check_search_exact(7, &cands, &line(3), 2, &[(3, 0.0), (5, 1.0)], 1e-4, line);
    assert!(
        matches!(&v[..], [Violation::BadSearchResult { op: 7, .. }, ..]),
        "{v:?}"
    );
    let v = check_search_exact(7, &cands, &line(3), 2, &[(3, 0.0), (9, 1.0)], 1e-4, line);
    assert!(!v.is_empty());
}
