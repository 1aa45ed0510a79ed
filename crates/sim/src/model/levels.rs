//! What each consistency level promises a read: which keys its answer must agree with
//! the model on, and as of when.
//! * Strong: every key, as of the read's invocation.
//! * Session: the reading client's own keys, as of its invocation (other clients'
//!   writes may be missed).
//! * Bounded: every key, as of the invocation minus the staleness bound and its slack;
//!   a read invoked before that much time has passed is judged on no key.
//! * Eventually: no key.
//!
//! Every level keeps the phantom and duplicate rules ([`super::reads`]).

use std::collections::BTreeMap;

use super::history::{Key, Level, Nanos, OpRecord};
use super::index::{Index, KeyHistory};
use super::window::Window;
use super::CheckConfig;

/// A key a read is judged on, with its history.
pub(super) type Judged<'i, 'a> = (Key, &'i KeyHistory<'a>);

/// The key lists the levels judge on, in key order: all keys, and each client's own.
pub(super) struct Scopes<'i, 'a> {
    all: Vec<Judged<'i, 'a>>,
    own: BTreeMap<u32, Vec<Judged<'i, 'a>>>,
}

impl<'i, 'a> Scopes<'i, 'a> {
    pub(super) fn new(index: &'i Index<'a>) -> Self {
        let all = index.by_key.iter().map(|(k, h)| (*k, h)).collect();
        let mut own = BTreeMap::new();
        for (&client, keys) in &index.by_client {
            let hists = keys.iter().filter_map(|k| Some((*k, index.by_key.get(k)?)));
            own.insert(client, hists.collect());
        }
        Scopes { all, own }
    }

    /// The keys `read` at `level` must agree on, and the window (narrowed from the
    /// read's own, `win`) they must agree as of.
    pub(super) fn judged(
        &self,
        read: &OpRecord,
        level: Level,
        win: Window,
        cfg: &CheckConfig,
    ) -> (&[Judged<'i, 'a>], Window) {
        match level {
            Level::Strong => (&self.all, win),
            Level::Session => (self.own.get(&read.client).map_or(&[], Vec::as_slice), win),
            Level::Bounded => match bounded_as_of(read, cfg) {
                Some(from) => (&self.all, win.as_of(from)),
                None => (&[], win),
            },
            Level::Eventually => (&[], win),
        }
    }
}

/// Bounded staleness: the moment a Bounded read must be at least as fresh as (its
/// invocation minus the bound and the slack), or none if the run is younger than that.
fn bounded_as_of(read: &OpRecord, cfg: &CheckConfig) -> Option<Nanos> {
    let lag = cfg.staleness.saturating_add(cfg.slack);
    read.invoked_at.checked_sub(lag)
}
