//! Which streaming node owns each pchannel, under which fencing epoch. A pchannel's
//! owner serves every vchannel (shard) mapped to it, from the pchannel's one log.
//!
//! The coordinator keeps the table in the meta store (`pchannel/assign/<pchannel>`)
//! and changes an entry only by compare-and-swap, always raising the epoch, so an
//! owner can never be handed a smaller epoch than one before it. A pchannel is
//! assigned on first use to the live streaming node with the fewest pchannels, and
//! moves when its owner's lease runs out (no heartbeat for [`LEASE`]) or when an
//! operator (or the simulator) moves it. A node that starts again takes new epochs for
//! everything it owns: its earlier incarnation is fenced even if it is somehow still
//! writing.
//!
//! The table decides ownership; the WAL enforces it. The new owner claims the log under
//! its epoch before serving, after which the old owner's appends are refused.
//!
//! Before pchannels the table was per vchannel (`assign/<vchannel>`); [`ChannelTable::migrate`]
//! folds such a table into this one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use quiver_core::meta::MetaStore;
use quiver_core::rt::{self, Instant};
use quiver_core::segment::format::{self, ObjectKind};
use serde::{Deserialize, Serialize};

use crate::error::{code, ApiError, ApiResult};

/// A streaming node not heard from for this long has lost its pchannels.
pub const LEASE: Duration = Duration::from_secs(5);
/// How often streaming nodes heartbeat.
pub const HEARTBEAT: Duration = Duration::from_millis(1000);

const PREFIX: &str = "pchannel/assign/";
/// Where the table was kept per vchannel, before pchannels.
const VCHANNEL_PREFIX: &str = "assign/";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelAssignment {
    pub pchannel: String,
    /// The owner's node id (its address, in a cluster).
    pub node: String,
    pub epoch: u64,
}

pub struct ChannelTable {
    meta: Arc<dyn MetaStore>,
    /// Last heartbeat per node, as this coordinator saw it.
    seen: tokio::sync::Mutex<BTreeMap<String, Instant>>,
    /// A coordinator that just took office has heard from nobody: every node gets a
    /// lease from this moment.
    started: Instant,
    /// One change at a time (the CAS protects the store; this keeps choices sane).
    change: tokio::sync::Mutex<()>,
}

fn key(pchannel: &str) -> String {
    format!("{PREFIX}{pchannel}")
}

impl ChannelTable {
    pub fn new(meta: Arc<dyn MetaStore>) -> Self {
        ChannelTable {
            meta,
            seen: Default::default(),
            started: rt::now(),
            change: Default::default(),
        }
    }

    async fn read(
        &self,
        pchannel: &str,
    ) -> ApiResult<(Option<Vec<u8>>, Option<ChannelAssignment>)> {
        let raw = self.meta.get(&key(pchannel)).await?;
        let a = match &raw {
            Some(b) => Some(decode(&key(pchannel), b)?),
            None => None,
        };
        Ok((raw, a))
    }

    /// Folds a table kept per vchannel (before pchannels) into this one: each
    /// pchannel goes to the owner of its vchannel with the highest epoch, under an
    /// epoch above every one its vchannels had (their logs and manifests carry those),
    /// and the old entries are deleted. Does nothing once done.
    pub async fn migrate(meta: &dyn MetaStore) -> ApiResult<()> {
        let old = meta.range(VCHANNEL_PREFIX).await?;
        let mut best: BTreeMap<String, ChannelAssignment> = BTreeMap::new();
        for (k, v) in &old {
            let a = decode(k, v)?;
            let p = quiver_core::ids::VChannel(a.pchannel.clone()).pchannel().0;
            if best.get(&p).is_none_or(|b| b.epoch < a.epoch) {
                best.insert(p.clone(), ChannelAssignment { pchannel: p, ..a });
            }
        }
        for (p, a) in best {
            let raw = meta.get(&key(&p)).await?;
            let cur = raw.as_deref().map(|b| decode(&key(&p), b)).transpose()?;
            if cur.as_ref().is_some_and(|c| c.epoch > a.epoch) {
                continue;
            }
            let next = ChannelAssignment {
                epoch: a.epoch + 1,
                ..a
            };
            let new = format::encode(ObjectKind::ChannelAssignment, &next);
            meta.compare_and_swap(&key(&p), raw.as_deref(), Some(new))
                .await?;
            tracing::info!(pchannel = %p, node = %next.node, epoch = next.epoch, "assignment migrated from vchannels");
        }
        for (k, _) in old {
            meta.delete(&k).await?;
        }
        Ok(())
    }

