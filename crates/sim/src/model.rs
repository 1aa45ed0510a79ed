//! Operation histories recorded by simulated clients, and the checks that judge them
//! against a reference model of the collection.
//!
//! A client records each operation when it invokes it ([`History::invoke`]) and again
//! when it learns how it ended: acknowledged ([`History::ack`], [`History::ack_read`]),
//! refused (a definite error: the operation did not happen, [`History::refuse`]) or
//! unknown (a timeout, a crash, an I/O error after the WAL may already hold it: the
//! operation may take effect, possibly much later, [`History::unknown`]). An operation
//! still pending when the checks run is treated as unknown.
//!
//! # The model
//!
//! A key is either present or absent. Inserts and upserts make it present (a key's
//! vector is a pure function of the key, so both write the same value), deletes make it
//! absent. Before any write a key is absent. For a window of real time (a read's
//! `[invoked, completed]`, or the end of the run) each key has a set of possible states:
//! * an acknowledged write that completed before the window opened is in effect: it sets
//!   the state definitely (unless an earlier write may still land, see below);
//! * a refused write changes nothing;
//! * a write invoked before the window closed but not completed before it opened may or
//!   may not be visible inside it, so its state joins the possible set;
//! * a pending or unknown write may land at any later moment, so from its invocation on
//!   its state stays possible for ever.
//!
//! A state is *definite* when only one is possible; the checks judge definite states and
//! leave uncertain ones alone, except for the phantom rule: a key seen anywhere must
//! have had at least one non-refused insert or upsert invoked before it was seen.
//!
//! # What the workload promises (the checks rely on it)
//!
//! * Each client owns a disjoint set of keys and runs one operation at a time, so the
//!   writes on one key are totally ordered by invocation and never overlap.
//! * After a write on a key ends unknown, the client never writes that key again (the
//!   key's state is uncertain for ever after). Deletes are only sent for keys the client
//!   believes present, inserts only for keys never written before; upserts may target
//!   any owned key.
//! * Reads and searches may overlap writes of other clients, never of their own client.
//!
//! The checks lean on one writer per key, no overlapping writes on a key and nothing
//! written after an unknown write; [`History::check_promises`] reports a history that
//! breaks those (the other checks stay conservative on it, but it is a harness bug).
//! The insert and delete rules only keep the workload inside what the model describes
//! (an insert of an existing key would make a duplicate row in Milvus).
//!
//! # Cost
//!
//! Each read is judged against every key it must agree with, so a run costs about
//! (reads x keys); keys whose writes all ended before a read began take a shortcut.
//! 500 full scans of 5,000 keys check in about half a second unoptimised.
//!
//! # Equal timestamps
//!
//! Simulated time does not move between a response and the client's next call, so two
//! events often share an instant. Between different clients an equal time is
//! ambiguous and is treated as overlap; within one client the operation ids (assigned
//! in invocation order) give the true order, since a client is sequential.

use std::collections::{BTreeMap, BTreeSet};
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
    fn write(&self) -> Option<(&[Key], bool)> {
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

/// Knobs for the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckConfig {
    /// The staleness bound the server promises for Bounded reads.
    pub staleness: Nanos,
    /// Extra allowance on top of `staleness` (time-tick granularity, scheduling).
    pub slack: Nanos,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            staleness: 5_000_000_000,
            slack: 1_000_000_000,
        }
    }
}

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

