//! The client workload: concurrent clients, each on a proxy's node, inserting,
//! upserting, deleting, searching and scanning at every consistency level, and
//! recording every operation's invocation and outcome in the [`History`].
//!
//! The clients keep the promises the checkers rely on (see [`crate::model`]): each owns
//! its own keys and runs one operation at a time; after a write whose outcome it cannot
//! know (a timeout, a failure after the request left) it never writes those keys again.
//! An error counts as a definite refusal only when the request cannot have been
//! executed: invalid input, or "not the owner" / "no coordinator" for a single-key
//! write (a multi-key write may have reached one shard and not another).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quiver_core::rt::{self, Rng};
use quiver_nodes::pb::common::Status;
use quiver_nodes::pb::milvus::milvus_service_server::MilvusService;
use quiver_nodes::proxy::Proxy;
use tonic::Request;

use crate::client;
use crate::model::{History, Key, Level, Nanos, OpKind};

pub const COLLECTION: &str = "sim";
pub const DIM: u32 = 8;

#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    pub clients: usize,
    /// How long the clients run (simulated).
    pub duration: Duration,
    /// A call that takes longer than this ends Unknown.
    pub op_timeout: Duration,
    pub max_batch: usize,
    /// Pause between a client's operations.
    pub think: Duration,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            clients: 3,
            duration: Duration::from_secs(40),
            op_timeout: Duration::from_secs(8),
            max_batch: 6,
            think: Duration::from_millis(40),
        }
    }
}

/// Shared by the clients: the history.
#[derive(Clone, Default)]
pub struct Recorder {
    pub history: Arc<Mutex<History>>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Simulated time since the run began (the clock the nemesis log uses too).
    pub fn now(&self) -> Nanos {
        madsim::time::TimeHandle::current().elapsed().as_nanos() as Nanos
    }