    async fn write(&self, old: Option<&[u8]>, a: &ChannelAssignment) -> ApiResult<bool> {
        Ok(self
            .meta
            .compare_and_swap(
                &key(&a.pchannel),
                old,
                Some(format::encode(ObjectKind::ChannelAssignment, a)),
            )
            .await?)
    }

    pub async fn all(&self) -> ApiResult<Vec<ChannelAssignment>> {
        let mut out = Vec::new();
        for (k, v) in self.meta.range(PREFIX).await? {
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }

    async fn live_nodes(&self) -> Vec<String> {
        let now = rt::now();
        self.seen
            .lock()
            .await
            .iter()
            .filter(|(_, t)| now.duration_since(**t) < LEASE)
            .map(|(n, _)| n.clone())
            .collect()
    }

    async fn is_live(&self, node: &str) -> bool {
        let seen = self
            .seen
            .lock()
            .await
            .get(node)
            .copied()
            .unwrap_or(self.started);
        rt::now().duration_since(seen) < LEASE
    }

    /// A heartbeat. `fresh` marks a node's first heartbeat after it started: every
    /// pchannel it owns gets a new epoch. Returns what the node owns.
    pub async fn heartbeat(&self, node: &str, fresh: bool) -> ApiResult<Vec<ChannelAssignment>> {
        self.seen.lock().await.insert(node.to_string(), rt::now());
        let _g = self.change.lock().await;
        let mut mine = Vec::new();
        for a in self.all().await? {
            if a.node != node {
                continue;
            }
            if !fresh {
                mine.push(a);
                continue;
            }
            let (raw, cur) = self.read(&a.pchannel).await?;
            let Some(cur) = cur.filter(|c| c.node == node) else {
                continue;
            };
            let next = ChannelAssignment {
                epoch: cur.epoch + 1,
                ..cur
            };
            if self.write(raw.as_deref(), &next).await? {
                mine.push(next);
            }
        }
        Ok(mine)
    }

    /// The owner of `pchannel`, assigning (or reassigning, if the owner's lease ran
    /// out) when needed.
    pub async fn locate(&self, pchannel: &str) -> ApiResult<ChannelAssignment> {
        let (_, cur) = self.read(pchannel).await?;
        if let Some(a) = &cur {
            if self.is_live(&a.node).await {
                return Ok(a.clone());
            }
        }
        self.reassign(pchannel, None).await
    }

    /// Moves `pchannel` to another live node (`to`, or the least loaded), with a new
    /// epoch. With no other live node it stays where it is.
    pub async fn reassign(&self, pchannel: &str, to: Option<&str>) -> ApiResult<ChannelAssignment> {
        let _g = self.change.lock().await;
        let (raw, cur) = self.read(pchannel).await?;
        let live = self.live_nodes().await;
        let owner = cur.as_ref().map(|a| a.node.clone());
        let target = match to {
            Some(t) if live.iter().any(|n| n == t) => Some(t.to_string()),
            Some(t) => {
                return Err(ApiError::new(
                    code::UNAVAILABLE,
                    format!("streaming node {t} is not live"),
                ))
            }
            None => {
                let mut load: BTreeMap<String, usize> =
                    live.iter().map(|n| (n.clone(), 0)).collect();
                for a in self.all().await? {
                    if let Some(c) = load.get_mut(&a.node) {
                        *c += 1;
                    }
                }
                // Prefer another node when moving; ties go to the smallest id.
                load.into_iter()
                    .filter(|(n, _)| Some(n) != owner.as_ref() || live.len() == 1)
                    .min_by_key(|(n, c)| (*c, n.clone()))
                    .map(|(n, _)| n)
            }
        };
        let Some(node) = target else {
            return match cur {
                Some(a) => Ok(a),
                None => Err(ApiError::new(
                    code::UNAVAILABLE,
                    format!("no live streaming node to own {pchannel}"),
                )),
            };
        };
        let next = ChannelAssignment {
            pchannel: pchannel.to_string(),
            node,
            epoch: cur.as_ref().map_or(1, |a| a.epoch + 1),
        };
        if !self.write(raw.as_deref(), &next).await? {
            return Err(ApiError::new(
                code::UNAVAILABLE,
                format!("assignment of {pchannel} changed concurrently; retry"),
            ));
        }
        tracing::info!(pchannel, from = ?owner, to = %next.node, epoch = next.epoch, "pchannel assigned");
        Ok(next)
    }
}

fn decode(key: &str, bytes: &[u8]) -> ApiResult<ChannelAssignment> {
    format::decode::<ChannelAssignment>(ObjectKind::ChannelAssignment, bytes)
        .map_err(|e| ApiError::internal(format!("corrupt assignment {key}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_core::meta::MemMetaStore;

    #[test]
    fn assignment_moves_with_rising_epochs() {
        quiver_core::rt::block_on(async {
            let t = ChannelTable::new(Arc::new(MemMetaStore::new()));
            t.heartbeat("a", true).await.unwrap();
            t.heartbeat("b", true).await.unwrap();
            let v0 = t.locate("ch_v0").await.unwrap();
            let v1 = t.locate("ch_v1").await.unwrap();
            assert_ne!(v0.node, v1.node, "spread over the live nodes");
            assert_eq!((v0.epoch, v1.epoch), (1, 1));
            assert_eq!(t.locate("ch_v0").await.unwrap(), v0, "stable while live");
            let moved = t.reassign("ch_v0", None).await.unwrap();
            assert_ne!(moved.node, v0.node);
            assert_eq!(moved.epoch, 2);
            // A restart of the owner raises its epochs.
            let mine = t.heartbeat(&moved.node, true).await.unwrap();
            assert!(mine.iter().any(|a| a.pchannel == "ch_v0" && a.epoch == 3));
            assert!(t.reassign("ch_v0", Some("nobody")).await.is_err());
        });
    }

    /// A table kept per vchannel becomes one per pchannel, each under an epoch above
    /// every epoch its vchannels had, owned where the newest of them was.
    #[test]
    fn a_vchannel_table_migrates_to_pchannels() {
        quiver_core::rt::block_on(async {
            let meta = MemMetaStore::new();
            for (v, node, epoch) in [
                ("quiver-dml_0_5v0", "a", 3),
                ("quiver-dml_0_6v0", "b", 7),
                ("quiver-dml_1_5v1", "a", 2),
            ] {
                let a = ChannelAssignment {
                    pchannel: v.into(),
                    node: node.into(),
                    epoch,
                };
                meta.put(
                    &format!("{VCHANNEL_PREFIX}{v}"),
                    format::encode(ObjectKind::ChannelAssignment, &a),
                )
                .await
                .unwrap();
            }
            ChannelTable::migrate(&meta).await.unwrap();
            ChannelTable::migrate(&meta).await.unwrap();
            let t = ChannelTable::new(Arc::new(meta));
            let all = t.all().await.unwrap();
            let got: Vec<_> = all
                .iter()
                .map(|a| (a.pchannel.as_str(), a.node.as_str(), a.epoch))
                .collect();
            assert_eq!(got, [("quiver-dml_0", "b", 8), ("quiver-dml_1", "a", 3)]);
        });
    }
}
