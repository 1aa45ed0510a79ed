//! Neighbour collections: two more collections whose shards ride on the same
//! pchannels as the checked collection's, written to throughout a run, so every shared
//! log interleaves the records of several vchannels and every recovery, move and
//! truncation of a pchannel has to sort them apart.
//!
//! A single writer inserts fresh keys (no upserts or deletes, so the check is simple
//! and exact): after the faults heal, every neighbour must hold every key whose insert
//! was acknowledged, and nothing that was never sent. Keys are in their own range, so
//! one leaking into the checked collection is a phantom its model reports too.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quiver_core::rt;
use quiver_nodes::pb::milvus::milvus_service_server::MilvusService;
use quiver_nodes::proxy::Proxy;
use tonic::Request;

use crate::client;
use crate::model::Key;
use crate::workload::{scan_until, until_ok, DIM};

/// The neighbour collections.
pub const NEIGHBOURS: [&str; 2] = ["sim_n1", "sim_n2"];
/// Neighbour keys start here (the checked collection's clients stay far below).
const FIRST_KEY: Key = 900_000_000;

/// What the writer sent to one neighbour.
#[derive(Debug, Default, Clone)]
pub struct Sent {
    pub acked: BTreeSet<Key>,
    pub sent: BTreeSet<Key>,
}

/// Creates the neighbours (each with `shards` shards, FLAT index, loaded).
pub async fn setup(proxy: &Proxy, shards: i32) {
    for name in NEIGHBOURS {
        until_ok(|| {
            proxy.create_collection(Request::new(client::create_collection(name, DIM, shards)))
        })
        .await;
        until_ok(|| proxy.create_index(Request::new(client::create_flat_index(name, "L2")))).await;
        until_ok(|| proxy.load_collection(Request::new(client::load(name)))).await;
    }
}

/// What the writer sent, kept outside the node it runs on (a kill of that node must
/// not lose the record).
pub type Record = Arc<Mutex<Vec<Sent>>>;

pub fn record() -> Record {
    Arc::new(Mutex::new(vec![Sent::default(); NEIGHBOURS.len()]))
}

/// Inserts two fresh keys into a neighbour (in turn) every `every` until `until`.
pub async fn run_writer(proxy: Arc<Proxy>, out: Record, every: Duration, until: rt::Instant) {
    let mut next = FIRST_KEY;
    let mut turn = 0;
    let with =
        |f: &mut dyn FnMut(&mut Vec<Sent>)| f(&mut out.lock().unwrap_or_else(|e| e.into_inner()));
    while rt::now() < until {
        let keys = [next, next + 1];
        next += 2;
        let i = turn % NEIGHBOURS.len();
        with(&mut |s| s[i].sent.extend(keys));
        let r = rt::timeout(
            Duration::from_secs(5),
            proxy.insert(Request::new(client::insert(
                NEIGHBOURS[turn % NEIGHBOURS.len()],
                &keys,
                DIM,
            ))),
        )
        .await;
        if let Ok(Ok(resp)) = r {
            if resp.get_ref().status.as_ref().is_none_or(|s| s.code == 0) {
                with(&mut |s| s[i].acked.extend(keys));
            }
        }
        turn += 1;
        rt::sleep(every).await;
    }
}

/// Every neighbour must hold what was acknowledged and nothing never sent (a Strong
/// scan, retried until `deadline`).
pub async fn check(proxy: &Proxy, sent: &[Sent], deadline: rt::Instant) -> Vec<String> {
    let mut out = Vec::new();
    for (name, sent) in NEIGHBOURS.iter().zip(sent) {
        if sent.acked.is_empty() {
            // Hundreds of inserts over a run: none acknowledged means the check above
            // would judge nothing.
            out.push(format!(
                "vacuous: none of {} inserts into neighbour {name} was acknowledged",
                sent.sent.len() / 2
            ));
        }
        let Some(seen) = scan_until(proxy, name, deadline).await else {
            out.push(format!(
                "liveness: no Strong scan of neighbour {name} succeeded"
            ));
            continue;
        };
        let lost: Vec<_> = sent.acked.difference(&seen).take(5).collect();
        if !lost.is_empty() {
            out.push(format!(
                "neighbour {name} lost acknowledged inserts (first: {lost:?})"
            ));
        }
        let phantom: Vec<_> = seen.difference(&sent.sent).take(5).collect();
        if !phantom.is_empty() {
            out.push(format!(
                "neighbour {name} holds keys never sent to it (first: {phantom:?})"
            ));
        }
    }
    out
}
