//! quiver-core: the data model and the pure machinery every Quiver role stands on.
//!
//! It owns the runtime seam ([`rt`]), ids and schemas ([`ids`], [`schema`], [`batch`]),
//! hybrid timestamps ([`tso`]), the meta-store seam ([`meta`]), the write-ahead log
//! ([`wal`]), segments and their on-storage format ([`segment`]), object storage
//! ([`objstore`]), exact search and top-k reduce ([`search`]), and a shard's durable
//! data path with crash recovery ([`shard`]). Nothing here knows about RPCs or roles.

pub mod batch;
pub mod error_kind;
pub mod expr;
pub mod fuzzing;
pub mod ids;
pub mod invariant;
pub mod message;
pub mod meta;
pub mod mutation;
pub mod objstore;
pub mod rt;
pub mod schema;
pub mod search;
pub mod segment;
pub mod shard;
pub mod tso;
pub mod wal;
