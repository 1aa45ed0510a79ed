//! The proxy's entry point: a proxy is stateless — it needs the coordinator and a way
//! to reach streaming nodes by id, and routes each shard's requests to the node that
//! owns the shard's vchannel ([`super::router`]).

use std::sync::Arc;

use super::router::{Connect, ShardRouter};
use super::Proxy;
use crate::rpc::CoordinatorApi;

/// How a proxy is configured.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    /// `user:password` or a token clients must present; `None` turns auth off.
    pub auth_token: Option<String>,
}

/// What a proxy is started with.
pub struct ProxyDeps {
    pub coord: Arc<dyn CoordinatorApi>,
    /// Reaches a streaming node by its id in the vchannel assignments.
    pub connect: Connect,
}

/// Starts a proxy. Serve it with `MilvusServiceServer` (or call its `MilvusService`
/// methods directly, as the simulator does).
pub fn start(cfg: ProxyConfig, deps: ProxyDeps) -> Arc<Proxy> {
    let router = ShardRouter::new(deps.coord.clone(), deps.connect);
    Arc::new(Proxy::new(
        deps.coord,
        Arc::new(router),
        cfg.auth_token.as_deref(),
    ))
}
