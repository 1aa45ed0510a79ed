//! Internal RPCs between roles. Each role's API is defined once, as a list of typed
//! operations ([`service::rpc_service`]): the API trait every caller uses, the wire
//! enum, the server and the client all come from that list. A request's reply is its
//! operation's own result type, sealed in a versioned, CRC-checked envelope
//! ([`envelope`]), so a proxy talks to a coordinator or a streaming node the same way
//! whether it is in-process or across the network.
//!
//! | role | API trait | served by | client |
//! |---|---|---|---|
//! | coordinator | [`CoordinatorApi`] | [`CoordinatorService`] | [`RemoteCoordinator`] |
//! | streaming node | [`StreamingApi`] | [`StreamingService`] | [`RemoteStreaming`] |
//! | query node | [`QueryNodeApi`] | [`QueryNodeService`] | [`RemoteQueryNode`] |
//! | data node | [`DataNodeApi`] | [`DataNodeService`] | [`RemoteDataNode`] |

pub mod coordinator;
pub mod datanode;
pub mod envelope;
pub mod querynode;
pub mod service;
pub mod streaming;
pub mod types;

pub use coordinator::{CoordRequest, CoordinatorApi, CoordinatorService, RemoteCoordinator};
pub use datanode::{DataNodeApi, DataNodeRequest, DataNodeService, RemoteDataNode};
pub use envelope::{MAX_MESSAGE_BYTES, WIRE_VERSION};
pub use querynode::{Handoff, QueryNodeApi, QueryNodeRequest, QueryNodeService, RemoteQueryNode};
pub use service::CALL_TIMEOUT;
pub use streaming::{RemoteStreaming, ShardRef, StreamRequest, StreamingApi, StreamingService};
pub use types::{IndexProgress, SearchKnobs, VectorSearch, WireScope, DEFAULT_READ_BUDGET};
