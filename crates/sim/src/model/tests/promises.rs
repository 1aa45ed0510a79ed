//! The workload's promises.

use super::*;

#[test]
fn promises() {
    let mut h = History::default();
    let u = h.invoke(1, OpKind::Insert(vec![1]), 0);
    h.unknown(u, 10);
    let again = acked(&mut h, 1, OpKind::Delete(vec![1]), 20, 30, 1);
    let other = acked(&mut h, 2, OpKind::Upsert(vec![1]), 40, 50, 2);
    let v = h.check_promises();
    assert!(
        matches!(v[..], [Violation::WorkloadPromiseBroken { op: a, key: 1, .. }, Violation::WorkloadPromiseBroken { op: b, .. }] if a == again && b == other)
    );
    // The final check stays conservative: the unknown insert may land at any time.
    assert!(h.check_final(&set(&[])).is_empty());
    assert!(h.check_final(&set(&[1])).is_empty());
}
