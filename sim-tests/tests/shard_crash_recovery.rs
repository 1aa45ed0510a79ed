//! Scenario `shard-crash-recovery`: a shard on its own simulated node writes and
//! deletes keys while the node is killed and restarted, the disk loses power in the
//! middle of writes, fault points fire in the WAL, and the object store browns out
//! during flushes. Afterwards a fresh recovery must show every acknowledged insert that
//! no delete touched, no acknowledged delete undone, and nothing never written.
#![cfg(madsim)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use madsim::runtime::Handle;
use quiver_core::rt::{self, Rng};
use quiver_sim::shard_node::ShardWorld;

const SCENARIO: &str = "shard-crash-recovery";

#[madsim::test]
async fn shard_crash_recovery() {
    let handle = Handle::current();
    let seed = handle.seed();
    rt::buggify::enable(0.3, 0.02);
    let world = ShardWorld::new(seed);
    let w = world.clone();
    let node = handle
        .create_node()
        .name("streaming-1")
        .ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
        .init(move || w.clone().run_writer())
        .build();

    let mut rng = Rng::from_entropy();
    let mut crashes = 0;
    for round in 0..6 {
        rt::sleep(Duration::from_millis(rng.gen_range(200, 1500))).await;
        if rng.gen_bool(0.5) {
            // The power goes in the middle of one of the next few disk writes.
            world.disk.power_cut_after(rng.gen_range(0, 6));
            rt::sleep(Duration::from_millis(rng.gen_range(0, 100))).await;
        }
        if rng.gen_bool(0.3) {
            world.set_object_store_faults(0.3);
        } else {
            world.set_object_store_faults(0.0);
        }
        handle.kill(node.id());
        world.disk.crash();
        crashes += 1;
        world.record(&("crash", round));
        rt::sleep(Duration::from_millis(rng.gen_range(10, 300))).await;
        handle.restart(node.id());
    }
    rt::sleep(Duration::from_secs(1)).await;
    handle.kill(node.id());
    world.disk.crash();
    world.set_object_store_faults(0.0);
    rt::buggify::disable();

    let visible = world.visible_keys().await.expect("final recovery");
    let history = world.history.lock().unwrap().clone();
    let violations = history.check(&visible);
    world.record(&("final", visible.len()));
    let stats = world.disk.stats();
    println!(
        "{} ops={} visible={} crashes={crashes} torn_writes={} bytes_lost={}",
        world.trace.lock().unwrap().line(SCENARIO, seed),
        history.ops().len(),
        visible.len(),
        stats.torn_writes,
        stats.bytes_lost,
    );
    assert!(
        violations.is_empty(),
        "seed {seed}: {} violations, first: {}\nreplay: MADSIM_TEST_SEED={seed} RUSTFLAGS=\"--cfg madsim\" CARGO_TARGET_DIR=target/sim cargo test --release --manifest-path sim-tests/Cargo.toml --test shard_crash_recovery",
        violations.len(),
        violations[0]
    );
    assert!(
        history.ops().len() > 20,
        "the workload barely ran: {} ops",
        history.ops().len()
    );
}
