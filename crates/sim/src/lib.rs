//! quiver-sim: the simulation harness. It owns what a seed-driven run needs besides the
//! real role code: the operation history a workload records ([`history`]), the checks
//! that judge a history against the final state, trace hashing so a seed is a
//! bit-for-bit replayable bug report ([`trace`]), and (under `--cfg madsim`) harnesses
//! that put roles on simulated nodes with crashable disks ([`shard_node`], [`cluster`]),
//! and builders of the Milvus API requests a workload sends ([`client`]).

pub mod client;
#[cfg(madsim)]
pub mod cluster;
pub mod faulty_meta;
pub mod history;
pub mod model;
#[cfg(madsim)]
pub mod neighbours;
#[cfg(madsim)]
pub mod nemesis;
#[cfg(madsim)]
pub mod scenario;
#[cfg(madsim)]
pub mod scenarios;
#[cfg(madsim)]
pub mod shard_node;
pub mod trace;
pub mod wal_audit;
#[cfg(madsim)]
pub mod workload;
