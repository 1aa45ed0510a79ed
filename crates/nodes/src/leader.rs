//! The coordinator's seat: one active coordinator at a time, standbys waiting.
//!
//! The holder renews a record in the meta store by compare-and-swap every
//! [`RENEW`]; it serves only while its last renewal is younger than [`TERM`]. A standby
//! that sees the record unchanged for [`TAKEOVER_AFTER`] (longer than a term) takes the
//! seat by compare-and-swap and only then loads the catalog and opens the TSO. The old
//! holder has stopped serving by then, so two coordinators never answer at once, and
//! the TSO's reserved window (also in the meta store) keeps timestamps rising across
//! the change.

use std::sync::Arc;
use std::time::Duration;

use quiver_core::meta::MetaStore;
use quiver_core::rt::{self, Instant};
use quiver_core::segment::format::{self, ObjectKind};
use quiver_core::tso::TsoAllocator;
use serde::{Deserialize, Serialize};

use crate::coordinator::Coordinator;
use crate::error::{code, ApiError, ApiResult};

pub const RENEW: Duration = Duration::from_millis(500);
pub const TERM: Duration = Duration::from_secs(2);
pub const TAKEOVER_AFTER: Duration = Duration::from_secs(3);
const SEAT_KEY: &str = "coordinator/seat";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SeatRecord {
    holder: String,
    beat: u64,
}

#[derive(Default)]
struct State {
    coord: Option<Arc<Coordinator>>,
    term_ends: Option<Instant>,
    /// The record as last seen while someone else held it, and since when.
    observed: Option<(Option<Vec<u8>>, Instant)>,
}

pub struct CoordinatorSeat {
    id: String,
    meta: Arc<dyn MetaStore>,
    /// The number of pchannels for a new cluster (see [`Coordinator::open`]).
    pchannels: u32,
    state: tokio::sync::Mutex<State>,
}

impl CoordinatorSeat {
    pub fn new(id: impl Into<String>, meta: Arc<dyn MetaStore>, pchannels: u32) -> Arc<Self> {
        Arc::new(CoordinatorSeat {
            id: id.into(),
            meta,
            pchannels,
            state: Default::default(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The coordinator, if this seat holds office right now.
    pub async fn current(&self) -> ApiResult<Arc<Coordinator>> {
        let st = self.state.lock().await;
        match (&st.coord, st.term_ends) {
            (Some(c), Some(end)) if rt::now() < end => Ok(c.clone()),
            _ => Err(ApiError::new(
                code::NOT_LEADER,
                format!("coordinator {} is not the active coordinator", self.id),
            )),
        }
    }

    /// One round of the election; returns whether this seat holds office.
    pub async fn campaign(&self) -> ApiResult<bool> {
        let started = rt::now();
        let raw = self.meta.get(SEAT_KEY).await?;
        let cur = match &raw {
            Some(b) => Some(
                format::decode::<SeatRecord>(ObjectKind::LeaderSeat, b)
                    .map_err(|e| ApiError::internal(format!("corrupt coordinator seat: {e}")))?,
            ),
            None => None,
        };
        let mut st = self.state.lock().await;
        let mine = cur.as_ref().is_some_and(|c| c.holder == self.id);
        if !mine {
            if st.coord.take().is_some() {
                tracing::warn!(id = %self.id, "lost the coordinator seat");
            }
            st.term_ends = None;
            if cur.is_some() {
                let changed = st.observed.as_ref().is_none_or(|(r, _)| *r != raw);
                if changed {
                    st.observed = Some((raw, started));
                    return Ok(false);
                }
                let since = st.observed.as_ref().map_or(started, |(_, t)| *t);
                if started.duration_since(since) < TAKEOVER_AFTER {
                    return Ok(false);
                }
            }
        }
        let next = SeatRecord {
            holder: self.id.clone(),
            beat: cur.as_ref().map_or(0, |c| c.beat + 1),
        };
        let won = self
            .meta
            .compare_and_swap(
                SEAT_KEY,
                raw.as_deref(),
                Some(format::encode(ObjectKind::LeaderSeat, &next)),
            )
            .await?;
        if !won {
            st.coord = None;
            st.term_ends = None;
            st.observed = None;
            return Ok(false);
        }
        if st.coord.is_none() {
            // Taking office: a fresh TSO (it resumes above its reserved window) and
            // the catalog as the meta store has it.
            let tso = Arc::new(TsoAllocator::open(self.meta.clone(), "tso").await?);
            let coord = Coordinator::open(self.meta.clone(), tso, self.pchannels).await?;
            tracing::info!(id = %self.id, beat = next.beat, "took the coordinator seat");
            st.coord = Some(Arc::new(coord));
        }
        st.term_ends = Some(started + TERM);
        st.observed = None;
        Ok(true)
    }

    /// Campaigns until this seat holds office; returns the coordinator.
    pub async fn wait_for_office(&self) -> ApiResult<Arc<Coordinator>> {
        loop {
            match self.campaign().await {
                Ok(true) => return self.current().await,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "coordinator election round failed"),
            }
            rt::sleep(RENEW).await;
        }
    }

    /// Campaigns every [`RENEW`] for as long as the seat exists.
    pub fn spawn(self: &Arc<Self>) -> rt::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        rt::spawn(async move {
            loop {
                let Some(seat) = weak.upgrade() else { return };
                if let Err(e) = seat.campaign().await {
                    tracing::warn!(error = %e, "coordinator election round failed");
                }
                drop(seat);
                rt::sleep(RENEW).await;
            }
        })
    }
}
