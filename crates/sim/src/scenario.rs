//! A scenario: a cluster shape, a workload, a nemesis; run for one seed, it returns a
//! report with the invariant violations found and the trace hash.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quiver_core::rt::{self, Rng};

use crate::client;
use crate::cluster::{Cluster, ClusterConfig};
use crate::model::{check_search_exact, CheckConfig, History, Key};
use crate::neighbours;
use crate::nemesis::{self, NemesisConfig, NemesisLog};
use crate::trace::TraceHash;
use crate::workload::{self, Recorder, WorkloadConfig, DIM};

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub cluster: ClusterConfig,
    pub workload: WorkloadConfig,
    pub nemesis: NemesisConfig,
    pub shards: i32,
    /// Switch `buggify` points on for the run (each point enabled with this
    /// probability, then firing with the second per call).
    pub buggify: Option<(f64, f64)>,
    /// After the faults heal, the cluster must answer a Strong scan within this long
    /// (simulated): the liveness bound.
    pub converge_within: Duration,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: &'static str,
    pub seed: u64,
    pub violations: Vec<String>,
    pub trace_line: String,
    pub summary: String,
    pub faults: BTreeMap<&'static str, u64>,
    pub buggify_fired: Vec<(&'static str, u64)>,
    pub simulated: Duration,
    /// Every operation and fault, one per line; filled for failing runs when
    /// `QUIVER_SIM_DUMP` is set.
    pub dump: String,
}

impl Report {
    /// The one command that replays this seed.
    pub fn replay_command(&self) -> String {
        format!(
            "MADSIM_TEST_SEED={} MADSIM_TEST_NUM=1 RUSTFLAGS=\"--cfg madsim\" CARGO_TARGET_DIR=target/sim \
             cargo test --release -p quiver-sim-tests --test scenarios -- --exact {} --nocapture",
            self.seed,
            self.scenario.replace('-', "_")
        )
    }

    /// One line for soak summaries: `scenario seed violations sim_secs faults...`.
    pub fn summary_line(&self) -> String {
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "result scenario={} seed={} violations={} simulated_s={:.1} faults={} buggify_fired={}",
            self.scenario,
            self.seed,
            self.violations.len(),
            self.simulated.as_secs_f64(),
            faults.join(","),
            self.buggify_fired.iter().map(|(_, n)| n).sum::<u64>()
        )
    }
}

/// Runs the scenario on the current madsim runtime.
pub async fn run(s: &Scenario, seed: u64) -> Report {
    let t0 = rt::now();
    let cluster = start(s, seed).await;
    let log = Arc::new(Mutex::new(NemesisLog::default()));
    let (rec, ops, sent) = drive(s, seed, &cluster, &log).await;
    let neighbour_acks: usize = sent.iter().map(|n| n.acked.len()).sum();
    rt::buggify::disable();
    let buggify_fired = rt::buggify::fired();

    // Everything is healed: the cluster must converge, and then agree with the model.
    let first = converge(s, &cluster).await;
    let history = rec
        .history
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut trace = trace_of(&history, &log);
    let mut violations = judge(s, &cluster, &history, first.as_ref(), seed, &mut trace).await;
    if first.is_some() {
        violations.extend(check_neighbours(s, &cluster, sent).await);
    }
    for v in &violations {
        trace.record(v);
    }
    let simulated = rt::now().duration_since(t0);
    trace.record(&("ops", ops, simulated.as_millis()));
    let faults = log.lock().unwrap_or_else(|e| e.into_inner()).counts.clone();
    let mut dump = String::new();
    if !violations.is_empty() && std::env::var_os("QUIVER_SIM_DUMP").is_some() {
        dump = dump_of(&log, &violations, &history);
    }
    cluster.kill_all();
    Report {
        dump,
        scenario: s.name,
        seed,
        violations,
        trace_line: trace.line(s.name, seed),
        summary: format!("{} neighbour_acks={neighbour_acks}", history.summary()),
        faults,
        buggify_fired,
        simulated,
    }
}

/// Starts the cluster, creates the collection, and switches `buggify` on if asked.
async fn start(s: &Scenario, seed: u64) -> Arc<Cluster> {
    let cluster = Arc::new(Cluster::start(seed, s.cluster.clone()).await);
    let proxy0 = cluster.proxies[0].clone();
    let shards = s.shards;
    cluster.proxy_nodes[0]
        .spawn(async move {
            workload::setup(&proxy0, shards).await;
            neighbours::setup(&proxy0, shards).await;
        })
        .await
        .expect("setup");
    if let Some((p, f)) = s.buggify {
        rt::buggify::enable(p, f);
    }
    cluster
}

/// Runs the clients (spread over the proxies), the neighbours' writer and the nemesis
/// until the workload's time is up; returns the recorded history, how many operations
/// the clients ran and what the neighbours' writer sent.
async fn drive(
    s: &Scenario,
    seed: u64,
    cluster: &Arc<Cluster>,
    log: &Arc<Mutex<NemesisLog>>,
) -> (Recorder, usize, Vec<neighbours::Sent>) {
    let rec = Recorder::new();
    let until = rt::now() + s.workload.duration;
    let mut clients = Vec::new();
    for c in 0..s.workload.clients {
        let p = c % cluster.proxies.len();
        let (proxy, rec, cfg) = (cluster.proxies[p].clone(), rec.clone(), s.workload.clone());
        clients.push(
            cluster.proxy_nodes[p]
                .spawn(workload::run_client(c as u32, seed, proxy, rec, cfg, until)),
        );
    }
    let last = cluster.proxies.len() - 1;
    let sent = neighbours::record();
    let writer = cluster.proxy_nodes[last].spawn(neighbours::run_writer(
        cluster.proxies[last].clone(),
        sent.clone(),
        s.workload.think * 4,
        until,
    ));
    nemesis::run(cluster.clone(), s.nemesis.clone(), seed, until, log.clone()).await;
    let mut ops = 0;
    for c in clients {
        ops += c.await.unwrap_or(0);
    }
    let _ = writer.await;
    let sent = sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
    (rec, ops, sent)
}

