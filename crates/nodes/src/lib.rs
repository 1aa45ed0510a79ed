//! quiver-nodes: the roles — coordinator (catalog, TSO), proxy (the Milvus API),
//! streaming node (shards: WAL, growing segments, flush, delegated reads) — each a
//! struct started with explicit dependencies from `quiver-core`, and the `quiver`
//! binary's standalone mode that runs them all in one process.

pub mod channels;
pub mod coordinator;
pub mod datanode;
pub mod error;
pub mod fuzzing;
pub mod gc;
pub mod leader;
pub mod pb;
pub mod proxy;
pub mod querycoord;
pub mod querynode;
pub mod rpc;
pub mod standalone;
pub mod streaming;
pub mod walstore;