    fn with<R>(&self, f: impl FnOnce(&mut History) -> R) -> R {
        f(&mut self.history.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// How a write ended.
enum WriteEnd {
    Acked(u64),
    Refused,
    Unknown,
}

fn classify_write(status: Option<&Status>, ts: u64, keys: usize) -> WriteEnd {
    match status {
        None => WriteEnd::Acked(ts),
        Some(s) if s.code == 0 => WriteEnd::Acked(ts),
        Some(s) if s.code == 1100 => WriteEnd::Refused,
        Some(s) if (s.code == 96 || s.code == 97) && keys == 1 => WriteEnd::Refused,
        Some(_) => WriteEnd::Unknown,
    }
}

fn ok(status: Option<&Status>) -> bool {
    status.is_none_or(|s| s.code == 0)
}

/// Creates the collection (FLAT index, loaded), retrying until the cluster answers.
pub async fn setup(proxy: &Proxy, shards: i32) {
    until_ok(|| {
        proxy.create_collection(Request::new(client::create_collection(
            COLLECTION, DIM, shards,
        )))
    })
    .await;
    until_ok(|| proxy.create_index(Request::new(client::create_flat_index(COLLECTION, "L2"))))
        .await;
    until_ok(|| proxy.load_collection(Request::new(client::load(COLLECTION)))).await;
}

/// Repeats a DDL call until it answers success.
pub(crate) async fn until_ok<F, Fut>(call: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<Status>, tonic::Status>>,
{
    loop {
        if matches!(call().await, Ok(r) if r.get_ref().code == 0) {
            return;
        }
        rt::sleep(Duration::from_millis(200)).await;
    }
}

/// One client's state.
struct ClientState {
    id: u32,
    rng: Rng,
    next_key: Key,
    /// Keys present as far as this client knows (its writes to them were acknowledged).
    present: Vec<Key>,
    /// Keys deleted by an acknowledged delete (upserts may bring them back).
    absent: Vec<Key>,
    /// The largest commit timestamp of this client's acknowledged writes.
    session_ts: u64,
}

impl ClientState {
    fn take(&mut self, from_present: bool, n: usize) -> Vec<Key> {
        let pool = if from_present {
            &mut self.present
        } else {
            &mut self.absent
        };
        let mut out = Vec::new();
        for _ in 0..n.min(pool.len()) {
            let i = self.rng.index(pool.len());
            out.push(pool.swap_remove(i));
        }
        out
    }

    fn level(&mut self) -> Level {
        match self.rng.index(4) {
            0 => Level::Strong,
            1 => Level::Session,
            2 => Level::Bounded,
            _ => Level::Eventually,
        }
    }
}

/// Runs one client until `until` (simulated); returns how many operations it ran.
pub async fn run_client(
    id: u32,
    seed: u64,
    proxy: Arc<Proxy>,
    rec: Recorder,
    cfg: WorkloadConfig,
    until: rt::Instant,
) -> usize {
    let mut c = ClientState {
        id,
        rng: Rng::seed_from_u64(seed ^ (u64::from(id) << 32) ^ 0xc11e),
        next_key: i64::from(id) * 1_000_000,
        present: Vec::new(),
        absent: Vec::new(),
        session_ts: 0,
    };
    let mut ops = 0;
    while rt::now() < until {
        ops += 1;
        let roll = c.rng.index(100);
        match roll {
            0..=29 => insert(&mut c, &proxy, &rec, &cfg).await,
            30..=39 => upsert(&mut c, &proxy, &rec, &cfg).await,
            40..=54 => delete(&mut c, &proxy, &rec, &cfg).await,
            55..=79 => read(&mut c, &proxy, &rec, &cfg).await,
            80..=96 => search(&mut c, &proxy, &rec, &cfg).await,
            _ => flush(&c, &proxy, &rec, &cfg).await,
        }
        rt::sleep(cfg.think).await;
    }
    ops
}

async fn write_end(
    c: &mut ClientState,
    rec: &Recorder,
    op: u64,
    end: Option<WriteEnd>,
    keys: Vec<Key>,
    makes_present: bool,
) {
    match end {
        Some(WriteEnd::Acked(ts)) => {
            rec.with(|h| h.ack(op, rec.now(), Some(ts)));
            c.session_ts = c.session_ts.max(ts);
            if makes_present {
                c.present.extend(keys);
            } else {
                c.absent.extend(keys);
            }
        }
        Some(WriteEnd::Refused) => rec.with(|h| h.refuse(op, rec.now())),
        // The keys are retired: their state is uncertain for ever.
        Some(WriteEnd::Unknown) | None => rec.with(|h| h.unknown(op, rec.now())),
    }
}

/// Sends a write and classifies its end; a timeout or a transport error is unknown.
async fn send_write<F>(cfg: &WorkloadConfig, keys: usize, call: F) -> Option<WriteEnd>
where
    F: std::future::Future<
        Output = Result<tonic::Response<quiver_nodes::pb::milvus::MutationResult>, tonic::Status>,
    >,
{
    match rt::timeout(cfg.op_timeout, call).await {
        Ok(Ok(resp)) => {
            let m = resp.into_inner();
            Some(classify_write(m.status.as_ref(), m.timestamp, keys))
        }
        _ => None,
    }
}

async fn insert(c: &mut ClientState, proxy: &Proxy, rec: &Recorder, cfg: &WorkloadConfig) {
    let n = 1 + c.rng.index(cfg.max_batch);
    let keys: Vec<Key> = (0..n as i64).map(|i| c.next_key + i).collect();
    c.next_key += n as i64;
    let op = rec.with(|h| h.invoke(c.id, OpKind::Insert(keys.clone()), rec.now()));
    let end = send_write(
        cfg,
        keys.len(),
        proxy.insert(Request::new(client::insert(COLLECTION, &keys, DIM))),
    )
    .await;
    write_end(c, rec, op, end, keys, true).await;
}

async fn upsert(c: &mut ClientState, proxy: &Proxy, rec: &Recorder, cfg: &WorkloadConfig) {
    let n = 1 + c.rng.index(cfg.max_batch);
    let from_present = c.absent.is_empty() || c.rng.gen_bool(0.5);
    let keys = c.take(from_present, n);
    if keys.is_empty() {
        return;
    }
    let op = rec.with(|h| h.invoke(c.id, OpKind::Upsert(keys.clone()), rec.now()));
    let end = send_write(
        cfg,
        keys.len(),
        proxy.upsert(Request::new(client::upsert(COLLECTION, &keys, DIM))),
    )
    .await;
    let refused = matches!(end, Some(WriteEnd::Refused));
    if refused {
        // Nothing happened: the keys keep their state.
        rec.with(|h| h.refuse(op, rec.now()));
        if from_present {
            c.present.extend(keys);
        } else {
            c.absent.extend(keys);
        }
        return;
    }
    write_end(c, rec, op, end, keys, true).await;
}

async fn delete(c: &mut ClientState, proxy: &Proxy, rec: &Recorder, cfg: &WorkloadConfig) {
    let n = 1 + c.rng.index(cfg.max_batch);
    let keys = c.take(true, n);
    if keys.is_empty() {
        return;
    }
    let op = rec.with(|h| h.invoke(c.id, OpKind::Delete(keys.clone()), rec.now()));
    let end = send_write(
        cfg,
        keys.len(),
        proxy.delete(Request::new(client::delete_ids(COLLECTION, &keys))),
    )
    .await;
    if matches!(end, Some(WriteEnd::Refused)) {
        rec.with(|h| h.refuse(op, rec.now()));
        c.present.extend(keys);
        return;
    }
    write_end(c, rec, op, end, keys, false).await;
}

async fn read(c: &mut ClientState, proxy: &Proxy, rec: &Recorder, cfg: &WorkloadConfig) {
    let level = c.level();
    let op = rec.with(|h| {
        h.invoke(
            c.id,
            OpKind::Read {
                level,
                seen: Vec::new(),
            },
            rec.now(),
        )
    });
    let r = rt::timeout(
        cfg.op_timeout,
        proxy.query(Request::new(client::scan(COLLECTION, level, c.session_ts))),
    )
    .await;
    match r {
        Ok(Ok(resp)) if ok(resp.get_ref().status.as_ref()) => {
            let keys = client::id_column(&resp.get_ref().fields_data);
            rec.with(|h| h.ack_read(op, rec.now(), keys));
        }
        _ => rec.with(|h| h.refuse(op, rec.now())),
    }
}

async fn search(c: &mut ClientState, proxy: &Proxy, rec: &Recorder, cfg: &WorkloadConfig) {
    let level = c.level();
    // Probe one of our keys (present or deleted) or, rarely, a key nobody wrote.
    let probe = match c.rng.index(3) {
        0 if !c.absent.is_empty() => c.absent[c.rng.index(c.absent.len())],
        _ if !c.present.is_empty() => c.present[c.rng.index(c.present.len())],
        _ => c.next_key + 500_000,
    };
    let k = 5;
    let op = rec.with(|h| {
        h.invoke(
            c.id,
            OpKind::Search {
                level,
                probe,
                k,
                result: Vec::new(),
            },
            rec.now(),
        )
    });
    let q = client::vector(probe, DIM);
    let r = rt::timeout(
        cfg.op_timeout,
        proxy.search(Request::new(client::search_at(
            COLLECTION,
            &q,
            k,
            level,
            c.session_ts,
        ))),
    )
    .await;
    match r {
        Ok(Ok(resp)) if ok(resp.get_ref().status.as_ref()) => {
            let ids = resp
                .get_ref()
                .results
                .as_ref()
                .map(|r| client::int_ids(&r.ids))
                .unwrap_or_default();
            rec.with(|h| h.ack_read(op, rec.now(), ids));
        }
        _ => rec.with(|h| h.refuse(op, rec.now())),
    }
}

async fn flush(c: &ClientState, proxy: &Proxy, rec: &Recorder, cfg: &WorkloadConfig) {
    let op = rec.with(|h| h.invoke(c.id, OpKind::Flush, rec.now()));
    let r = rt::timeout(
        cfg.op_timeout,
        proxy.flush(Request::new(client::flush(COLLECTION))),
    )
    .await;
    match r {
        Ok(Ok(resp)) if ok(resp.get_ref().status.as_ref()) => {
            rec.with(|h| h.ack(op, rec.now(), None))
        }
        _ => rec.with(|h| h.unknown(op, rec.now())),
    }
}

/// After the faults heal: a Strong scan, retried until it succeeds or `deadline`
/// passes. `None` means the cluster did not converge in time.
pub async fn final_scan(proxy: &Proxy, deadline: rt::Instant) -> Option<BTreeSet<Key>> {
    scan_until(proxy, COLLECTION, deadline).await
}

/// [`final_scan`] of the collection `name`.
pub async fn scan_until(proxy: &Proxy, name: &str, deadline: rt::Instant) -> Option<BTreeSet<Key>> {
    while rt::now() < deadline {
        let r = rt::timeout(
            Duration::from_secs(10),
            proxy.query(Request::new(client::scan(name, Level::Strong, 0))),
        )
        .await;
        if let Ok(Ok(resp)) = r {
            if ok(resp.get_ref().status.as_ref()) {
                return Some(
                    client::id_column(&resp.get_ref().fields_data)
                        .into_iter()
                        .collect(),
                );
            }
        }
        rt::sleep(Duration::from_millis(500)).await;
    }
    None
}

/// A Strong top-`k` search with distances, for the exactness check.
pub async fn exact_search(proxy: &Proxy, query: &[f32], k: usize) -> Option<Vec<(Key, f32)>> {
    let r = proxy
        .search(Request::new(client::search_at(
            COLLECTION,
            query,
            k,
            Level::Strong,
            0,
        )))
        .await
        .ok()?
        .into_inner();
    if !ok(r.status.as_ref()) {
        return None;
    }
    let res = r.results?;
    let ids = client::int_ids(&res.ids);
    Some(ids.into_iter().zip(res.scores).collect())
}
