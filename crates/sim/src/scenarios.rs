//! The named scenarios. Each is a cluster shape, a workload and a nemesis; the
//! `sim-tests` crate runs each over many seeds.

use std::time::Duration;

use crate::cluster::{ClusterConfig, Role};
use crate::nemesis::{Fault, NemesisConfig};
use crate::scenario::Scenario;
use crate::workload::WorkloadConfig;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn base(name: &'static str, faults: Vec<Fault>, roles: Vec<Role>) -> Scenario {
    Scenario {
        name,
        cluster: ClusterConfig::default(),
        workload: WorkloadConfig::default(),
        nemesis: NemesisConfig {
            faults,
            gap: (ms(1_000), ms(4_000)),
            hold: (ms(500), ms(4_000)),
            roles,
        },
        shards: 2,
        buggify: None,
        converge_within: Duration::from_secs(60),
    }
}

/// Nodes die and come back: streaming nodes, query nodes, the data node and
/// coordinators.
pub fn crash_recovery() -> Scenario {
    base(
        "crash-recovery",
        vec![Fault::KillRestart],
        vec![
            Role::Streaming,
            Role::QueryNode,
            Role::DataNode,
            Role::Coordinator,
        ],
    )
}

/// Nodes are cut off (both ways or one way), single links fail in one direction,
/// nodes pause, messages slow down or get lost.
pub fn partition() -> Scenario {
    base(
        "partition",
        vec![
            Fault::Partition,
            Fault::OneWayLink,
            Fault::Pause,
            Fault::Latency,
            Fault::Drop,
        ],
        vec![
            Role::Streaming,
            Role::QueryNode,
            Role::Coordinator,
            Role::Proxy,
        ],
    )
}

/// The coordinator in office dies, again and again; the standby takes over.
pub fn coordinator_failover() -> Scenario {
    let mut s = base(
        "coordinator-failover",
        vec![Fault::CoordinatorFailover],
        vec![Role::Coordinator],
    );
    s.nemesis.gap = (ms(2_000), ms(5_000));
    s.nemesis.hold = (ms(1_000), ms(6_000));
    s
}

/// vchannels move between streaming nodes (the old owner alive and unaware for a
/// while), and streaming nodes die: WAL ownership changes under load.
pub fn streaming_handoff() -> Scenario {
    Scenario {
        cluster: ClusterConfig {
            streaming_nodes: 3,
            ..ClusterConfig::default()
        },
        ..base(
            "streaming-handoff",
            vec![Fault::MovePchannel, Fault::MovePchannel, Fault::KillRestart],
            vec![Role::Streaming],
        )
    }
}

/// Object storage and the meta store fail a share of requests and slow down.
///
/// No garbage collection here (the other five scenarios sweep every 20 s): sweeps draw
/// on the faulty stores' random streams, and with them the planted
/// `qn-switch-while-remote` bug — caught only in this scenario, and rarely — was not
/// caught in 384 runs. Its weak detection is a known gap (see the mutation check).
pub fn object_store_brownout() -> Scenario {
    Scenario {
        cluster: ClusterConfig {
            gc_every: None,
            ..ClusterConfig::default()
        },
        ..base(
            "object-store-brownout",
            vec![Fault::ObjectStoreBrownout, Fault::MetaBrownout],
            vec![],
        )
    }
}

/// Every fault, buggify points on.
pub fn everything_at_once() -> Scenario {
    let mut s = base(
        "everything-at-once",
        vec![
            Fault::KillRestart,
            Fault::CoordinatorFailover,
            Fault::Partition,
            Fault::OneWayLink,
            Fault::Pause,
            Fault::Latency,
            Fault::Drop,
            Fault::MovePchannel,
            Fault::ObjectStoreBrownout,
            Fault::MetaBrownout,
        ],
        vec![
            Role::Streaming,
            Role::QueryNode,
            Role::DataNode,
            Role::Coordinator,
        ],
    );
    s.cluster.streaming_nodes = 3;
    s.cluster.query_nodes = 3;
    s.buggify = Some((0.3, 0.02));
    s.nemesis.gap = (ms(500), ms(3_000));
    s
}

/// Every named scenario.
pub fn all() -> Vec<Scenario> {
    vec![
        crash_recovery(),
        partition(),
        coordinator_failover(),
        streaming_handoff(),
        object_store_brownout(),
        everything_at_once(),
    ]
}
