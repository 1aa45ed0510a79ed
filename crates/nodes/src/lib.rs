//! quiver-nodes: the roles — coordinator, proxy, streaming node, query node, data
//! node — each a struct started with explicit dependencies from `quiver-core`, the
//! Milvus-compatible public API, the internal RPCs, and the `quiver` binary.
//!
//! The roles arrive with the standalone issue; this crate exists now so the workspace
//! has its final shape and the clippy rules of the runtime seam already cover it.
