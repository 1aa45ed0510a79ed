//! The end-of-run rules: lost writes, undone deletes, phantoms, uncertain writes.

use super::*;

#[test]
fn lost_acked_insert() {
    let mut h = History::default();
    let a = acked(&mut h, 1, OpKind::Insert(vec![1]), 0, 10, 1);
    assert!(h.check_final(&set(&[1])).is_empty());
    assert_eq!(
        h.check_final(&set(&[])),
        vec![Violation::LostWrite {
            key: 1,
            op: a,
            client: 1,
            acked_at: 10
        }]
    );
}

#[test]
fn delete_undone() {
    let mut h = History::default();
    acked(&mut h, 1, OpKind::Insert(vec![1]), 0, 10, 1);
    let d = acked(&mut h, 1, OpKind::Delete(vec![1]), 20, 30, 2);
    assert!(h.check_final(&set(&[])).is_empty());
    assert_eq!(
        h.check_final(&set(&[1])),
        vec![Violation::DeleteUndone {
            key: 1,
            op: d,
            client: 1,
            acked_at: 30
        }]
    );
}

#[test]
fn phantom_and_refused_write_visible() {
    let mut h = History::default();
    acked(&mut h, 1, OpKind::Insert(vec![1]), 0, 10, 1);
    let r = h.invoke(1, OpKind::Insert(vec![2]), 20);
    h.refuse(r, 30);
    assert!(h.check_final(&set(&[1])).is_empty());
    assert_eq!(
        h.check_final(&set(&[1, 2, 7])),
        vec![
            Violation::RefusedWriteVisible {
                key: 2,
                op: r,
                client: 1
            },
            Violation::Phantom { key: 7 },
        ]
    );
}

#[test]
fn unknown_or_pending_write_is_uncertain_for_ever() {
    let mut h = History::default();
    let u = h.invoke(1, OpKind::Insert(vec![1]), 0);
    h.unknown(u, 10);
    acked(&mut h, 2, OpKind::Insert(vec![2]), 0, 10, 1);
    let d = h.invoke(2, OpKind::Delete(vec![2]), 20);
    h.unknown(d, 30);
    h.invoke(3, OpKind::Upsert(vec![3]), 40); // still pending
    for vis in [set(&[]), set(&[1, 2, 3])] {
        assert!(h.check_final(&vis).is_empty(), "{vis:?}");
    }
    // Reads long after are not judged on those keys either.
    read(&mut h, 4, Level::Strong, 100, 110, &[1]);
    read(&mut h, 4, Level::Strong, 120, 130, &[2, 3]);
    assert!(h.check_reads(&CheckConfig::default()).is_empty());
    assert!(h.check_promises().is_empty());
}

#[test]
fn upsert_after_delete_makes_present() {
    let mut h = History::default();
    acked(&mut h, 1, OpKind::Insert(vec![1]), 0, 10, 1);
    acked(&mut h, 1, OpKind::Delete(vec![1]), 10, 20, 2);
    let u = acked(&mut h, 1, OpKind::Upsert(vec![1]), 20, 30, 3);
    assert!(h.check_final(&set(&[1])).is_empty());
    assert!(
        matches!(h.check_final(&set(&[]))[..], [Violation::LostWrite { key: 1, op, .. }] if op == u)
    );
    read(&mut h, 2, Level::Strong, 40, 50, &[1]);
    assert!(h.check_reads(&CheckConfig::default()).is_empty());
    // A read overlapping the upsert may see either state.
    let mut h2 = h.clone();
    read(&mut h2, 2, Level::Strong, 25, 26, &[]);
    read(&mut h2, 2, Level::Strong, 25, 26, &[1]);
    assert!(h2.check_reads(&CheckConfig::default()).is_empty());
}
