//! The nemesis: injects faults on a schedule drawn from the seed, and heals them all at
//! the end. Every fault is recorded (kind, target, duration) for the trace and the
//! report.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::net::NetSim;
use quiver_core::objstore::FaultConfig;
use quiver_core::rt::{self, Rng};
use quiver_nodes::coordinator::CoordinatorApi;

use crate::cluster::{Cluster, Role};
use crate::faulty_meta::MetaFaults;
use crate::workload::COLLECTION;

/// The kinds of fault a scenario may inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// Kill a role's node and restart it a little later.
    KillRestart,
    /// Kill the coordinator seat that holds office (the standby takes over).
    CoordinatorFailover,
    /// Cut a node off the network (both ways, or only in or out).
    Partition,
    /// Cut one direction of one link.
    OneWayLink,
    /// Pause a node (it stops running, its peers time out), then resume it.
    Pause,
    /// Slow every message down.
    Latency,
    /// Drop a share of messages (streams retransmit, so calls slow down or time out).
    Drop,
    /// Move a vchannel's WAL ownership to another streaming node.
    MoveVchannel,
    /// Object store errors and latency spikes.
    ObjectStoreBrownout,
    /// Meta store errors (some after the write committed) and latency.
    MetaBrownout,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::KillRestart => "kill-restart",
            Fault::CoordinatorFailover => "coordinator-failover",
            Fault::Partition => "partition",
            Fault::OneWayLink => "one-way-link",
            Fault::Pause => "pause",
            Fault::Latency => "latency",
            Fault::Drop => "drop",
            Fault::MoveVchannel => "move-vchannel",
            Fault::ObjectStoreBrownout => "object-store-brownout",
            Fault::MetaBrownout => "meta-brownout",
        }
    }
}

/// What a nemesis may do and how often.
#[derive(Debug, Clone)]
pub struct NemesisConfig {
    pub faults: Vec<Fault>,
    /// Pause between faults (uniform in this range).
    pub gap: (Duration, Duration),
    /// A fault lasts this long (uniform in this range).
    pub hold: (Duration, Duration),
    /// Roles `KillRestart`, `Partition` and `Pause` pick from.
    pub roles: Vec<Role>,
}

/// Faults injected, by kind, and a log for the trace.
#[derive(Debug, Default, Clone)]
pub struct NemesisLog {
    pub counts: BTreeMap<&'static str, u64>,
    pub events: Vec<String>,
}

fn between(rng: &mut Rng, (lo, hi): (Duration, Duration)) -> Duration {
    let (lo, hi) = (lo.as_millis() as u64, hi.as_millis() as u64);
    Duration::from_millis(if hi > lo { rng.gen_range(lo, hi) } else { lo })
}

