//! Scenario `roles-smoke`: the standalone set of roles — coordinator, streaming node,
//! proxy — each on its own simulated node, talking over the internal RPCs. A client
//! creates a collection, inserts, flushes and searches; the streaming node and the WAL
//! store are killed (the store's disk loses unsynced bytes) and restarted; the client keeps writing with
//! idempotent upserts and then checks that every acknowledged row is there and that
//! search still finds each vector first.
#![cfg(madsim)]

use std::time::Duration;

use madsim::runtime::Handle;
use quiver_core::rt;
use quiver_nodes::pb::milvus::milvus_service_server::MilvusService;
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
        },
    )
    .await;
    let proxy = cluster.proxies[0].clone();
    let mut trace = TraceHash::default();

    // Phase 1: DDL, inserts, flush, search.
    let p = proxy.clone();
    let phase1 = cluster.proxy_nodes[0].spawn(async move {
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
        let r = p
            .flush(Request::new(client::flush(C)))
            .await
            .unwrap()
            .into_inner();
        ok(r.status.as_ref()).unwrap();
        let r = p
            .search(Request::new(client::search(
                C,
                &[client::vector(123, DIM)],
                1,
            )))
            .await
            .unwrap()
            .into_inner();
        ok(r.status.as_ref()).unwrap();
        client::int_ids(&r.results.unwrap().ids)
    });
    let top = phase1.await.unwrap();
    assert_eq!(top, vec![123], "seed {seed}: search before the restart");
    trace.record(&("phase1", top));

    // Phase 2: the streaming node dies with unsynced bytes lost, then comes back.
    rt::sleep(Duration::from_millis(300)).await;
    cluster.kill(Role::Streaming, 0);
    cluster.kill(Role::WalStore, 0);
    trace.record(&"killed");
    rt::sleep(Duration::from_secs(1)).await;
    cluster.restart(Role::WalStore, 0);
    cluster.restart(Role::Streaming, 0);

    let p = proxy.clone();
    let phase2 = cluster.proxy_nodes[0].spawn(async move {
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
        let r = p
            .query(Request::new(client::count(C)))
            .await
            .unwrap()
            .into_inner();
        ok(r.status.as_ref()).unwrap();
        let n = client::count_of(&r.fields_data);
        let qs = [client::vector(42, DIM), client::vector(777, DIM)];
        let r = p
            .search(Request::new(client::search(C, &qs, 1)))
            .await
            .unwrap()
            .into_inner();
        ok(r.status.as_ref()).unwrap();
        (n, client::int_ids(&r.results.unwrap().ids), retries)
    });
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
    let p = proxy.clone();
    let deleted: Vec<i64> = (0..1000).step_by(7).collect();
    let d2 = deleted.clone();
    cluster.proxy_nodes[0]
        .spawn(async move {
            let r = p
                .flush(Request::new(client::flush(C)))
                .await
                .unwrap()
                .into_inner();
            ok(r.status.as_ref()).unwrap();
            rt::sleep(Duration::from_secs(2)).await;
            let r = p
                .delete(Request::new(client::delete_ids(C, &d2)))
                .await
                .unwrap()
                .into_inner();
            ok(r.status.as_ref()).unwrap();
        })
        .await
        .unwrap();
    cluster.kill(Role::QueryNode, 0);
    let p = proxy.clone();
    let (n, top) = cluster.proxy_nodes[0]
        .spawn(async move {
            let r = p
                .query(Request::new(client::count(C)))
                .await
                .unwrap()
                .into_inner();
            ok(r.status.as_ref()).unwrap();
            let n = client::count_of(&r.fields_data);
            let r = p
                .search(Request::new(client::search(
                    C,
                    &[client::vector(7, DIM)],
                    1,
                )))
                .await
                .unwrap()
                .into_inner();
            ok(r.status.as_ref()).unwrap();
            (n, client::int_ids(&r.results.unwrap().ids))
        })
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