/// ` (op N)` or nothing.
fn by_op(op: Option<u64>) -> String {
    op.map(|o| format!(" (op {o})")).unwrap_or_default()
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
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
                    "stale read: {level} read op {read} (client {client}, {}..{}) {did} key {key}, {what} as of {}{}",
                    ms(*invoked_at),
                    ms(*completed_at),
                    ms(*as_of),
                    by_op(*because)
                )
            }
            PhantomRead { read, key, what, level, client, refused, invoked_at, completed_at } => {
                write!(
                    f,
                    "phantom read: {level} {what} op {read} (client {client}, {}..{}) returned key {key}, which no write invoked before it completed created",
                    ms(*invoked_at),
                    ms(*completed_at)
                )?;
                if let Some(r) = refused {
                    write!(f, " (op {r} was refused)")?;
                }
                Ok(())
            }
            DuplicateInRead { read, key, level, client } => write!(
                f,
                "duplicate: {level} read op {read} (client {client}) returned key {key} more than once"
            ),
            SearchMissedSelf { op, probe, client, first, because, invoked_at, completed_at } => {
                let first = first.map_or("nothing".to_string(), |k| format!("key {k}"));
                write!(
                    f,
                    "search missed self: Strong search op {op} (client {client}, {}..{}) for present probe {probe}{} ranked {first} first",
                    ms(*invoked_at),
                    ms(*completed_at),
                    by_op(*because)
                )
            }
            SearchFoundDeleted { op, probe, client, rank, because, invoked_at, completed_at } => write!(
                f,
                "search found deleted: Strong search op {op} (client {client}, {}..{}) returned its deleted probe {probe}{} at rank {rank}",
                ms(*invoked_at),
                ms(*completed_at),
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

    /// Runs every check.
    pub fn check_all(&self, final_visible: &BTreeSet<Key>, cfg: &CheckConfig) -> Vec<Violation> {
        let mut out = self.check_promises();
        out.extend(self.check_final(final_visible));
        out.extend(self.check_reads(cfg));
        out.extend(self.check_searches());
        out.extend(self.check_timestamps());
        out
    }

    /// Reports writes that break the workload's promises: two clients writing one key,
    /// overlapping writes on one key, a write after an unknown (or pending) one.
    pub fn check_promises(&self) -> Vec<Violation> {
        let index = Index::new(&self.ops);
        let mut out = Vec::new();
        for (&key, hist) in &index.by_key {
            let writes = &hist.writes;
            let owner = writes.first().map(|w| w.op.client);
            let mut prev: Option<&OpRecord> = None;
            for w in writes {
                let broken = |reason| Violation::WorkloadPromiseBroken {
                    op: w.op.id,
                    key,
                    reason,
                };
                if Some(w.op.client) != owner {
                    out.push(broken("a second client writes this key"));
                } else if let Some(p) = prev {
                    if matches!(p.outcome, Outcome::Unknown | Outcome::Pending) {
                        out.push(broken("written again after a write that ended unknown"));
                    } else if p.completed_at.is_some_and(|c| c > w.op.invoked_at) {
                        out.push(broken("overlaps the previous write of this key"));
                    }
                }
                prev = Some(w.op);
            }
        }
        out
    }

    /// Judges the keys visible at the end (read with Strong after faults healed).
    pub fn check_final(&self, final_visible: &BTreeSet<Key>) -> Vec<Violation> {
        let index = Index::new(&self.ops);
        let win = Window::end();
        let keys: BTreeSet<Key> = index
            .by_key
            .keys()
            .chain(final_visible.iter())
            .copied()
            .collect();
        let mut out = Vec::new();
        for key in keys {
            let v = index.view(key, &win);
            let visible = final_visible.contains(&key);
            let by = v.settled_by.and_then(|id| self.op(id));
            match (v.definite(), visible) {
                (Some(true), false) => {
                    if let Some(op) = by {
                        out.push(Violation::LostWrite {
                            key,
                            op: op.id,
                            client: op.client,
                            acked_at: op.completed_at.unwrap_or(op.invoked_at),
                        });
                    }
                }
                (Some(false), true) => match (by, v.refused_put.and_then(|id| self.op(id))) {
                    (Some(op), _) => out.push(Violation::DeleteUndone {
                        key,
                        op: op.id,
                        client: op.client,
                        acked_at: op.completed_at.unwrap_or(op.invoked_at),
                    }),
                    (None, Some(op)) => out.push(Violation::RefusedWriteVisible {
                        key,
                        op: op.id,
                        client: op.client,
                    }),
                    (None, None) => out.push(Violation::Phantom { key }),
                },
                _ => {}
            }
        }
        out
    }

    /// Judges every acknowledged `Read` by its level (see the module docs).
    pub fn check_reads(&self, cfg: &CheckConfig) -> Vec<Violation> {
        let index = Index::new(&self.ops);
        let all: Vec<(Key, &KeyHistory)> = index.by_key.iter().map(|(k, h)| (*k, h)).collect();
        let mut own: BTreeMap<u32, Vec<(Key, &KeyHistory)>> = BTreeMap::new();
        for (&client, keys) in &index.by_client {
            let hists = keys.iter().filter_map(|k| Some((*k, index.by_key.get(k)?)));
            own.insert(client, hists.collect());
        }
        let mut out = Vec::new();
        for op in &self.ops {
            let (OpKind::Read { level, seen }, Some(win)) = (&op.kind, Window::of(op)) else {
                continue;
            };
            // Which keys have to agree with the model, and as of when.
            let (judged, win): (&[(Key, &KeyHistory)], Window) = match level {
                Level::Strong => (&all, win),
                Level::Session => (own.get(&op.client).map_or(&[], Vec::as_slice), win),
                Level::Bounded => {
                    let lag = cfg.staleness.saturating_add(cfg.slack);
                    match op.invoked_at.checked_sub(lag) {
                        Some(from) => (&all, Window { from, ..win }),
                        None => (&[], win),
                    }
                }
                Level::Eventually => (&[], win),
            };
            let mut seen = seen.clone();
            seen.sort_unstable();
            for pair in seen.windows(2).filter(|p| p[0] == p[1]) {
                out.push(Violation::DuplicateInRead {
                    read: op.id,
                    key: pair[0],
                    level: *level,
                    client: op.client,
                });
            }
            seen.dedup();
            // Merge the two sorted lists so each key is looked at once, in key order.
            let (mut i, mut j) = (0, 0);
            loop {
                let (key, hist, is_judged, saw) = match (judged.get(i), seen.get(j)) {
                    (Some(&(key, hist)), s) if s.is_none_or(|&s| key <= s) => {
                        i += 1;
                        let saw = s == Some(&key);
                        j += usize::from(saw);
                        (key, Some(hist), true, saw)
                    }
                    (_, Some(&key)) => {
                        j += 1;
                        (key, index.by_key.get(&key), false, true)
                    }
                    _ => break,
                };
                let v = hist.map_or(View::INITIAL, |h| h.view(&win));
                if saw && !v.any_put {
                    out.push(Violation::PhantomRead {
                        read: op.id,
                        key,
                        what: "read",
                        level: *level,
                        client: op.client,
                        refused: v.refused_put,
                        invoked_at: op.invoked_at,
                        completed_at: win.to,
                    });
                    continue;
                }
                match v.definite() {
                    Some(present) if is_judged && present != saw => {
                        out.push(Violation::StaleRead {
                            read: op.id,
                            key,
                            expected_present: present,
                            level: *level,
                            client: op.client,
                            because: v.settled_by,
                            as_of: win.from,
                            invoked_at: op.invoked_at,
                            completed_at: win.to,
                        });
                    }
                    _ => {}
                }
            }
        }
        out
    }

    /// Judges every acknowledged `Search`: length, duplicates and the phantom rule for
    /// all; for Strong ones also that a present probe comes first and a deleted one not
    /// at all (the query is the probe's own vector, at distance 0 from itself; this
    /// assumes distinct keys have distinct vectors).
    pub fn check_searches(&self) -> Vec<Violation> {
        let index = Index::new(&self.ops);
        let mut out = Vec::new();
        for op in &self.ops {
            let (
                OpKind::Search {
                    level,
                    probe,
                    k,
                    result,
                },
                Some(win),
            ) = (&op.kind, Window::of(op))
            else {
                continue;
            };
            let bad = |reason: String| Violation::BadSearchResult { op: op.id, reason };
            if result.len() > *k {
                out.push(bad(format!(
                    "{} results for a top-{k} search",
                    result.len()
                )));
            }
            let mut seen = BTreeSet::new();
            for &key in result {
                if !seen.insert(key) {
                    out.push(bad(format!("key {key} returned twice")));
                    continue;
                }
                let v = index.view(key, &win);
                if !v.any_put {
                    out.push(Violation::PhantomRead {
                        read: op.id,
                        key,
                        what: "search",
                        level: *level,
                        client: op.client,
                        refused: v.refused_put,
                        invoked_at: op.invoked_at,
                        completed_at: win.to,
                    });
                }
            }
            if *level != Level::Strong || *k == 0 {
                continue;
            }
            let v = index.view(*probe, &win);
            match v.definite() {
                Some(true) if result.first() != Some(probe) => {
                    out.push(Violation::SearchMissedSelf {
                        op: op.id,
                        probe: *probe,
                        client: op.client,
                        first: result.first().copied(),
                        because: v.settled_by,
                        invoked_at: op.invoked_at,
                        completed_at: win.to,
                    })
                }
                // A probe never created is already reported by the phantom rule.
                Some(false) if v.any_put => {
                    if let Some(rank) = result.iter().position(|k| k == probe) {
                        out.push(Violation::SearchFoundDeleted {
                            op: op.id,
                            probe: *probe,
                            client: op.client,
                            rank,
                            because: v.settled_by,
                            invoked_at: op.invoked_at,
                            completed_at: win.to,
                        });
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Commit timestamps respect real time: if acknowledged write A completed before
    /// acknowledged write B was invoked, A's timestamp is smaller. Sweeps the writes in
    /// invocation order with the running maximum over those completed before (strictly
    /// before for other clients; for the same client, any earlier op, since a client is
    /// sequential and its next call often starts at the same simulated instant).
    /// Lists the first few regressions only.
    pub fn check_timestamps(&self) -> Vec<Violation> {
        const LISTED: usize = 5;
        let writes: Vec<Stamped> = self
            .ops
            .iter()
            .filter(|o| o.outcome == Outcome::Acked && o.kind.write().is_some())
            .filter_map(|op| {
                Some(Stamped {
                    op,
                    ts: op.ack_ts?,
                    done: op.completed_at?,
                })
            })
            .collect();
        let mut by_invoke: Vec<&Stamped> = writes.iter().collect();
        by_invoke.sort_by_key(|w| (w.op.invoked_at, w.op.id));
        let mut by_done: Vec<&Stamped> = writes.iter().collect();
        by_done.sort_by_key(|w| (w.done, w.op.id));

        let mut next_done = 0;
        let mut global: Option<&Stamped> = None;
        // Per client: its best finished op, and its ops not yet known to be finished.
        let mut own_best: BTreeMap<u32, Option<&Stamped>> = BTreeMap::new();
        let mut own_open: BTreeMap<u32, Vec<&Stamped>> = BTreeMap::new();
        let mut out = Vec::new();
        let mut found = 0usize;
        for b in by_invoke {
            while let Some(a) = by_done.get(next_done).filter(|a| a.done < b.op.invoked_at) {
                fold(&mut global, a);
                next_done += 1;
            }
            let best = own_best.entry(b.op.client).or_default();
            let open = own_open.entry(b.op.client).or_default();
            open.retain(|a| {
                let finished = a.op.id < b.op.id && a.done <= b.op.invoked_at;
                if finished {
                    fold(best, a);
                }
                !finished
            });
            let mut witness = global;
            if let Some(a) = *best {
                fold(&mut witness, a);
            }
            if let Some(a) = witness.filter(|a| a.ts >= b.ts) {
                found += 1;
                if found <= LISTED {
                    out.push(Violation::TimestampRegressed {
                        earlier: a.op.id,
                        later: b.op.id,
                        earlier_ts: a.ts,
                        later_ts: b.ts,
                        earlier_completed_at: a.done,
                        later_invoked_at: b.op.invoked_at,
                    });
                }
            }
            open.push(b);
        }
        if found > LISTED {
            out.push(Violation::TimestampRegressionsOmitted {
                omitted: found - LISTED,
            });
        }
        out
    }

    fn op(&self, id: u64) -> Option<&OpRecord> {
        self.ops.get(usize::try_from(id).ok()?)
    }
}

/// An acknowledged write with its commit timestamp, for [`History::check_timestamps`].
struct Stamped<'a> {
    op: &'a OpRecord,
    ts: u64,
    done: Nanos,
}

/// Keeps the write with the largest timestamp; the first one on ties.
fn fold<'a, 'b>(best: &mut Option<&'b Stamped<'a>>, w: &'b Stamped<'a>) {
    if best.is_none_or(|b| w.ts > b.ts) {
        *best = Some(w);
    }
}

/// One write's effect on one key.
struct KeyWrite<'a> {
    op: &'a OpRecord,
    /// Whether the write leaves the key present.
    present: bool,
}

/// A key's writes, sorted by (invocation, id), and what they leave behind.
struct KeyHistory<'a> {
    writes: Vec<KeyWrite<'a>>,
    /// Every write was invoked, and completed if it ever did, by this moment.
    quiet_since: Nanos,
    /// The largest id among the writes.
    last_id: u64,
    /// The view at the end of the run.
    end: View,
}

impl KeyHistory<'_> {
    /// The key's possible states in `win`.
    fn view(&self, win: &Window) -> View {
        // Most keys went quiet long before most reads: such a window sees every write
        // settled or still uncertain exactly as the end of the run does, so skip the walk.
        // (The id test keeps the reader's own-client ordering rule out of it.)
        let after_all = win.reader.is_none_or(|(_, id)| self.last_id < id);
        if win.from > self.quiet_since && after_all {
            return self.end;
        }
        view(&self.writes, win)
    }
}

/// The history of each key, and the keys each client wrote.
struct Index<'a> {
    by_key: BTreeMap<Key, KeyHistory<'a>>,
    by_client: BTreeMap<u32, BTreeSet<Key>>,
}

