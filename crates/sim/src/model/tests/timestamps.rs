//! Commit timestamps rise in real-time order.

use super::*;

#[test]
fn timestamps() {
    let mut h = History::default();
    acked(&mut h, 1, OpKind::Insert(vec![1]), 0, 10, 5);
    // Concurrent with the first write: any order of timestamps is fine.
    acked(&mut h, 2, OpKind::Insert(vec![2]), 5, 20, 3);
    // Same client, invoked at the instant the previous op was acked: ordered.
    acked(&mut h, 2, OpKind::Insert(vec![3]), 20, 25, 6);
    assert!(h.check_timestamps().is_empty());
    let late = acked(&mut h, 3, OpKind::Delete(vec![1]), 30, 40, 4);
    assert_eq!(
        h.check_timestamps(),
        vec![Violation::TimestampRegressed {
            earlier: 2,
            later: late,
            earlier_ts: 6,
            later_ts: 4,
            earlier_completed_at: 25,
            later_invoked_at: 30,
        }]
    );
    // Same client, same instant, regressed.
    let mut h = History::default();
    acked(&mut h, 1, OpKind::Insert(vec![1]), 0, 10, 5);
    acked(&mut h, 1, OpKind::Upsert(vec![1]), 10, 20, 5);
    assert_eq!(h.check_timestamps().len(), 1);
    // Many regressions: the first few, then a count.
    let mut h = History::default();
    for i in 0..10 {
        acked(
            &mut h,
            1,
            OpKind::Insert(vec![i]),
            i as u64 * 10,
            i as u64 * 10 + 5,
            100 - i as u64,
        );
    }
    let v = h.check_timestamps();
    assert_eq!(v.len(), 6);
    assert_eq!(v[5], Violation::TimestampRegressionsOmitted { omitted: 4 });
}