/// The neighbour collections kept what was acknowledged (see [`neighbours`]).
async fn check_neighbours(
    s: &Scenario,
    cluster: &Arc<Cluster>,
    sent: Vec<neighbours::Sent>,
) -> Vec<String> {
    let p = cluster.proxies[0].clone();
    let deadline = rt::now() + s.converge_within;
    cluster.proxy_nodes[0]
        .spawn(async move { neighbours::check(&p, &sent, deadline).await })
        .await
        .expect("neighbour check")
}

/// The keys a Strong scan sees once the faults have healed, if one succeeds within
/// the scenario's liveness bound.
async fn converge(s: &Scenario, cluster: &Arc<Cluster>) -> Option<BTreeSet<Key>> {
    let p = cluster.proxies[0].clone();
    let deadline = rt::now() + s.converge_within;
    cluster.proxy_nodes[0]
        .spawn(async move { workload::final_scan(&p, deadline).await })
        .await
        .expect("final scan")
}

/// The trace so far: every operation, then every fault.
fn trace_of(history: &History, log: &Mutex<NemesisLog>) -> TraceHash {
    let mut trace = TraceHash::default();
    for op in history.ops() {
        trace.record(&(
            op.id,
            op.client,
            &op.kind,
            op.outcome,
            op.invoked_at,
            op.completed_at,
            op.ack_ts,
        ));
    }
    for e in &log.lock().unwrap_or_else(|e| e.into_inner()).events {
        trace.record(e);
    }
    trace
}

/// Every violation the run shows: liveness if the cluster never converged, else the
/// model's checks on the history, FLAT exactness and the WAL audit.
async fn judge(
    s: &Scenario,
    cluster: &Arc<Cluster>,
    history: &History,
    visible: Option<&BTreeSet<Key>>,
    seed: u64,
    trace: &mut TraceHash,
) -> Vec<String> {
    let Some(visible) = visible else {
        return vec![format!(
            "liveness: no Strong scan succeeded within {:?} after the faults healed",
            s.converge_within
        )];
    };
    trace.record(&("final", visible.len()));
    let mut violations: Vec<String> = history
        .check_all(visible, &CheckConfig::default())
        .into_iter()
        .map(|v| v.to_string())
        .collect();
    violations.extend(exactness(cluster, visible, seed).await);
    violations.extend(
        crate::wal_audit::audit(
            cluster.raw_store.as_ref(),
            quiver_nodes::streaming::OBJECT_WAL_ROOT,
        )
        .await,
    );
    violations
}

/// Every fault, violation and operation, one per line, for a failing run.
fn dump_of(log: &Mutex<NemesisLog>, violations: &[String], history: &History) -> String {
    use std::fmt::Write;
    let mut dump = String::new();
    for e in &log.lock().unwrap_or_else(|e| e.into_inner()).events {
        let _ = writeln!(dump, "fault {e}");
    }
    for v in violations {
        let _ = writeln!(dump, "violation {v}");
    }
    for op in history.ops() {
        let _ = writeln!(
            dump,
            "op {} client {} {:?} {:?} {:.3}ms..{:?} ts={:?}",
            op.id,
            op.client,
            op.kind,
            op.outcome,
            op.invoked_at as f64 / 1e6,
            op.completed_at.map(|t| t as f64 / 1e6),
            op.ack_ts
        );
    }
    dump
}

/// With a FLAT index, search must equal brute force over the visible keys. Checked
/// only if the visible set does not change around the searches (a write whose client
/// gave up on it may still land).
async fn exactness(cluster: &Arc<Cluster>, visible: &BTreeSet<Key>, seed: u64) -> Vec<String> {
    let mut rng = Rng::seed_from_u64(seed ^ 0xe8ac7);
    let keys: Vec<Key> = visible.iter().copied().collect();
    let mut probes: Vec<Vec<f32>> = (0..4)
        .filter(|_| !keys.is_empty())
        .map(|_| client::vector(keys[rng.index(keys.len())], DIM))
        .collect();
    probes.extend((0..4).map(|_| (0..DIM).map(|_| rng.next_f32() * 100.0).collect()));
    let proxy = cluster.proxies[0].clone();
    let answers = cluster.proxy_nodes[0]
        .spawn(async move {
            let mut out = Vec::new();
            // The cluster has converged, but a lease may still be renewing: each
            // search may retry for a while, as a client would.
            for q in probes {
                let deadline = rt::now() + Duration::from_secs(30);
                let mut got = workload::exact_search(&proxy, &q, 10).await;
                while got.is_none() && rt::now() < deadline {
                    rt::sleep(Duration::from_millis(500)).await;
                    got = workload::exact_search(&proxy, &q, 10).await;
                }
                out.push((q, got));
            }

            let after = workload::final_scan(&proxy, rt::now() + Duration::from_secs(30)).await;
            (out, after)
        })
        .await
        .expect("exactness");
    let (answers, after) = answers;
    if after.as_ref() != Some(visible) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, (q, got)) in answers.into_iter().enumerate() {
        match got {
            None => out.push(format!(
                "exactness: Strong search {i} failed on a healed cluster"
            )),
            Some(got) => out.extend(
                check_search_exact(i as u64, visible, &q, 10, &got, 1e-3, |k| {
                    client::vector(k, DIM)
                })
                .into_iter()
                .map(|v| v.to_string()),
            ),
        }
    }
    out
}
