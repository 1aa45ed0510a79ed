//! quiver-nodes: the roles, each written against `quiver_core::rt` and started through
//! its own entry point (`start`) with explicit dependencies — by standalone, by the
//! cluster binaries and by the simulator alike:
//!
//! | role | module | entry point |
//! |---|---|---|
//! | coordinator (catalog, TSO, vchannel and query assignment; one seat in office) | [`coordinator`], [`leader`], [`channels`], [`querycoord`] | [`coordinator::start`] |
//! | proxy (the Milvus gRPC API) | [`proxy`] | [`proxy::start`] |
//! | streaming node (shards: WAL, growing segments, flush; the query delegator) | [`streaming`], [`delegator`] | [`streaming::start`] |
//! | query node (serves handed-off sealed segments) | [`querynode`] | [`querynode::start`] |
//! | data node (builds indexes) | [`datanode`] | [`datanode::start`] |
//!
//! Roles talk through the typed internal APIs in [`rpc`]; errors carry a Milvus code
//! and a kind ([`error`]). [`standalone`] runs every role in one process; [`gc`] sweeps
//! what dropped collections left behind; [`ops`] holds the operator commands
//! (`quiver inspect`, `quiver repair`).

pub mod channels;
pub mod coordinator;
pub mod datanode;
pub mod deadline;
pub mod delegator;
pub mod error;
pub mod fuzzing;
pub mod gc;
pub mod leader;
pub mod ops;
pub mod pb;
pub mod proxy;
pub mod querycoord;
pub mod querynode;
pub mod rpc;
pub mod standalone;
pub mod streaming;
