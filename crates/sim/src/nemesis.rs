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
    MovePchannel,
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
            Fault::MovePchannel => "move-pchannel",
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
    let rng = Rng::seed_from_u64(seed ^ 0x4e45_4d45);
    if cfg.faults.is_empty() {
        return;
    }
    let mut nemesis = Nemesis {
        cluster,
        cfg,
        rng,
        net: NetSim::current(),
        log,
    };
    while rt::now() < until {
        rt::sleep(between(&mut nemesis.rng, nemesis.cfg.gap)).await;
        if rt::now() >= until {
            break;
        }
        let fault = nemesis.cfg.faults[nemesis.rng.index(nemesis.cfg.faults.len())];
        let hold = between(&mut nemesis.rng, nemesis.cfg.hold);
        nemesis.inject(fault, hold).await;
    }
}

/// One run's nemesis. Every random choice comes from `rng`, in a fixed order (the
/// order is part of what a seed replays).
struct Nemesis {
    cluster: Arc<Cluster>,
    cfg: NemesisConfig,
    rng: Rng,
    net: Arc<NetSim>,
    log: Arc<Mutex<NemesisLog>>,
}

impl Nemesis {
    /// Logs a fault: counted by kind, traced, and kept for the trace hash.
    fn note(&self, kind: Fault, what: String) {
        let mut l = self.log.lock().unwrap_or_else(|e| e.into_inner());
        *l.counts.entry(kind.name()).or_default() += 1;
        let at = madsim::time::TimeHandle::current().elapsed().as_millis();
        tracing::info!(fault = kind.name(), %what, at_ms = at as u64, "nemesis");
        l.events.push(format!("{at}ms {} {what}", kind.name()));
    }

    /// A role the config allows, drawn at random.
    fn pick_role(&mut self) -> Role {
        self.cfg.roles[self.rng.index(self.cfg.roles.len())]
    }

    /// Injects one fault, holds it, and heals it.
    async fn inject(&mut self, fault: Fault, hold: Duration) {
        match fault {
            Fault::KillRestart => self.kill_restart(hold).await,
            Fault::CoordinatorFailover => self.coordinator_failover(hold).await,
            Fault::Partition => self.partition(hold).await,
            Fault::OneWayLink => self.one_way_link(hold).await,
            Fault::Pause => self.pause(hold).await,
            Fault::Latency => self.latency(hold).await,
            Fault::Drop => self.drop_messages(hold).await,
            Fault::MovePchannel => self.move_pchannel().await,
            Fault::ObjectStoreBrownout => self.object_store_brownout(hold).await,
            Fault::MetaBrownout => self.meta_brownout(hold).await,
        }
    }

    async fn kill_restart(&mut self, hold: Duration) {
        let role = self.pick_role();
        let n = self.cluster.nodes(role).len();
        let i = self.rng.index(n);
        let what = format!("{}-{} for {hold:?}", role.name(), i + 1);
        self.note(Fault::KillRestart, what);
        self.cluster.kill(role, i);
        rt::sleep(hold).await;
        self.cluster.restart(role, i);
    }

    /// The seat in office is not known from outside; kill one at random and then the
    /// other if the first was the standby, so a failover happens.
    async fn coordinator_failover(&mut self, hold: Duration) {
        let n = self.cluster.coordinators.len();
        let i = self.rng.index(n);
        self.kill_coordinator(i, hold).await;
        if n > 1 && self.rng.gen_bool(0.5) {
            rt::sleep(between(&mut self.rng, self.cfg.gap)).await;
            self.kill_coordinator((i + 1) % n, hold).await;
        }
    }

    async fn kill_coordinator(&self, i: usize, hold: Duration) {
        let what = format!("coordinator-{} for {hold:?}", i + 1);
        self.note(Fault::CoordinatorFailover, what);
        self.cluster.kill(Role::Coordinator, i);
        rt::sleep(hold).await;
        self.cluster.restart(Role::Coordinator, i);
    }

    /// Cuts a node off: both ways, inbound only or outbound only.
    async fn partition(&mut self, hold: Duration) {
        let role = self.pick_role();
        let nodes = self.cluster.nodes(role);
        let i = self.rng.index(nodes.len());
        let id = nodes[i].id();
        let how = self.rng.index(3);
        let dir = ["both ways", "inbound", "outbound"][how];
        self.note(
            Fault::Partition,
            format!("{}-{} {dir} for {hold:?}", role.name(), i + 1),
        );
        match how {
            0 => self.net.clog_node(id),
            1 => self.net.clog_node_in(id),
            _ => self.net.clog_node_out(id),
        }
        rt::sleep(hold).await;
        match how {
            0 => self.net.unclog_node(id),
            1 => self.net.unclog_node_in(id),
            _ => self.net.unclog_node_out(id),
        }
    }