impl<'a> Index<'a> {
    fn new(ops: &'a [OpRecord]) -> Self {
        let mut writes_of: BTreeMap<Key, Vec<KeyWrite<'a>>> = BTreeMap::new();
        let mut by_client: BTreeMap<u32, BTreeSet<Key>> = BTreeMap::new();
        for op in ops {
            let Some((keys, present)) = op.kind.write() else {
                continue;
            };
            // A key listed twice in one op is one write.
            let keys: BTreeSet<Key> = keys.iter().copied().collect();
            for &key in &keys {
                writes_of
                    .entry(key)
                    .or_default()
                    .push(KeyWrite { op, present });
            }
            by_client.entry(op.client).or_default().extend(keys);
        }
        let by_key = writes_of
            .into_iter()
            .map(|(key, mut writes)| {
                writes.sort_by_key(|w| (w.op.invoked_at, w.op.id));
                let last = |w: &KeyWrite| w.op.completed_at.unwrap_or(0).max(w.op.invoked_at);
                let hist = KeyHistory {
                    quiet_since: writes.iter().map(last).max().unwrap_or(0),
                    last_id: writes.iter().map(|w| w.op.id).max().unwrap_or(0),
                    end: view(&writes, &Window::end()),
                    writes,
                };
                (key, hist)
            })
            .collect();
        Index { by_key, by_client }
    }