/// Runs faults until `until`, then heals everything.
pub async fn run(
    cluster: Arc<Cluster>,
    cfg: NemesisConfig,
    seed: u64,
    until: rt::Instant,
    log: Arc<Mutex<NemesisLog>>,
) {
    let mut rng = Rng::seed_from_u64(seed ^ 0x4e45_4d45);
    let note = |kind: Fault, what: String| {
        let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
        *l.counts.entry(kind.name()).or_default() += 1;
        let at = madsim::time::TimeHandle::current().elapsed().as_millis();
        tracing::info!(fault = kind.name(), %what, at_ms = at as u64, "nemesis");
        l.events.push(format!("{at}ms {} {what}", kind.name()));
    };
    if cfg.faults.is_empty() {
        return;
    }
    let net = NetSim::current();
    while rt::now() < until {
        rt::sleep(between(&mut rng, cfg.gap)).await;
        if rt::now() >= until {
            break;
        }
        let fault = cfg.faults[rng.index(cfg.faults.len())];
        let hold = between(&mut rng, cfg.hold);
        match fault {
            Fault::KillRestart => {
                let role = cfg.roles[rng.index(cfg.roles.len())];
                let n = cluster.nodes(role).len();
                let i = rng.index(n);
                note(fault, format!("{}-{} for {hold:?}", role.name(), i + 1));
                cluster.kill(role, i);
                rt::sleep(hold).await;
                cluster.restart(role, i);
            }
            Fault::CoordinatorFailover => {
                // The seat in office is not known from outside; kill one at random and
                // then the other if the first was the standby, so a failover happens.
                let n = cluster.coordinators.len();
                let i = rng.index(n);
                note(fault, format!("coordinator-{} for {hold:?}", i + 1));
                cluster.kill(Role::Coordinator, i);
                rt::sleep(hold).await;
                cluster.restart(Role::Coordinator, i);
                if n > 1 && rng.gen_bool(0.5) {
                    rt::sleep(between(&mut rng, cfg.gap)).await;
                    let j = (i + 1) % n;
                    note(fault, format!("coordinator-{} for {hold:?}", j + 1));
                    cluster.kill(Role::Coordinator, j);
                    rt::sleep(hold).await;
                    cluster.restart(Role::Coordinator, j);
                }
            }
            Fault::Partition => {
                let role = cfg.roles[rng.index(cfg.roles.len())];
                let nodes = cluster.nodes(role);
                let i = rng.index(nodes.len());
                let id = nodes[i].id();
                let how = rng.index(3);
                note(
                    fault,
                    format!(
                        "{}-{} {} for {hold:?}",
                        role.name(),
                        i + 1,
                        ["both ways", "inbound", "outbound"][how]
                    ),
                );
                match how {
                    0 => net.clog_node(id),
                    1 => net.clog_node_in(id),
                    _ => net.clog_node_out(id),
                }
                rt::sleep(hold).await;
                match how {
                    0 => net.unclog_node(id),
                    1 => net.unclog_node_in(id),
                    _ => net.unclog_node_out(id),
                }
            }
            Fault::OneWayLink => {
                let a_role = cfg.roles[rng.index(cfg.roles.len())];
                let b_role = [
                    Role::Coordinator,
                    Role::Streaming,
                    Role::QueryNode,
                    Role::WalStore,
                ][rng.index(4)];
                let a_nodes = cluster.nodes(a_role);
                let b_nodes = cluster.nodes(b_role);
                let (ai, bi) = (rng.index(a_nodes.len()), rng.index(b_nodes.len()));
                let (a, b) = (a_nodes[ai].id(), b_nodes[bi].id());
                if a == b {
                    continue;
                }
                note(
                    fault,
                    format!(
                        "{}-{} -> {}-{} for {hold:?}",
                        a_role.name(),
                        ai + 1,
                        b_role.name(),
                        bi + 1
                    ),
                );
                net.clog_link(a, b);
                rt::sleep(hold).await;
                net.unclog_link(a, b);
            }
            Fault::Pause => {
                let role = cfg.roles[rng.index(cfg.roles.len())];
                let nodes = cluster.nodes(role);
                let i = rng.index(nodes.len());
                let id = nodes[i].id();
                note(fault, format!("{}-{} for {hold:?}", role.name(), i + 1));
                cluster.handle.pause(id);
                rt::sleep(hold).await;
                cluster.handle.resume(id);
            }
            Fault::Latency => {
                let ms = rng.gen_range(5, 200);
                note(fault, format!("up to {ms}ms for {hold:?}"));
                net.update_config(|c| {
                    c.send_latency = Duration::from_millis(1)..Duration::from_millis(ms)
                });
                rt::sleep(hold).await;
                net.update_config(|c| {
                    c.send_latency = Duration::from_millis(1)..Duration::from_millis(10)
                });
            }
            Fault::Drop => {
                let p = [0.02, 0.1, 0.3][rng.index(3)];
                note(fault, format!("loss {p} for {hold:?}"));
                net.update_config(|c| c.packet_loss_rate = p);
                rt::sleep(hold).await;
                net.update_config(|c| c.packet_loss_rate = 0.0);
            }
            Fault::MoveVchannel => {
                let shard = rng.index(2);
                let c = cluster.clone();
                let moved = cluster
                    .control
                    .spawn(async move {
                        let coord = c.coordinator_client();
                        let info = coord.get("default", COLLECTION).await.ok()?;
                        let v = info.vchannels().get(shard)?.clone();
                        coord.reassign(&v.0, None).await.ok()
                    })
                    .await
                    .ok()
                    .flatten();
                match moved {
                    Some(a) => note(
                        fault,
                        format!("{} to {} epoch {}", a.vchannel, a.node, a.epoch),
                    ),
                    None => note(fault, format!("shard {shard}: no move (no coordinator)")),
                }
            }
            Fault::ObjectStoreBrownout => {
                let p = [0.1, 0.3, 0.6][rng.index(3)];
                note(fault, format!("error rate {p} for {hold:?}"));
                cluster.store.set_config(FaultConfig {
                    error_probability: p,
                    spike_probability: 0.2,
                    spike: Duration::from_millis(rng.gen_range(50, 2000)),
                    base_latency: Duration::from_millis(5),
                });
                rt::sleep(hold).await;
                cluster.store.set_config(FaultConfig::default());
            }
            Fault::MetaBrownout => {
                let p = [0.05, 0.2, 0.5][rng.index(3)];
                note(fault, format!("error rate {p} for {hold:?}"));
                cluster.meta.set_faults(MetaFaults {
                    error_probability: p,
                    ambiguous_probability: p / 2.0,
                    latency: Duration::from_millis(rng.gen_range(1, 100)),
                });
                rt::sleep(hold).await;
                cluster.meta.set_faults(MetaFaults::default());
            }
        }
    }
}
