//! Reads at each consistency level, and the phantom rule for reads.

use super::*;

#[test]
fn strong_read_stale_and_concurrent() {
    let mut h = History::default();
    let a = acked(&mut h, 1, OpKind::Insert(vec![1]), 0, 10, 1);
    // Concurrent with both reads below: not judged either way.
    acked(&mut h, 2, OpKind::Insert(vec![2]), 15, 40, 2);
    read(&mut h, 3, Level::Strong, 20, 30, &[1]);
    read(&mut h, 3, Level::Strong, 31, 35, &[1, 2]);
    assert!(h.check_reads(&CheckConfig::default()).is_empty());

    let r = read(&mut h, 3, Level::Strong, 50, 60, &[2]);
    assert_eq!(
        h.check_reads(&CheckConfig::default()),
        vec![Violation::StaleRead {
            read: r,
            key: 1,
            expected_present: true,
            level: Level::Strong,
            client: 3,
            because: Some(a),
            as_of: 50,
            invoked_at: 50,
            completed_at: 60,
        }]
    );
    // A write that completes at the very instant another client's read starts is
    // treated as concurrent.
    let mut h2 = History::default();
    acked(&mut h2, 1, OpKind::Insert(vec![1]), 0, 10, 1);
    read(&mut h2, 3, Level::Strong, 10, 20, &[]);
    assert!(h2.check_reads(&CheckConfig::default()).is_empty());
}

#[test]
fn strong_read_sees_deleted_and_phantom() {
    let mut h = History::default();
    acked(&mut h, 1, OpKind::Insert(vec![1]), 0, 10, 1);
    let d = acked(&mut h, 1, OpKind::Delete(vec![1]), 10, 20, 2);
    let r = read(&mut h, 3, Level::Strong, 30, 40, &[1, 5, 5]);
    let v = h.check_reads(&CheckConfig::default());
    assert_eq!(v.len(), 3, "{v:?}");
    assert!(matches!(v[0], Violation::DuplicateInRead { read, key: 5, .. } if read == r));
    assert!(
        matches!(v[1], Violation::StaleRead { key: 1, expected_present: false, because: Some(b), .. } if b == d)
    );
    assert!(matches!(
        v[2],
        Violation::PhantomRead {
            key: 5,
            refused: None,
            ..
        }
    ));
    // Eventually: only the phantom rule (and duplicates).
    let mut h = History::default();
    acked(&mut h, 1, OpKind::Insert(vec![1]), 0, 10, 1);
    read(&mut h, 3, Level::Eventually, 30, 40, &[]);
    assert!(h.check_reads(&CheckConfig::default()).is_empty());
    read(&mut h, 3, Level::Eventually, 30, 40, &[6]);
    assert!(matches!(
        h.check_reads(&CheckConfig::default())[..],
        [Violation::PhantomRead {
            key: 6,
            level: Level::Eventually,
            ..
        }]
    ));
}

#[test]
fn phantom_rule_needs_invocation_before_completion() {
    let mut h = History::default();
    let r = read(&mut h, 3, Level::Eventually, 0, 10, &[1]);
    // Invoked after the read completed: can't explain what it saw.
    let w = h.invoke(1, OpKind::Insert(vec![1]), 20);
    h.ack(w, 30, Some(1));
    assert!(
        matches!(h.check_reads(&CheckConfig::default())[..], [Violation::PhantomRead { read, key: 1, .. }] if read == r)
    );
    // The reader's own next write, invoked at the instant the read returned, can't
    // explain it either; another client's write at that instant may.
    let mut h = History::default();
    let r = read(&mut h, 1, Level::Eventually, 0, 10, &[1]);
    acked(&mut h, 1, OpKind::Insert(vec![1]), 10, 20, 1);
    assert!(
        matches!(h.check_reads(&CheckConfig::default())[..], [Violation::PhantomRead { read, key: 1, .. }] if read == r)
    );
    let mut h = History::default();
    read(&mut h, 1, Level::Eventually, 0, 10, &[1]);
    acked(&mut h, 2, OpKind::Insert(vec![1]), 10, 20, 1);
    assert!(h.check_reads(&CheckConfig::default()).is_empty());
    // Invoked before (still running, then acked): fine.
    let mut h = History::default();
    let w = h.invoke(1, OpKind::Insert(vec![1]), 0);
    read(&mut h, 3, Level::Strong, 5, 10, &[1]);
    h.ack(w, 30, Some(1));
    assert!(h.check_reads(&CheckConfig::default()).is_empty());
}

#[test]
fn session_read_own_writes_only() {
    let mut h = History::default();
    // Another client's write, long done: a Session read may miss it.
    acked(&mut h, 2, OpKind::Insert(vec![20]), 0, 10, 1);
    // Own write; the read starts at the very instant it was acked.
    let own = acked(&mut h, 1, OpKind::Insert(vec![10]), 100, 110, 2);
    read(&mut h, 1, Level::Session, 110, 120, &[10]);
    assert!(h.check_reads(&CheckConfig::default()).is_empty());
    // Missing it at that instant is stale: the client's own ack came first.
    let mut same_instant = h.clone();
    let r0 = read(&mut same_instant, 1, Level::Session, 110, 120, &[]);
    assert!(matches!(
        same_instant.check_reads(&CheckConfig::default())[..],
        [Violation::StaleRead { read, key: 10, expected_present: true, .. }] if read == r0
    ));
    let r = read(&mut h, 1, Level::Session, 130, 140, &[20]);
    assert_eq!(
        h.check_reads(&CheckConfig::default()),
        vec![Violation::StaleRead {
            read: r,
            key: 10,
            expected_present: true,
            level: Level::Session,
            client: 1,
            because: Some(own),
            as_of: 130,
            invoked_at: 130,
            completed_at: 140,
        }]
    );
}

#[test]
fn bounded_read_staleness_window() {
    let cfg = CheckConfig {
        staleness: 5_000 * MS,
        slack: 1_000 * MS,
    };
    let mut h = History::default();
    acked(&mut h, 1, OpKind::Insert(vec![1]), 0, 10 * MS, 1);
    // Invoked before staleness + slack has passed: phantom rule only.
    read(&mut h, 2, Level::Bounded, 3_000 * MS, 3_010 * MS, &[]);
    // 6.005 s after the start: the write (done at 10 ms) is still inside the window.
    read(&mut h, 2, Level::Bounded, 6_005 * MS, 6_010 * MS, &[]);
    assert!(h.check_reads(&cfg).is_empty());
    // 7 s: the write completed before 7 - 6 = 1 s, so it must be visible.
    let r = read(&mut h, 2, Level::Bounded, 7_000 * MS, 7_010 * MS, &[]);
    assert!(matches!(
        h.check_reads(&cfg)[..],
        [Violation::StaleRead { read, key: 1, expected_present: true, as_of, .. }] if read == r && as_of == 1_000 * MS
    ));
}