    /// Cuts the link from a node of a configured role to a node of any role.
    async fn one_way_link(&mut self, hold: Duration) {
        let a_role = self.pick_role();
        let b_role = [
            Role::Coordinator,
            Role::Streaming,
            Role::QueryNode,
            Role::DataNode,
        ][self.rng.index(4)];
        let a_nodes = self.cluster.nodes(a_role);
        let b_nodes = self.cluster.nodes(b_role);
        let (ai, bi) = (self.rng.index(a_nodes.len()), self.rng.index(b_nodes.len()));
        let (a, b) = (a_nodes[ai].id(), b_nodes[bi].id());
        if a == b {
            return;
        }
        let what = format!(
            "{}-{} -> {}-{} for {hold:?}",
            a_role.name(),
            ai + 1,
            b_role.name(),
            bi + 1
        );
        self.note(Fault::OneWayLink, what);
        self.net.clog_link(a, b);
        rt::sleep(hold).await;
        self.net.unclog_link(a, b);
    }

    async fn pause(&mut self, hold: Duration) {
        let role = self.pick_role();
        let nodes = self.cluster.nodes(role);
        let i = self.rng.index(nodes.len());
        let id = nodes[i].id();
        self.note(
            Fault::Pause,
            format!("{}-{} for {hold:?}", role.name(), i + 1),
        );
        self.cluster.handle.pause(id);
        rt::sleep(hold).await;
        self.cluster.handle.resume(id);
    }

    async fn latency(&mut self, hold: Duration) {
        let ms = self.rng.gen_range(5, 200);
        self.note(Fault::Latency, format!("up to {ms}ms for {hold:?}"));
        self.net.update_config(|c| {
            c.send_latency = Duration::from_millis(1)..Duration::from_millis(ms)
        });
        rt::sleep(hold).await;
        self.net.update_config(|c| {
            c.send_latency = Duration::from_millis(1)..Duration::from_millis(10)
        });
    }

    async fn drop_messages(&mut self, hold: Duration) {
        let p = [0.02, 0.1, 0.3][self.rng.index(3)];
        self.note(Fault::Drop, format!("loss {p} for {hold:?}"));
        self.net.update_config(|c| c.packet_loss_rate = p);
        rt::sleep(hold).await;
        self.net.update_config(|c| c.packet_loss_rate = 0.0);
    }

    /// Asks the coordinator (from the control node) to move the pchannel one shard of
    /// the collection rides on, with every vchannel on it.
    async fn move_pchannel(&mut self) {
        let shard = self.rng.index(2);
        let c = self.cluster.clone();
        let moved = self
            .cluster
            .control
            .spawn(async move {
                let coord = c.coordinator_client();
                let info = coord.get("default", COLLECTION).await.ok()?;
                let p = info.pchannel(u32::try_from(shard).ok()?);
                coord.reassign(&p.0, None).await.ok()
            })
            .await
            .ok()
            .flatten();
        let what = match moved {
            Some(a) => format!("{} to {} epoch {}", a.pchannel, a.node, a.epoch),
            None => format!("shard {shard}: no move (no coordinator)"),
        };
        self.note(Fault::MovePchannel, what);
    }

    async fn object_store_brownout(&mut self, hold: Duration) {
        let p = [0.1, 0.3, 0.6][self.rng.index(3)];
        self.note(
            Fault::ObjectStoreBrownout,
            format!("error rate {p} for {hold:?}"),
        );
        self.cluster.store.set_config(FaultConfig {
            error_probability: p,
            spike_probability: 0.2,
            spike: Duration::from_millis(self.rng.gen_range(50, 2000)),
            base_latency: Duration::from_millis(5),
            lost_ack_probability: p / 2.0,
        });
        rt::sleep(hold).await;
        self.cluster
            .store
            .set_config(crate::cluster::store_baseline());
    }

    async fn meta_brownout(&mut self, hold: Duration) {
        let p = [0.05, 0.2, 0.5][self.rng.index(3)];
        self.note(Fault::MetaBrownout, format!("error rate {p} for {hold:?}"));
        self.cluster.meta.set_faults(MetaFaults {
            error_probability: p,
            ambiguous_probability: p / 2.0,
            latency: Duration::from_millis(self.rng.gen_range(1, 100)),
        });
        rt::sleep(hold).await;
        self.cluster.meta.set_faults(MetaFaults::default());
    }
}
