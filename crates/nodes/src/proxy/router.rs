//! The proxy's route to each shard: the streaming node that owns its vchannel, as the
//! coordinator says. Owners are cached; a node that answers "not the owner" (the
//! vchannel moved, or its lease ran out) makes the router ask again and retry — that
//! answer means the request did not run. A node that cannot be reached is forgotten
//! for the next call but the error goes back to the client: a write that timed out
//! may have happened, and only the client can decide what to do about it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use quiver_core::rt;

use crate::coordinator::{vchannel_of, CoordinatorApi};
use crate::error::{code, ApiError, ApiResult};
use crate::rpc::wire::{StreamRequest, StreamResponse};
use crate::rpc::StreamingApi;

/// Connects to a streaming node by its id.
pub type Connect = Box<dyn Fn(&str) -> ApiResult<Arc<dyn StreamingApi>> + Send + Sync>;

pub struct ShardRouter {
    coord: Arc<dyn CoordinatorApi>,
    connect: Connect,
    nodes: std::sync::Mutex<BTreeMap<String, Arc<dyn StreamingApi>>>,
    owners: std::sync::Mutex<BTreeMap<String, String>>,
}

/// How many times a request is re-routed after "not the owner" answers.
const ROUTE_ATTEMPTS: usize = 4;

impl ShardRouter {
    pub fn new(coord: Arc<dyn CoordinatorApi>, connect: Connect) -> Self {
        ShardRouter {
            coord,
            connect,
            nodes: Default::default(),
            owners: Default::default(),
        }
    }

    fn node(&self, id: &str) -> ApiResult<Arc<dyn StreamingApi>> {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = nodes.get(id) {
            return Ok(n.clone());
        }
        let n = (self.connect)(id)?;
        nodes.insert(id.to_string(), n.clone());
        Ok(n)
    }

    async fn owner(&self, vchannel: &str) -> ApiResult<String> {
        let cached = self
            .owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(vchannel)
            .cloned();
        if let Some(n) = cached {
            return Ok(n);
        }
        let a = self.coord.locate(vchannel).await?;
        self.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(vchannel.to_string(), a.node.clone());
        Ok(a.node)
    }

    fn forget(&self, vchannel: &str) {
        self.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(vchannel);
    }

    async fn to_shard(&self, vchannel: &str, req: StreamRequest) -> ApiResult<StreamResponse> {
        let mut last = None;
        for attempt in 0..ROUTE_ATTEMPTS {
            if attempt > 0 {
                rt::sleep(Duration::from_millis(100 << attempt)).await;
            }
            let node = self.owner(vchannel).await?;
            match self.node(&node)?.call(req.clone()).await {
                Err(e) if e.code == code::NOT_OWNER => {
                    tracing::debug!(vchannel, node, reason = %e.reason, "not the owner; re-routing");
                    self.forget(vchannel);
                    last = Some(e);
                }
                Err(e) if e.code == code::UNAVAILABLE => {
                    self.forget(vchannel);
                    return Err(e);
                }
                r => return r,
            }
        }
        Err(last.unwrap_or_else(|| ApiError::new(code::NOT_OWNER, "no owner")))
    }
}

#[async_trait::async_trait]
impl StreamingApi for ShardRouter {
    async fn call(&self, req: StreamRequest) -> ApiResult<StreamResponse> {
        if let Some((c, i)) = req.target() {
            let v = vchannel_of(c, i);
            return self.to_shard(&v.0, req).await;
        }
        // Open and Drop concern every owner of the collection's vchannels.
        let info = match &req {
            StreamRequest::Open { info } | StreamRequest::Drop { info } => info.clone(),
            _ => unreachable!("requests without a target are Open or Drop"),
        };
        let mut owners = std::collections::BTreeSet::new();
        for v in info.vchannels() {
            owners.insert(self.owner(&v.0).await?);
        }
        for node in owners {
            self.node(&node)?.call(req.clone()).await?;
        }
        Ok(StreamResponse::Done)
    }
}
