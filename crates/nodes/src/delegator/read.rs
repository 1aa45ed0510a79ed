//! Delegated reads: one generic split read. A read runs over the shard's local
//! segments (growing, and sealed ones not handed off) and names the handed-off
//! segments in scope — both under one lock, so no segment is in neither part — then
//! asks the query node for those and merges. If the query node fails, the delegator
//! takes its segments back and answers everything here.

use std::time::Duration;

use quiver_core::ids::SegmentId;
use quiver_core::rt;
use quiver_core::shard::Shard;

use super::ShardDelegator;
use crate::error::{code, ApiError, ApiResult};
use crate::rpc::{QueryNodeApi, ShardRef};

/// A read a delegator splits between its own segments and the query node's.
#[async_trait::async_trait]
pub trait SplitRead: Sync {
    type Out: Send;
    /// What the operation is called, for logs.
    const NAME: &'static str;
    /// The local part, with the handed-off segments in scope and whether each is
    /// stale (its query node failed).
    async fn local(&self, shard: &Shard) -> ApiResult<(Self::Out, Vec<(SegmentId, bool)>)>;
    /// The query node's part over the named segments, sent as read `read_id` (in its
    /// scope) so the delegator can ask after it.
    async fn remote(
        &self,
        qn: &dyn QueryNodeApi,
        segments: Vec<SegmentId>,
        read_id: u64,
    ) -> ApiResult<Self::Out>;
    /// Both parts as one answer.
    fn merge(&self, local: Self::Out, remote: Self::Out) -> Self::Out;
}

/// Which handed-off segments a read takes back before it trusts its local part.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TakeBack {
    /// Only stale ones (their query node failed): healthy ones are asked remotely.
    Stale,
    /// All of them: the query node just failed this read.
    All,
}

/// Runs the local part until no segment it names needs taking back, taking back what
/// does; returns the local answer with the remaining (healthy) remote segments.
/// Running it again after each take-back is what keeps a segment from being in
/// neither part: one taken back, or handed off by a concurrent tick, between two
/// attempts is seen by the next.
async fn settled<R: SplitRead>(
    shard: &Shard,
    take_back: TakeBack,
    read: &R,
) -> ApiResult<(R::Out, Vec<SegmentId>)> {
    for _ in 0..5 {
        let (out, remote) = read.local(shard).await?;
        let back: Vec<SegmentId> = remote
            .iter()
            .filter(|(_, stale)| *stale || take_back == TakeBack::All)
            .map(|(id, _)| *id)
            .collect();
        if back.is_empty() {
            return Ok((out, remote.into_iter().map(|(id, _)| id).collect()));
        }
        shard.reclaim(&back).await?;
    }
    Err(ApiError::new(
        code::UNAVAILABLE,
        format!(
            "{}: handed-off segments keep changing under the read; retry it",
            shard.config().vchannel
        ),
    ))
}

/// How long a query node's part of a read may run before the delegator asks whether
/// the node is still there, and how long that question may take.
#[derive(Clone, Copy)]
struct Liveness {
    period: Duration,
    ping_timeout: Duration,
}

const LIVENESS: Liveness = Liveness {
    period: Duration::from_secs(10),
    ping_timeout: Duration::from_secs(3),
};

/// The query node's part of `read`, waited for as long as the read's deadline allows
/// (the call itself ends there), provided the node says, when asked every liveness
/// period, that it is still working on it: a slow node is busy, not gone, and its work
/// is not taken back; a node that stops answering, or no longer knows the read (lost
/// on the way, or with a restart), is.
async fn remote_while_alive<R: SplitRead>(
    read: &R,
    qn: &dyn QueryNodeApi,
    (at, read_id): (ShardRef, u64),
    segments: Vec<SegmentId>,
    live: Liveness,
) -> ApiResult<R::Out> {
    let call = read.remote(qn, segments, read_id);
    futures::pin_mut!(call);
    loop {
        if let Ok(answer) = rt::timeout(live.period, &mut call).await {
            return answer;
        }
        match rt::timeout(live.ping_timeout, qn.reading(at, read_id)).await {
            Ok(Ok(true)) => continue,
            Ok(Ok(false)) => {
                return Err(ApiError::unavailable(
                    "the query node is not running this read (lost on the way, or with a restart)",
                    false,
                ))
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(ApiError::unavailable(
                    format!(
                        "query node stopped answering for {:?} during a read",
                        live.ping_timeout
                    ),
                    false,
                ))
            }
        }
    }
}

impl ShardDelegator<'_> {
    /// Runs a split read: local part, query node part, merged. A failing query node
    /// is marked suspect and its segments are taken back and read here.
    pub async fn read<R: SplitRead>(&self, read: &R) -> ApiResult<R::Out> {
        let (local, remote) = settled(&self.shard, TakeBack::Stale, read).await?;
        if remote.is_empty() {
            return Ok(local);
        }
        let answer = match self.target() {
            Some(qn) => {
                let id = (self.at, self.d.next_read_id());
                remote_while_alive(read, qn.as_ref(), id, remote.clone(), LIVENESS).await
            }
            None => Err(ApiError::new(
                code::UNAVAILABLE,
                "no query node serves this shard's handed-off segments",
            )),
        };
        match answer {
            Ok(far) => Ok(read.merge(local, far)),
            // The time ran out, the query node did not fail: nothing to take back,
            // and no time left to read its segments here.
            Err(e) if e.is_deadline() => Err(e),
            Err(e) => {
                self.suspect();
                tracing::warn!(op = R::NAME, error = %e, "query node read failed; serving its segments here");
                self.shard.reclaim(&remote).await?;
                Ok(settled(&self.shard, TakeBack::All, read).await?.0)
            }
        }
    }
}

#[cfg(test)]
mod tests;
