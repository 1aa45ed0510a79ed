//! The named simulation scenarios, each run over `MADSIM_TEST_NUM` seeds starting at
//! `MADSIM_TEST_SEED`. A failing seed prints its violations and the one command that
//! replays it; every seed prints `trace-hash <scenario> seed=<seed> <hex>` and a
//! `result ...` line (what `scripts/sim-soak` aggregates).
#![cfg(madsim)]

use madsim::runtime::Handle;
use quiver_sim::scenario::{self, Scenario};
use quiver_sim::scenarios;

async fn check(s: Scenario) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let seed = Handle::current().seed();
    let report = scenario::run(&s, seed).await;
    println!("{}", report.trace_line);
    println!("{}", report.summary_line());
    println!("history {}", report.summary);
    if !report.violations.is_empty() {
        print!("{}", report.dump);
        let shown: Vec<&String> = report.violations.iter().take(20).collect();
        panic!(
            "scenario {} seed {}: {} invariant violation(s):\n  {}\n{}\nreplay: {}",
            report.scenario,
            seed,
            report.violations.len(),
            shown
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join("\n  "),
            report.summary,
            report.replay_command()
        );
    }
}

#[madsim::test]
async fn crash_recovery() {
    check(scenarios::crash_recovery()).await
}

#[madsim::test]
async fn partition() {
    check(scenarios::partition()).await
}

#[madsim::test]
async fn coordinator_failover() {
    check(scenarios::coordinator_failover()).await
}

#[madsim::test]
async fn streaming_handoff() {
    check(scenarios::streaming_handoff()).await
}

#[madsim::test]
async fn object_store_brownout() {
    check(scenarios::object_store_brownout()).await
}

#[madsim::test]
async fn everything_at_once() {
    check(scenarios::everything_at_once()).await
}
