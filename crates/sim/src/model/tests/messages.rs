//! Violation messages: one line each, worded exactly as reports and traces carry them.

use super::*;

#[test]
fn display_is_one_line() {
    let v = Violation::StaleRead {
        read: 4,
        key: 1,
        expected_present: true,
        level: Level::Bounded,
        client: 2,
        because: Some(1),
        as_of: 1_000 * MS,
        invoked_at: 7_000 * MS,
        completed_at: 7_010 * MS + 500_000,
    };
    assert_eq!(
        v.to_string(),
        "stale read: Bounded read op 4 (client 2, 7000.000ms..7010.500ms) missed key 1, present as of 1000.000ms (op 1)"
    );
}

/// Asserts each violation's message word for word: reports, the mutation check's grep
/// and trace hashes all read them.
fn pinned(cases: Vec<(Violation, &str)>) {
    for (v, want) in cases {
        assert_eq!(v.to_string(), want);
    }
}

/// The end-of-run rules.
#[test]
fn final_state_messages() {
    use Violation::*;
    pinned(vec![
        (LostWrite { key: 1, op: 2, client: 3, acked_at: 4_500_000 }, "lost write: key 1 is missing at the end although op 2 (client 3, acked at 4.500ms) wrote it last"),
        (DeleteUndone { key: 1, op: 2, client: 3, acked_at: 1_234_567_890 }, "delete undone: key 1 is visible at the end although op 2 (client 3, acked at 1234.567ms) deleted it"),
        (Phantom { key: -7 }, "phantom: key -7 is visible at the end but was never written"),
        (RefusedWriteVisible { key: 1, op: 2, client: 3 }, "refused write visible: key 1 is visible at the end but its writes were refused (last: op 2, client 3)"),
    ]);
}

/// Reads.
#[test]
fn read_messages() {
    use Violation::*;
    pinned(vec![
        (StaleRead { read: 4, key: 1, expected_present: true, level: Level::Bounded, client: 2, because: Some(1), as_of: 1_000_000_000, invoked_at: 7_000_000_000, completed_at: 7_010_500_000 }, "stale read: Bounded read op 4 (client 2, 7000.000ms..7010.500ms) missed key 1, present as of 1000.000ms (op 1)"),
        (StaleRead { read: 4, key: 1, expected_present: false, level: Level::Strong, client: 2, because: None, as_of: 5, invoked_at: 5, completed_at: 6_001 }, "stale read: Strong read op 4 (client 2, 0.000ms..0.006ms) saw key 1, deleted as of 0.000ms"),
        (PhantomRead { read: 9, key: 8, what: "search", level: Level::Session, client: 1, refused: Some(3), invoked_at: 10, completed_at: 20_000 }, "phantom read: Session search op 9 (client 1, 0.000ms..0.020ms) returned key 8, which no write invoked before it completed created (op 3 was refused)"),
        (PhantomRead { read: 9, key: 8, what: "read", level: Level::Eventually, client: 1, refused: None, invoked_at: 10, completed_at: 20_000 }, "phantom read: Eventually read op 9 (client 1, 0.000ms..0.020ms) returned key 8, which no write invoked before it completed created"),
        (DuplicateInRead { read: 3, key: 5, level: Level::Strong, client: 0 }, "duplicate: Strong read op 3 (client 0) returned key 5 more than once"),
    ]);
}

/// Searches.
#[test]
fn search_messages() {
    use Violation::*;
    pinned(vec![
        (SearchMissedSelf { op: 1, probe: 2, client: 3, first: Some(4), because: Some(5), invoked_at: 6, completed_at: 7_000_000 }, "search missed self: Strong search op 1 (client 3, 0.000ms..7.000ms) for present probe 2 (op 5) ranked key 4 first"),
        (SearchMissedSelf { op: 1, probe: 2, client: 3, first: None, because: None, invoked_at: 6, completed_at: 7_000_000 }, "search missed self: Strong search op 1 (client 3, 0.000ms..7.000ms) for present probe 2 ranked nothing first"),
        (SearchFoundDeleted { op: 1, probe: 2, client: 3, rank: 4, because: Some(5), invoked_at: 6, completed_at: 7 }, "search found deleted: Strong search op 1 (client 3, 0.000ms..0.000ms) returned its deleted probe 2 (op 5) at rank 4"),
        (BadSearchResult { op: 1, reason: "key 3 returned twice".into() }, "bad search result: op 1: key 3 returned twice"),
    ]);
}

/// Timestamps and promises.
#[test]
fn other_messages() {
    use Violation::*;
    pinned(vec![
        (TimestampRegressed { earlier: 1, later: 2, earlier_ts: 3, later_ts: 2, earlier_completed_at: 25, later_invoked_at: 30 }, "timestamp regressed: op 1 completed at 0.000ms with ts 3, but op 2, invoked after it at 0.000ms, got ts 2"),
        (TimestampRegressionsOmitted { omitted: 4 }, "timestamp regressed: 4 more not listed"),
        (WorkloadPromiseBroken { op: 1, key: 2, reason: "overlaps the previous write of this key" }, "workload broke a promise the checker relies on: op 1, key 2: overlaps the previous write of this key"),
    ]);
}
