//! Tests of the model checkers, one file per checker; the helpers here record ops.

mod exact_search;
mod final_state;
mod messages;
mod promises;
mod reads;
mod searches;
mod timestamps;

use std::collections::BTreeSet;

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

fn read(h: &mut History, client: u32, level: Level, at: Nanos, done: Nanos, seen: &[Key]) -> u64 {
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
