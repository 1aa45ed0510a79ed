//! Scenario `roles-smoke`: the standalone set of roles — coordinator, streaming node,
//! proxy — each on its own simulated node, talking over the internal RPCs. A client
//! creates a collection, inserts, flushes and searches; the streaming node is killed
//! (its WAL lives in the object store) and restarted; the client keeps writing with
//! idempotent upserts and then checks that every acknowledged row is there and that
//! search still finds each vector first.
#![cfg(madsim)]

use std::sync::Arc;
use std::time::Duration;

use madsim::runtime::Handle;
use quiver_core::rt;
use quiver_nodes::pb::milvus::milvus_service_server::MilvusService;
use quiver_nodes::proxy::Proxy;
use quiver_sim::client;
use quiver_sim::cluster::{Cluster, ClusterConfig, Role};
use quiver_sim::trace::TraceHash;
use tonic::Request;

const SCENARIO: &str = "roles-smoke";
const C: &str = "smoke";
const DIM: u32 = 8;

fn ok(status: Option<&quiver_nodes::pb::common::Status>) -> Result<(), String> {
    match status {
        Some(s) if s.code != 0 => Err(format!("code {}: {}", s.code, s.reason)),
        _ => Ok(()),
    }
}

#[madsim::test]
async fn roles_smoke() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let seed = Handle::current().seed();
    let cluster = Cluster::start(
        seed,
        ClusterConfig {
            coordinators: 1,
            proxies: 1,
            streaming_nodes: 1,
            query_nodes: 1,
            seal_rows: 200,
            idle_flush: Duration::from_secs(2),
            ..ClusterConfig::default()
        },
    )
    .await;
    let proxy = cluster.proxies[0].clone();
    let mut trace = TraceHash::default();

    // Phase 1: DDL, inserts, flush, search.
    let phase1 = cluster.proxy_nodes[0].spawn(load_and_search(proxy.clone()));
    let top = phase1.await.unwrap();
    assert_eq!(top, vec![123], "seed {seed}: search before the restart");
    trace.record(&("phase1", top));

    // Phase 2: the streaming node dies mid-write, then comes back.
    rt::sleep(Duration::from_millis(300)).await;
    cluster.kill(Role::Streaming, 0);
    trace.record(&"killed");
    rt::sleep(Duration::from_secs(1)).await;
    cluster.restart(Role::Streaming, 0);

    let phase2 = cluster.proxy_nodes[0].spawn(upsert_after_restart(proxy.clone()));
    let (n, tops, retries) = phase2.await.unwrap();
    trace.record(&("phase2", n, &tops, retries));
    trace.record(&("elapsed", madsim::time::TimeHandle::current().elapsed()));
    assert_eq!(
        n,
        Some(1000),
        "seed {seed}: every acknowledged row must survive the restart"
    );
    assert_eq!(tops, vec![42, 777], "seed {seed}: search after the restart");

    // Phase 3: flush so segments are handed to the query node, delete some keys (the
    // deletes are forwarded there), then kill the query node: reads fall back to the
    // delegator, which takes the segments back, and the deletes stay applied.
    let deleted: Vec<i64> = (0..1000).step_by(7).collect();
    cluster.proxy_nodes[0]
        .spawn(flush_then_delete(proxy.clone(), deleted.clone()))
        .await
        .unwrap();
    cluster.kill(Role::QueryNode, 0);
    let (n, top) = cluster.proxy_nodes[0]
        .spawn(count_and_search(proxy.clone(), 7))
        .await
        .unwrap();
    cluster.restart(Role::QueryNode, 0);
    trace.record(&("phase3", n, &top));
    println!("{}", trace.line(SCENARIO, seed));
    assert_eq!(
        n,
        Some(1000 - deleted.len() as i64),
        "seed {seed}: deletes must survive the query node's death"
    );
    assert_ne!(top, vec![7], "seed {seed}: a deleted key came back");
}