    /// The possible states of `key` in `win`.
    fn view(&self, key: Key, win: &Window) -> View {
        self.by_key.get(&key).map_or(View::INITIAL, |h| h.view(win))
    }
}

/// A stretch of real time in which a reader observes the collection.
#[derive(Clone, Copy)]
struct Window {
    /// Writes acknowledged before this are in effect.
    from: Nanos,
    /// Writes invoked after this are invisible.
    to: Nanos,
    /// The reading op's (client, id): orders its own client's writes exactly.
    reader: Option<(u32, u64)>,
    /// The end of the run: every acknowledged write is in effect.
    at_end: bool,
}

impl Window {
    fn end() -> Self {
        Window {
            from: Nanos::MAX,
            to: Nanos::MAX,
            reader: None,
            at_end: true,
        }
    }

    /// The interval of a completed acknowledged op.
    fn of(op: &OpRecord) -> Option<Self> {
        if op.outcome != Outcome::Acked {
            return None;
        }
        Some(Window {
            from: op.invoked_at,
            to: op.completed_at?,
            reader: Some((op.client, op.id)),
            at_end: false,
        })
    }

    /// Whether `w` definitely took effect before the window opened.
    fn settled_before(&self, w: &OpRecord) -> bool {
        if w.outcome != Outcome::Acked {
            return false;
        }
        if self.at_end {
            return true;
        }
        let Some(done) = w.completed_at else {
            return false;
        };
        match self.reader {
            // The reader's client is sequential: its earlier op finished before.
            Some((c, id)) if c == w.client && w.id < id => done <= self.from,
            _ => done < self.from,
        }
    }

