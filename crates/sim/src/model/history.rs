//! What a run records: the operation types ([`OpKind`], [`OpRecord`], [`Outcome`],
//! [`Level`]) and the [`History`] that holds them in invocation order, with the
//! completions that fill them in and the counts a report prints. The checkers in the
//! sibling modules read a history; nothing here judges one.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

pub type Key = i64;
/// Simulated time since the start of the run.
pub type Nanos = u64;

/// The consistency level a read or search asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Strong,
    Session,
    Bounded,
    Eventually,
}

/// How an operation ended, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pending,
    Acked,
    /// Definitely did not happen.
    Refused,
    /// May have happened, possibly later.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OpKind {
    /// Writes the keys (each key's vector is a pure function of the key, so insert and
    /// upsert write the same value).
    Insert(Vec<Key>),
    Upsert(Vec<Key>),
    Delete(Vec<Key>),
    /// A scan of the whole collection: which keys were visible. `seen` is filled on ack.
    Read {
        level: Level,
        seen: Vec<Key>,
    },
    /// A top-k vector search with the vector of `probe` as the query; `result` keys in
    /// rank order, filled on ack.
    Search {
        level: Level,
        probe: Key,
        k: usize,
        result: Vec<Key>,
    },
    Flush,
}

impl OpKind {
    /// A short name, for summaries.
    pub fn name(&self) -> &'static str {
        match self {
            OpKind::Insert(_) => "insert",
            OpKind::Upsert(_) => "upsert",
            OpKind::Delete(_) => "delete",
            OpKind::Read { .. } => "read",
            OpKind::Search { .. } => "search",
            OpKind::Flush => "flush",
        }
    }

    /// For a write: its keys and whether it leaves them present.
    pub(super) fn write(&self) -> Option<(&[Key], bool)> {
        match self {
            OpKind::Insert(ks) | OpKind::Upsert(ks) => Some((ks, true)),
            OpKind::Delete(ks) => Some((ks, false)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OpRecord {
    pub id: u64,
    pub client: u32,
    pub kind: OpKind,
    pub invoked_at: Nanos,
    pub completed_at: Option<Nanos>,
    pub outcome: Outcome,
    /// Commit timestamp the server returned for an acknowledged write.
    pub ack_ts: Option<u64>,
}

/// The history of one run. Operation ids are indexes into it, in invocation order.
#[derive(Default, Clone, Debug)]
pub struct History {
    ops: Vec<OpRecord>,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl History {
    /// Records an invocation; returns its id.
    pub fn invoke(&mut self, client: u32, kind: OpKind, now: Nanos) -> u64 {
        let id = self.ops.len() as u64;
        self.ops.push(OpRecord {
            id,
            client,
            kind,
            invoked_at: now,
            completed_at: None,
            outcome: Outcome::Pending,
            ack_ts: None,
        });
        id
    }

    /// The op if it is still pending. The first completion wins: a second one, or one
    /// for an unknown id, is ignored rather than trusted.
    fn pending_mut(&mut self, id: u64) -> Option<&mut OpRecord> {
        let op = self.ops.get_mut(usize::try_from(id).ok()?)?;
        (op.outcome == Outcome::Pending).then_some(op)
    }

    fn complete(&mut self, id: u64, now: Nanos, outcome: Outcome) -> Option<&mut OpRecord> {
        let op = self.pending_mut(id)?;
        op.outcome = outcome;
        // A completion can't precede its invocation; clamping keeps intervals sane.
        op.completed_at = Some(now.max(op.invoked_at));
        Some(op)
    }

    /// Records an acknowledgement, with the commit timestamp of an acknowledged write.
    pub fn ack(&mut self, id: u64, now: Nanos, ack_ts: Option<u64>) {
        if let Some(op) = self.complete(id, now, Outcome::Acked) {
            op.ack_ts = ack_ts;
        }
    }

    /// Records an acknowledged read or search with the keys it returned.
    pub fn ack_read(&mut self, id: u64, now: Nanos, keys: Vec<Key>) {
        if let Some(op) = self.complete(id, now, Outcome::Acked) {
            match &mut op.kind {
                OpKind::Read { seen, .. } => *seen = keys,
                OpKind::Search { result, .. } => *result = keys,
                _ => {}
            }
        }
    }

    /// Records a definite failure: the operation did not happen.
    pub fn refuse(&mut self, id: u64, now: Nanos) {
        self.complete(id, now, Outcome::Refused);
    }

    /// Records an indefinite failure: the operation may happen, possibly later.
    pub fn unknown(&mut self, id: u64, now: Nanos) {
        self.complete(id, now, Outcome::Unknown);
    }

    pub fn ops(&self) -> &[OpRecord] {
        &self.ops
    }

    /// (acked, refused, unknown) by op name. Ops still pending count as unknown, as
    /// they do in the checks.
    pub fn counts(&self) -> BTreeMap<&'static str, (usize, usize, usize)> {
        let mut out: BTreeMap<&'static str, (usize, usize, usize)> = BTreeMap::new();
        for op in &self.ops {
            let c = out.entry(op.kind.name()).or_default();
            match op.outcome {
                Outcome::Acked => c.0 += 1,
                Outcome::Refused => c.1 += 1,
                Outcome::Unknown | Outcome::Pending => c.2 += 1,
            }
        }
        out
    }

    /// One line: ops by kind and outcome.
    pub fn summary(&self) -> String {
        let kinds: Vec<String> = self
            .counts()
            .iter()
            .map(|(name, (a, r, u))| format!("{name} {a}/{r}/{u}"))
            .collect();
        let pending = self
            .ops
            .iter()
            .filter(|o| o.outcome == Outcome::Pending)
            .count();
        let mut line = format!(
            "{} ops (acked/refused/unknown): {}",
            self.ops.len(),
            kinds.join(", ")
        );
        if pending > 0 {
            let _ = write!(line, " ({pending} still pending, counted as unknown)");
        }
        line
    }

    /// The op with this id, if there is one.
    pub(super) fn op(&self, id: u64) -> Option<&OpRecord> {
        let op = self.ops.get(usize::try_from(id).ok()?)?;
        // The checkers name ops by id and look them up here.
        quiver_core::invariant!(op.id == id, "op {} is stored at index {id}", op.id);
        Some(op)
    }
}