/// Phase 1: creates, indexes and loads the collection, inserts keys 0..500, flushes,
/// and returns the top hit of a search for key 123's vector.
async fn load_and_search(p: Arc<Proxy>) -> Vec<i64> {
    // The roles come up concurrently; retry DDL until they answer.
    loop {
        let r = p
            .create_collection(Request::new(client::create_collection(C, DIM, 2)))
            .await
            .unwrap()
            .into_inner();
        if ok(Some(&r)).is_ok() {
            break;
        }
        rt::sleep(Duration::from_millis(100)).await;
    }
    ok(Some(
        &p.create_index(Request::new(client::create_flat_index(C, "L2")))
            .await
            .unwrap()
            .into_inner(),
    ))
    .unwrap();
    ok(Some(
        &p.load_collection(Request::new(client::load(C)))
            .await
            .unwrap()
            .into_inner(),
    ))
    .unwrap();
    for b in 0..10 {
        let ids: Vec<i64> = (b * 50..b * 50 + 50).collect();
        let r = p
            .insert(Request::new(client::insert(C, &ids, DIM)))
            .await
            .unwrap()
            .into_inner();
        ok(r.status.as_ref()).expect("insert before any fault");
    }
    flush(&p).await;
    search_top(&p, &[client::vector(123, DIM)]).await
}

/// Phase 2: upserts keys 500..1000, retrying while the streaming node comes back;
/// returns the row count, the top hits for keys 42 and 777, and the retries.
async fn upsert_after_restart(p: Arc<Proxy>) -> (Option<i64>, Vec<i64>, u32) {
    let mut retries = 0;
    for b in 10..20 {
        let ids: Vec<i64> = (b * 50..b * 50 + 50).collect();
        loop {
            let r = p
                .upsert(Request::new(client::upsert(C, &ids, DIM)))
                .await
                .unwrap()
                .into_inner();
            let Err(e) = ok(r.status.as_ref()) else { break };
            retries += 1;
            assert!(retries < 200, "the streaming node never came back: {e}");
            rt::sleep(Duration::from_millis(100)).await;
        }
    }
    let n = count(&p).await;
    let qs = [client::vector(42, DIM), client::vector(777, DIM)];
    (n, search_top(&p, &qs).await, retries)
}

/// Phase 3, first half: flushes (the segments go to the query node), waits for the
/// hand-off, then deletes `keys`.
async fn flush_then_delete(p: Arc<Proxy>, keys: Vec<i64>) {
    flush(&p).await;
    rt::sleep(Duration::from_secs(2)).await;
    let r = p
        .delete(Request::new(client::delete_ids(C, &keys)))
        .await
        .unwrap()
        .into_inner();
    ok(r.status.as_ref()).unwrap();
}

/// The row count and the top hit for `key`'s vector.
async fn count_and_search(p: Arc<Proxy>, key: i64) -> (Option<i64>, Vec<i64>) {
    let n = count(&p).await;
    (n, search_top(&p, &[client::vector(key, DIM)]).await)
}

async fn flush(p: &Proxy) {
    let r = p
        .flush(Request::new(client::flush(C)))
        .await
        .unwrap()
        .into_inner();
    ok(r.status.as_ref()).unwrap();
}

/// The collection's row count, as a `count(*)` query reports it.
async fn count(p: &Proxy) -> Option<i64> {
    let r = p
        .query(Request::new(client::count(C)))
        .await
        .unwrap()
        .into_inner();
    ok(r.status.as_ref()).unwrap();
    client::count_of(&r.fields_data)
}

/// The top hit for each query vector.
async fn search_top(p: &Proxy, queries: &[Vec<f32>]) -> Vec<i64> {
    let r = p
        .search(Request::new(client::search(C, queries, 1)))
        .await
        .unwrap()
        .into_inner();
    ok(r.status.as_ref()).unwrap();
    client::int_ids(&r.results.unwrap().ids)
}
