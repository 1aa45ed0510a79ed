//! [`Violation`]: a broken invariant with the operations that show it, and its
//! one-line message (reports and trace hashes carry the message, so its wording is
//! part of the output).

use std::fmt;

use super::history::{Key, Level, Nanos};

/// A broken invariant, with the operations that show it.
#[derive(Debug, Clone, PartialEq)]
pub enum Violation {
    /// At the end, `key` is missing although its last write `op`, an acknowledged
    /// insert or upsert, definitely made it present.
    LostWrite {
        key: Key,
        op: u64,
        client: u32,
        acked_at: Nanos,
    },
    /// At the end, `key` is visible although the acknowledged delete `op` was its last
    /// definite write.
    DeleteUndone {
        key: Key,
        op: u64,
        client: u32,
        acked_at: Nanos,
    },
    /// At the end, `key` is visible but nothing ever wrote it.
    Phantom { key: Key },
    /// At the end, `key` is visible but every write of it was refused (`op` is the last).
    RefusedWriteVisible { key: Key, op: u64, client: u32 },
    /// A read disagreed with a definite state: it missed a key that was present
    /// (`expected_present`) or saw one that was deleted. `because` is the write that made
    /// the state definite; `as_of` is the moment it had to be in effect by (the read's
    /// invocation, or for Bounded reads that minus the staleness bound).
    StaleRead {
        read: u64,
        key: Key,
        expected_present: bool,
        level: Level,
        client: u32,
        because: Option<u64>,
        as_of: Nanos,
        invoked_at: Nanos,
        completed_at: Nanos,
    },
    /// A read or search (`what`) returned a key that no non-refused insert or upsert
    /// invoked before it completed could have created. `refused` names a refused one.
    PhantomRead {
        read: u64,
        key: Key,
        what: &'static str,
        level: Level,
        client: u32,
        refused: Option<u64>,
        invoked_at: Nanos,
        completed_at: Nanos,
    },
    /// A read returned the same key twice (primary keys are unique).
    DuplicateInRead {
        read: u64,
        key: Key,
        level: Level,
        client: u32,
    },
    /// A Strong search for a definitely present probe did not rank the probe first
    /// (`first` is what it ranked first; `because` made the probe present).
    SearchMissedSelf {
        op: u64,
        probe: Key,
        client: u32,
        first: Option<Key>,
        because: Option<u64>,
        invoked_at: Nanos,
        completed_at: Nanos,
    },
    /// A Strong search returned its probe at `rank` although `because` deleted it
    /// before the search began.
    SearchFoundDeleted {
        op: u64,
        probe: Key,
        client: u32,
        rank: usize,
        because: Option<u64>,
        invoked_at: Nanos,
        completed_at: Nanos,
    },
    /// A search result is malformed (too long, duplicates, wrong distances...).
    BadSearchResult { op: u64, reason: String },
    /// `earlier` completed before `later` was invoked, yet did not get a smaller commit
    /// timestamp.
    TimestampRegressed {
        earlier: u64,
        later: u64,
        earlier_ts: u64,
        later_ts: u64,
        earlier_completed_at: Nanos,
        later_invoked_at: Nanos,
    },
    /// How many further timestamp regressions were found but not listed.
    TimestampRegressionsOmitted { omitted: usize },
    /// The history breaks a promise the checks rely on: a harness bug, not a server one.
    WorkloadPromiseBroken {
        op: u64,
        key: Key,
        reason: &'static str,
    },
}

/// Formats simulated nanoseconds as milliseconds, e.g. `1234.567ms`.
fn ms(n: Nanos) -> String {
    format!("{}.{:03}ms", n / 1_000_000, (n / 1_000) % 1_000)
}

/// An operation's interval, e.g. `10.000ms..12.500ms`.
fn span(from: Nanos, to: Nanos) -> String {
    format!("{}..{}", ms(from), ms(to))
}

/// ` (op N)` or nothing.
fn by_op(op: Option<u64>) -> String {
    op.map(|o| format!(" (op {o})")).unwrap_or_default()
}

/// ` (op N was refused)` or nothing.
fn refused_note(op: Option<u64>) -> String {
    op.map(|o| format!(" (op {o} was refused)"))
        .unwrap_or_default()
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Violation::*;
        match self {
            LostWrite { key, op, client, acked_at } => write!(
                f,
                "lost write: key {key} is missing at the end although op {op} (client {client}, acked at {}) wrote it last",
                ms(*acked_at)
            ),
            DeleteUndone { key, op, client, acked_at } => write!(
                f,
                "delete undone: key {key} is visible at the end although op {op} (client {client}, acked at {}) deleted it",
                ms(*acked_at)
            ),
            Phantom { key } => {
                write!(f, "phantom: key {key} is visible at the end but was never written")
            }
            RefusedWriteVisible { key, op, client } => write!(
                f,
                "refused write visible: key {key} is visible at the end but its writes were refused (last: op {op}, client {client})"
            ),
            StaleRead { read, key, expected_present, level, client, because, as_of, invoked_at, completed_at } => {
                let (did, what) = if *expected_present {
                    ("missed", "present")
                } else {
                    ("saw", "deleted")
                };
                write!(
                    f,
                    "stale read: {level} read op {read} (client {client}, {}) {did} key {key}, {what} as of {}{}",
                    span(*invoked_at, *completed_at),
                    ms(*as_of),
                    by_op(*because)
                )
            }
            PhantomRead { read, key, what, level, client, refused, invoked_at, completed_at } => write!(
                f,
                "phantom read: {level} {what} op {read} (client {client}, {}) returned key {key}, which no write invoked before it completed created{}",
                span(*invoked_at, *completed_at),
                refused_note(*refused)
            ),
            DuplicateInRead { read, key, level, client } => write!(
                f,
                "duplicate: {level} read op {read} (client {client}) returned key {key} more than once"
            ),
            SearchMissedSelf { op, probe, client, first, because, invoked_at, completed_at } => {
                let first = first.map_or("nothing".to_string(), |k| format!("key {k}"));
                write!(
                    f,
                    "search missed self: Strong search op {op} (client {client}, {}) for present probe {probe}{} ranked {first} first",
                    span(*invoked_at, *completed_at),
                    by_op(*because)
                )
            }
            SearchFoundDeleted { op, probe, client, rank, because, invoked_at, completed_at } => write!(
                f,
                "search found deleted: Strong search op {op} (client {client}, {}) returned its deleted probe {probe}{} at rank {rank}",
                span(*invoked_at, *completed_at),
                by_op(*because)
            ),
            BadSearchResult { op, reason } => write!(f, "bad search result: op {op}: {reason}"),
            TimestampRegressed { earlier, later, earlier_ts, later_ts, earlier_completed_at, later_invoked_at } => write!(
                f,
                "timestamp regressed: op {earlier} completed at {} with ts {earlier_ts}, but op {later}, invoked after it at {}, got ts {later_ts}",
                ms(*earlier_completed_at),
                ms(*later_invoked_at)
            ),
            TimestampRegressionsOmitted { omitted } => {
                write!(f, "timestamp regressed: {omitted} more not listed")
            }
            WorkloadPromiseBroken { op, key, reason } => write!(
                f,
                "workload broke a promise the checker relies on: op {op}, key {key}: {reason}"
            ),
        }
    }
}
