//! The distribution of a streaming node's shards: which query node each shard copy
//! hands its sealed segments to, as the coordinator assigned it (see
//! [`crate::querycoord`]).
//!
//! The invariant that keeps reads whole: a shard copy's handed-off segments are all on
//! its current target. So the target changes only in a handoff, and only while none of
//! the copy's segments is remote; a failing target is marked suspect (its segments are
//! taken back by the read or delete that found it failing), and the next handoff asks
//! the coordinator for another. Entries are per (vchannel, epoch): a reopened copy
//! recovers every segment locally and chooses afresh.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::rpc::QueryNodeApi;

/// A query node by id, and its client.
pub type QueryNodeLink = (String, Arc<dyn QueryNodeApi>);

pub struct QueryTargets {
    nodes: Vec<QueryNodeLink>,
    /// (vchannel, epoch) -> (query node id, suspect).
    chosen: Mutex<BTreeMap<(String, u64), (String, bool)>>,
}

impl QueryTargets {
    pub fn new(nodes: Vec<QueryNodeLink>) -> Self {
        QueryTargets {
            nodes,
            chosen: Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether segments can be handed off at all.
    pub fn any(&self) -> bool {
        !self.nodes.is_empty()
    }

    pub fn all(&self) -> &[QueryNodeLink] {
        &self.nodes
    }

    pub fn ids(&self) -> Vec<String> {
        self.nodes.iter().map(|(id, _)| id.clone()).collect()
    }

    pub fn node(&self, id: &str) -> Option<Arc<dyn QueryNodeApi>> {
        self.nodes
            .iter()
            .find(|(n, _)| n == id)
            .map(|(_, q)| q.clone())
    }

    fn chosen(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, u64), (String, bool)>> {
        self.chosen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current target of a shard copy; `None` before its first handoff (when none
    /// of its segments can be remote) or without query nodes.
    pub fn get(&self, vchannel: &str, epoch: u64) -> Option<Arc<dyn QueryNodeApi>> {
        let id = self.chosen().get(&(vchannel.to_string(), epoch))?.0.clone();
        self.node(&id)
    }

    /// The target and whether it is suspect.
    pub fn entry(&self, vchannel: &str, epoch: u64) -> Option<(String, bool)> {
        self.chosen().get(&(vchannel.to_string(), epoch)).cloned()
    }

    /// Chooses `id` for the copy; forgets older copies' choices.
    pub fn set(&self, vchannel: &str, epoch: u64, id: String) {
        let mut chosen = self.chosen();
        chosen.retain(|(v, e), _| v != vchannel || *e >= epoch);
        chosen.insert((vchannel.to_string(), epoch), (id, false));
    }

    /// A read, delete or load found the target failing.
    pub fn suspect(&self, vchannel: &str, epoch: u64) {
        self.mark(vchannel, epoch, true);
    }

    /// The target accepted a load.
    pub fn trust(&self, vchannel: &str, epoch: u64) {
        self.mark(vchannel, epoch, false);
    }

    fn mark(&self, vchannel: &str, epoch: u64, suspect: bool) {
        if let Some(e) = self.chosen().get_mut(&(vchannel.to_string(), epoch)) {
            e.1 = suspect;
        }
    }
}
