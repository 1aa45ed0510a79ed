//! The proxy: serves the Milvus gRPC API (`milvus.proto.milvus.MilvusService`).
//! Stateless: it validates requests against the catalog, routes rows to shards by
//! primary-key hash, fans reads out to every shard's delegator at once and reduces the
//! results. Errors travel in the response `Status`, never as gRPC errors, because
//! pymilvus retries gRPC errors for minutes.
//!
//! Layout: [`service`] is the thin `MilvusService` impl; every RPC first takes the
//! one request-context step of [`context`] (authentication and database) and then
//! calls a handler — DDL in [`collections`], [`partitions`], [`indexes`],
//! [`databases`], [`aliases`]; DML in [`writes`]; reads in [`search`], [`query`],
//! [`hybrid`] and [`group_by`] (with [`output`] and [`by_pk`]), over the shard fan-out
//! of [`fanout`]; connection-level RPCs in [`session`]. Requests that cannot be
//! decoded get a Milvus status from [`undecodable`].

mod aliases;
mod by_pk;
mod collections;
mod context;
mod convert;
mod databases;
mod fanout;
mod group_by;
mod hybrid;
mod indexes;
mod output;
mod params;
mod partitions;
mod query;
mod read_scope;
mod role;
pub mod router;
mod search;
pub mod search_params;
mod service;
mod session;
mod shards;
// Not when rustdoc collects doctests: it does not see `--cfg madsim`, but the
// simulator's tonic has no `server` module.
#[cfg(not(any(madsim, doctest)))]
mod undecodable;
mod writes;

pub use role::{start, ProxyConfig, ProxyDeps};
#[cfg(not(any(madsim, doctest)))]
pub use undecodable::DecodeErrorsAsStatus;

use std::sync::Arc;

use quiver_core::batch::Pk;

use crate::coordinator::CoordinatorApi;
use crate::rpc::StreamingApi;

pub use convert::{batch_from_fields, schema_from_proto, schema_to_proto};
pub use group_by::GroupBy;
pub use hybrid::Ranker;
pub(crate) use search::decode_queries;

/// How stale a Bounded read may be (Milvus's `gracefulTime` default).
pub const BOUNDED_STALENESS_MS: u64 = 5_000;

/// Largest Insert/Upsert/Search request accepted (Milvus's default proxy limit).
pub const MAX_REQUEST_BYTES: usize = 64 << 20;

pub struct Proxy {
    coord: Arc<dyn CoordinatorApi>,
    streaming: Arc<dyn StreamingApi>,
    /// `base64(user:password)` or `base64(token)` the client must send, if auth is on.
    expected_auth: Option<String>,
}

/// Which shard a primary key belongs to.
pub fn shard_of(pk: &Pk, shards: usize) -> usize {
    quiver_core::invariant_cheap!(shards > 0, "a collection has at least one shard");
    (pk.stable_hash() % shards as u64) as usize
}

impl Proxy {
    pub fn new(
        coord: Arc<dyn CoordinatorApi>,
        streaming: Arc<dyn StreamingApi>,
        auth_token: Option<&str>,
    ) -> Self {
        use base64::Engine;
        Proxy {
            coord,
            streaming,
            expected_auth: auth_token.map(|t| base64::engine::general_purpose::STANDARD.encode(t)),
        }
    }
}