    /// Whether `w` was invoked before the window closed, so it may show inside it.
    fn may_precede(&self, w: &OpRecord) -> bool {
        match self.reader {
            _ if self.at_end => true,
            Some((c, id)) if c == w.client => w.id < id,
            _ => w.invoked_at <= self.to,
        }
    }
}

/// What a key may look like inside a window.
#[derive(Clone, Copy)]
struct View {
    present: bool,
    absent: bool,
    /// The acknowledged write that last set the state definitely.
    settled_by: Option<u64>,
    /// A non-refused insert or upsert may precede the window's end (the phantom rule).
    any_put: bool,
    /// The last refused insert or upsert that precedes the window's end.
    refused_put: Option<u64>,
}

impl View {
    /// Before any write: absent.
    const INITIAL: View = View {
        present: false,
        absent: true,
        settled_by: None,
        any_put: false,
        refused_put: None,
    };

    /// The only possible state (true = present), if there is just one.
    fn definite(&self) -> Option<bool> {
        (self.present != self.absent).then_some(self.present)
    }
}

/// Walks a key's writes in invocation order, tracking the possible states in `win`.
fn view(writes: &[KeyWrite], win: &Window) -> View {
    let mut v = View::INITIAL;
    // The latest moment an earlier write may still land (MAX once one may land any time).
    let mut earlier_land: Nanos = 0;
    for w in writes {
        if !win.may_precede(w.op) {
            continue;
        }
        match w.op.outcome {
            Outcome::Refused => {
                if w.present {
                    v.refused_put = Some(w.op.id);
                }
                continue;
            }
            Outcome::Acked | Outcome::Pending | Outcome::Unknown => {}
        }
        v.any_put |= w.present;
        // The write overrides what came before only if it is in effect and nothing
        // earlier can land after it.
        if win.settled_before(w.op) && earlier_land <= w.op.invoked_at {
            v.present = w.present;
            v.absent = !w.present;
            v.settled_by = Some(w.op.id);
        } else if w.present {
            v.present = true;
        } else {
            v.absent = true;
        }
        let lands_by = match (w.op.outcome, w.op.completed_at) {
            (Outcome::Acked, Some(done)) => done,
            _ => Nanos::MAX,
        };
        earlier_land = earlier_land.max(lands_by);
    }
    v
}

