//! Search results: well-formed, and a Strong search finds its probe.

use super::*;

#[test]
fn searches() {
    let mut h = History::default();
    acked(&mut h, 1, OpKind::Insert(vec![1, 2, 3]), 0, 10, 1);
    let del = acked(&mut h, 1, OpKind::Delete(vec![3]), 10, 20, 2);
    search(&mut h, Level::Strong, 1, 2, 30, 40, &[1, 2]);
    search(&mut h, Level::Strong, 3, 2, 30, 40, &[1, 2]);
    search(&mut h, Level::Eventually, 1, 2, 30, 40, &[2, 3]);
    assert!(h.check_searches().is_empty());

    let missed = search(&mut h, Level::Strong, 1, 2, 30, 40, &[2, 1]);
    let found = search(&mut h, Level::Strong, 3, 2, 30, 40, &[2, 3]);
    let bad = search(&mut h, Level::Session, 1, 2, 30, 40, &[1, 1, 8]);
    let v = h.check_searches();
    assert_eq!(v.len(), 5, "{v:?}");
    assert!(
        matches!(v[0], Violation::SearchMissedSelf { op, probe: 1, first: Some(2), .. } if op == missed)
    );
    assert!(
        matches!(v[1], Violation::SearchFoundDeleted { op, probe: 3, rank: 1, because: Some(b), .. } if op == found && b == del)
    );
    assert!(matches!(v[2], Violation::BadSearchResult { op, .. } if op == bad)); // 3 > k
    assert!(matches!(v[3], Violation::BadSearchResult { op, .. } if op == bad)); // 1 twice
    assert!(
        matches!(v[4], Violation::PhantomRead { read, key: 8, what: "search", .. } if read == bad)
    );
    for x in &v {
        assert!(!x.to_string().contains('\n'));
    }
}
