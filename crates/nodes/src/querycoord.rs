//! Query coordination: which query node serves each vchannel's sealed segments.
//!
//! The coordinator keeps one assignment per vchannel (`qassign/<vchannel>` in the meta
//! store) and answers a delegator that asks, before it hands segments off, which query
//! node to use. It keeps an assignment while the delegator can reach that node and has
//! not found it failing; otherwise it picks the reachable node serving the fewest
//! vchannels, so load spreads and a failed node's vchannels move to live ones.
//!
//! Correctness does not rest on this table: a delegator switches query nodes only when
//! none of its segments is served remotely (see `streaming::QueryTargets`), and query
//! nodes fence older delegator epochs. A lost or stale assignment costs balance, not
//! data, which is why plain puts (not compare-and-swap) are enough here.

use std::collections::BTreeMap;
use std::sync::Arc;

use quiver_core::meta::MetaStore;
use quiver_core::segment::format::{self, ObjectKind};

use crate::error::{ApiError, ApiResult};

const PREFIX: &str = "qassign/";

pub struct QueryAssignments {
    meta: Arc<dyn MetaStore>,
    /// vchannel -> query node id.
    table: tokio::sync::Mutex<BTreeMap<String, String>>,
}

impl QueryAssignments {
    pub async fn open(meta: Arc<dyn MetaStore>) -> ApiResult<Self> {
        let mut table = BTreeMap::new();
        for (k, v) in meta.range(PREFIX).await? {
            let node: String = format::decode(ObjectKind::CatalogEntry, &v)
                .map_err(|e| ApiError::internal(format!("corrupt query assignment {k}: {e}")))?;
            table.insert(k[PREFIX.len()..].to_string(), node);
        }
        Ok(QueryAssignments {
            meta,
            table: tokio::sync::Mutex::new(table),
        })
    }

    /// The query node for `vchannel` among `candidates` (the nodes the delegator can
    /// reach), never `avoid` (the one it found failing) unless nothing else is left.
    pub async fn assign(
        &self,
        vchannel: &str,
        candidates: &[String],
        avoid: Option<&str>,
    ) -> ApiResult<String> {
        if candidates.is_empty() {
            return Err(ApiError::invalid("no query node to choose from"));
        }
        let mut table = self.table.lock().await;
        if let Some(current) = table.get(vchannel) {
            if candidates.contains(current) && Some(current.as_str()) != avoid {
                return Ok(current.clone());
            }
        }
        let load = |node: &str| table.values().filter(|n| n.as_str() == node).count();
        let pick = candidates
            .iter()
            .filter(|c| Some(c.as_str()) != avoid)
            .min_by_key(|c| (load(c), c.as_str()))
            .unwrap_or(&candidates[0])
            .clone();
        self.meta
            .put(
                &format!("{PREFIX}{vchannel}"),
                format::encode(ObjectKind::CatalogEntry, &pick),
            )
            .await?;
        tracing::info!(vchannel, node = %pick, ?avoid, "query node assigned");
        table.insert(vchannel.to_string(), pick.clone());
        Ok(pick)
    }

    /// Forgets a dropped vchannel.
    pub async fn remove(&self, vchannel: &str) -> ApiResult<()> {
        let mut table = self.table.lock().await;
        if table.remove(vchannel).is_some() {
            self.meta.delete(&format!("{PREFIX}{vchannel}")).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_core::meta::MemMetaStore;

    #[test]
    fn spreads_keeps_and_moves_off_failed_nodes() {
        quiver_core::rt::block_on(async {
            let meta: Arc<dyn MetaStore> = Arc::new(MemMetaStore::new());
            let q = QueryAssignments::open(meta.clone()).await.unwrap();
            let nodes = vec!["qn-a".to_string(), "qn-b".to_string()];
            let a = q.assign("v0", &nodes, None).await.unwrap();
            let b = q.assign("v1", &nodes, None).await.unwrap();
            assert_ne!(a, b, "two vchannels spread over two nodes");
            assert_eq!(q.assign("v0", &nodes, None).await.unwrap(), a, "kept");
            // The delegator of v0 found its node failing: v0 moves.
            assert_eq!(q.assign("v0", &nodes, Some(&a)).await.unwrap(), b);
            // An unreachable node is not chosen; an only node is, even if suspect.
            assert_eq!(q.assign("v1", &nodes[..1], None).await.unwrap(), nodes[0]);
            assert_eq!(
                q.assign("v2", &nodes[..1], Some("qn-a")).await.unwrap(),
                "qn-a"
            );
            // Assignments survive a coordinator change; removal forgets them.
            let q = QueryAssignments::open(meta.clone()).await.unwrap();
            assert_eq!(q.assign("v0", &nodes, None).await.unwrap(), b);
            q.remove("v0").await.unwrap();
            assert!(meta.get("qassign/v0").await.unwrap().is_none());
            assert!(q.assign("x", &[], None).await.is_err());
        });
    }
}