/// Squared L2 distance; vectors of different lengths are infinitely far apart.
pub fn squared_l2(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Rank order: nearer first, ties by key ascending.
fn rank_order(a: &(Key, f32), b: &(Key, f32)) -> std::cmp::Ordering {
    a.1.total_cmp(&b.1).then(a.0.cmp(&b.0))
}

/// The exact top-k of `candidates` by squared L2 distance to `probe_vec`, ties broken
/// by key ascending.
pub fn brute_force_topk(
    candidates: &BTreeSet<Key>,
    probe_vec: &[f32],
    k: usize,
    vector_of: impl Fn(Key) -> Vec<f32>,
) -> Vec<(Key, f32)> {
    let mut all: Vec<(Key, f32)> = candidates
        .iter()
        .map(|&c| (c, squared_l2(probe_vec, &vector_of(c))))
        .collect();
    if k == 0 {
        return Vec::new();
    }
    if k < all.len() {
        // Partition first so a small k over many candidates doesn't sort them all.
        all.select_nth_unstable_by(k - 1, rank_order);
        all.truncate(k);
    }
    all.sort_by(rank_order);
    all
}

/// Whether two distances agree: within `eps`, relative to the magnitude above 1 (a
/// server summing in another order drifts in proportion to the distance).
fn close(a: f32, b: f32, eps: f32) -> bool {
    (a - b).abs() <= eps * 1f32.max(a.abs()).max(b.abs())
}

/// Accepts `got` if it is as good as the exact top-k `expected`: the same length, the
/// distances equal rank by rank within `eps` (so tied keys may come in either order),
/// no key twice, and each key's distance equal to its expected one; a key outside
/// `expected` is allowed only at the cut-off distance (a tie broken the other way).
/// It can't tell whether such a key is a real candidate: [`check_search_exact`] does.
pub fn compare_topk(expected: &[(Key, f32)], got: &[(Key, f32)], eps: f32) -> Result<(), String> {
    if got.len() != expected.len() {
        return Err(format!(
            "{} results where the exact top-k has {}",
            got.len(),
            expected.len()
        ));
    }
    for (rank, (e, g)) in expected.iter().zip(got).enumerate() {
        if !close(e.1, g.1, eps) {
            return Err(format!(
                "rank {rank}: key {} at distance {} where the exact top-k has key {} at {}",
                g.0, g.1, e.0, e.1
            ));
        }
    }
    let want: BTreeMap<Key, f32> = expected.iter().copied().collect();
    let cutoff = expected.last().map(|e| e.1);
    let mut seen = BTreeSet::new();
    for &(key, d) in got {
        if !seen.insert(key) {
            return Err(format!("key {key} returned twice"));
        }
        match want.get(&key) {
            Some(&w) if !close(w, d, eps) => {
                return Err(format!("key {key} at distance {d}, expected {w}"));
            }
            Some(_) => {}
            None if cutoff.is_some_and(|c| close(c, d, eps)) => {}
            None => {
                return Err(format!(
                    "key {key} at distance {d} is not in the exact top-k and not tied at its cut-off"
                ));
            }
        }
    }
    Ok(())
}

/// Judges one search result (keys with the distances the server returned) against a
/// brute-force search over `candidates`, the keys known to be visible: every key must
/// be a candidate at its true distance, and the whole must match the exact top-k up to
/// ties (see [`compare_topk`]). Meant for searches run when the visible set is known
/// exactly, e.g. after the final Strong read.
pub fn check_search_exact(
    op: u64,
    candidates: &BTreeSet<Key>,
    probe_vec: &[f32],
    k: usize,
    got: &[(Key, f32)],
    eps: f32,
    vector_of: impl Fn(Key) -> Vec<f32>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let bad = |reason| Violation::BadSearchResult { op, reason };
    for &(key, d) in got {
        if !candidates.contains(&key) {
            out.push(bad(format!("key {key} is not in the collection")));
            continue;
        }
        let true_d = squared_l2(probe_vec, &vector_of(key));
        if !close(true_d, d, eps) {
            out.push(bad(format!(
                "key {key} reported at distance {d}, its true distance is {true_d}"
            )));
        }
    }
    let expected = brute_force_topk(candidates, probe_vec, k, &vector_of);
    if let Err(reason) = compare_topk(&expected, got, eps) {
        out.push(bad(reason));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    fn set(keys: &[Key]) -> BTreeSet<Key> {
        keys.iter().copied().collect()
    }

    /// Records a write that is acked at `done` with commit timestamp `ts`.
    fn acked(h: &mut History, client: u32, kind: OpKind, at: Nanos, done: Nanos, ts: u64) -> u64 {
        let id = h.invoke(client, kind, at);
        h.ack(id, done, Some(ts));
        id
    }

    fn read(
        h: &mut History,
        client: u32,
        level: Level,
        at: Nanos,
        done: Nanos,
        seen: &[Key],
    ) -> u64 {
        let id = h.invoke(
            client,
            OpKind::Read {
                level,
                seen: vec![],
            },
            at,
        );
        h.ack_read(id, done, seen.to_vec());
        id
    }

    fn search(
        h: &mut History,
        level: Level,
        probe: Key,
        k: usize,
        at: Nanos,
        done: Nanos,
        result: &[Key],
    ) -> u64 {
        let kind = OpKind::Search {
            level,
            probe,
            k,
            result: vec![],
        };
        let id = h.invoke(9, kind, at);
        h.ack_read(id, done, result.to_vec());
        id
    }

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

    #[test]
    fn odd_input_does_not_panic() {
        let mut h = History::default();
        h.ack(99, 1, None);
        h.ack_read(99, 1, vec![1]);
        h.refuse(99, 1);
        let a = h.invoke(1, OpKind::Insert(vec![1, 1]), 10);
        h.ack(a, 5, Some(1)); // completes "before" invocation: clamped
        h.refuse(a, 20); // second completion ignored
        assert_eq!(h.ops()[0].outcome, Outcome::Acked);
        assert_eq!(h.ops()[0].completed_at, Some(10));
        let s = h.invoke(
            2,
            OpKind::Search {
                level: Level::Strong,
                probe: 1,
                k: 0,
                result: vec![],
            },
            20,
        );
        h.ack_read(s, 30, vec![]);
        let f = h.invoke(2, OpKind::Flush, 30);
        h.ack(f, 40, Some(0));
        assert!(h.check_all(&set(&[1]), &CheckConfig::default()).is_empty());
        assert!(brute_force_topk(&set(&[1]), &[0.0], 0, |_| vec![0.0]).is_empty());
        assert_eq!(squared_l2(&[1.0], &[1.0, 2.0]), f32::INFINITY);
    }

    #[test]
    fn counts_and_summary() {
        let mut h = History::default();
        acked(&mut h, 1, OpKind::Insert(vec![1]), 0, 1, 1);
        let r = h.invoke(1, OpKind::Insert(vec![2]), 2);
        h.refuse(r, 3);
        h.invoke(1, OpKind::Delete(vec![1]), 4);
        let c = h.counts();
        assert_eq!(c["insert"], (1, 1, 0));
        assert_eq!(c["delete"], (0, 0, 1));
        assert_eq!(
            h.summary(),
            "3 ops (acked/refused/unknown): delete 0/0/1, insert 1/1/0 (1 still pending, counted as unknown)"
        );
    }

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
            check_search_exact(1, &cands, &line(3), 2, &[(3, 0.0), (4, 1.0)], 1e-4, line)
                .is_empty()
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
}
