//! Reads of a shard: what a read sees ([`ReadScope`]), the split read that offers the
//! local segments in scope and names the handed-off ones ([`Shard::read_split`]), and
//! the searches, queries, counts and fetches built on it.

use super::state::State;
use super::{Shard, ShardError};
use crate::batch::{Batch, Pk};
use crate::ids::{FieldId, PartitionId, SegmentId};
use crate::search::brute::RowFilter;
use crate::search::{reduce, search_segment, Hit, Metric, SearchRequest};
use crate::segment::SegmentView;
use crate::tso::Timestamp;

/// What a read sees: a timestamp, optionally some partitions, optionally a row filter.
#[derive(Clone, Copy)]
pub struct ReadScope<'a> {
    pub read_ts: Timestamp,
    pub partitions: Option<&'a [PartitionId]>,
    pub filter: Option<RowFilter<'a>>,
    /// Range-search bounds on scores (searches only).
    pub range: crate::search::ScoreRange,
}

impl<'a> ReadScope<'a> {
    pub fn at(read_ts: Timestamp) -> Self {
        ReadScope {
            read_ts,
            partitions: None,
            filter: None,
            range: crate::search::ScoreRange::default(),
        }
    }

    pub(super) fn admits_segment(&self, seg: &dyn SegmentView) -> bool {
        self.partitions
            .is_none_or(|ps| ps.contains(&seg.partition()))
    }

    fn admits_row(&self, seg: &dyn SegmentView, row: usize) -> bool {
        seg.is_visible(row, self.read_ts) && self.filter.is_none_or(|f| f(seg, row))
    }

    /// The rows of `seg` in scope (the segment itself must be admitted).
    fn rows<'s>(&'s self, seg: &'s dyn SegmentView) -> impl Iterator<Item = usize> + 's {
        (0..seg.num_rows()).filter(move |&i| self.admits_row(seg, i))
    }
}

/// Handed-off segments a split read did not cover, with whether each is stale (its
/// copy must not be read until the shard takes it back).
pub type RemoteInScope = Vec<(SegmentId, bool)>;

impl Shard {
    /// The one shape of every split read: under one lock, `read` gets the local
    /// segments in scope, and the handed-off segments in scope are returned beside
    /// its result — so a concurrent handoff can neither hide a segment from both
    /// halves nor show it in both.
    pub async fn read_split<T>(
        &self,
        scope: &ReadScope<'_>,
        read: impl FnOnce(&mut dyn Iterator<Item = &dyn SegmentView>) -> T,
    ) -> (T, RemoteInScope) {
        let st = self.state.read().await;
        let mut local = st.segments().filter(|s| scope.admits_segment(*s));
        let out = read(&mut local);
        (out, st.remote_in(scope.partitions))
    }

    /// Exact top-`k` over the local segments in scope, plus the handed-off segments
    /// in scope (see [`Shard::read_split`]).
    pub async fn search_split(
        &self,
        field: FieldId,
        queries: &[Vec<f32>],
        k: usize,
        metric: Metric,
        scope: ReadScope<'_>,
    ) -> (Vec<Vec<Hit>>, RemoteInScope) {
        let prepared: Vec<Vec<f32>> = queries.iter().map(|q| metric.prepare_query(q)).collect();
        let req = SearchRequest {
            field,
            queries: &prepared,
            k,
            metric,
            read_ts: scope.read_ts,
            filter: scope.filter,
            range: scope.range,
        };
        self.read_split(&scope, |segments| {
            let per_segment: Vec<Vec<Vec<Hit>>> =
                segments.map(|s| search_segment(s, &req)).collect();
            (0..queries.len())
                .map(|q| reduce(per_segment.iter().map(|r| r[q].clone()).collect(), k))
                .collect()
        })
        .await
    }

    /// The local rows in scope, sorted by primary key (ties by segment and row), at
    /// most `limit` of them; plus the handed-off segments in scope.
    pub async fn query_rows_split(
        &self,
        scope: ReadScope<'_>,
        limit: Option<usize>,
    ) -> (Vec<(Pk, SegmentId, u32)>, RemoteInScope) {
        self.read_split(&scope, |segments| {
            let mut rows = Vec::new();
            for seg in segments {
                rows.extend(
                    scope
                        .rows(seg)
                        .map(|i| (seg.pk(i).clone(), seg.id(), i as u32)),
                );
            }
            rows.sort();
            if let Some(l) = limit {
                rows.truncate(l);
            }
            rows
        })
        .await
    }

    /// How many local rows are in scope; plus the handed-off segments in scope.
    pub async fn count_split(&self, scope: ReadScope<'_>) -> (usize, RemoteInScope) {
        self.read_split(&scope, |segments| {
            segments.map(|seg| scope.rows(seg).count()).sum()
        })
        .await
    }

    /// Every row visible at `read_ts`, sorted by primary key.
    pub async fn query_all(&self, read_ts: Timestamp) -> Batch {
        let refs: Vec<(SegmentId, u32)> = self
            .query_rows(ReadScope::at(read_ts), None)
            .await
            .into_iter()
            .map(|(_, s, r)| (s, r))
            .collect();
        self.fetch(&refs).await
    }

    /// The local rows in scope, sorted by primary key (ties by segment and row), at
    /// most `limit` of them.
    pub async fn query_rows(
        &self,
        scope: ReadScope<'_>,
        limit: Option<usize>,
    ) -> Vec<(Pk, SegmentId, u32)> {
        self.query_rows_split(scope, limit).await.0
    }

    /// How many local rows are in scope.
    pub async fn count(&self, scope: ReadScope<'_>) -> usize {
        self.count_split(scope).await.0
    }

    /// Exact top-`k` over every local segment, as of `read_ts`.
    pub async fn search(
        &self,
        field: FieldId,
        queries: &[Vec<f32>],
        k: usize,
        metric: Metric,
        read_ts: Timestamp,
    ) -> Vec<Vec<Hit>> {
        self.search_scoped(field, queries, k, metric, ReadScope::at(read_ts))
            .await
    }

    /// Exact top-`k` over the local segments and rows in scope.
    pub async fn search_scoped(
        &self,
        field: FieldId,
        queries: &[Vec<f32>],
        k: usize,
        metric: Metric,
        scope: ReadScope<'_>,
    ) -> Vec<Vec<Hit>> {
        self.search_split(field, queries, k, metric, scope).await.0
    }

    /// The given rows (by segment and row number), in that order, all fields. Row
    /// references stay valid across a flush: sealing keeps a segment's id and rows.
    /// A reference to a segment that no longer exists is skipped.
    pub async fn fetch(&self, refs: &[(SegmentId, u32)]) -> Batch {
        let st = self.state.read().await;
        let mut out = Batch::empty(&self.cfg.schema);
        for &(sid, row) in refs {
            let Some(seg) = st.local_segment(sid) else {
                continue;
            };
            if row as usize >= seg.num_rows() {
                continue;
            }
            out.push_row(&seg.data().take(&[row as usize]), 0);
        }
        out
    }

    /// The rows at `refs` served here, in order, and the positions in `refs` of the
    /// rows whose segments were handed off — taken under one lock, so a concurrent
    /// handoff cannot make a row disappear between the two. A reference to a segment
    /// this shard does not know is an error, never a silently missing row.
    pub async fn fetch_split(
        &self,
        refs: &[(SegmentId, u32)],
    ) -> Result<(Batch, Vec<usize>), ShardError> {
        let st = self.state.read().await;
        let mut out = Batch::empty(&self.cfg.schema);
        let mut remote = Vec::new();
        for (pos, &(sid, row)) in refs.iter().enumerate() {
            let seg = match st.local_segment(sid) {
                Some(seg) => seg,
                None if st.remote.contains_key(&sid) => {
                    remote.push(pos);
                    continue;
                }
                None => return Err(ShardError::UnknownRow { segment: sid, row }),
            };
            if row as usize >= seg.num_rows() {
                return Err(ShardError::UnknownRow { segment: sid, row });
            }
            out.push_row(&seg.data().take(&[row as usize]), 0);
        }
        Ok((out, remote))
    }
}

impl State {
    /// Segment `id` if it is served here (sealed or growing).
    fn local_segment(&self, id: SegmentId) -> Option<&dyn SegmentView> {
        match (self.sealed.get(&id), self.growing.get(&id)) {
            (Some(s), _) => Some(s),
            (None, Some(g)) => Some(g),
            (None, None) => None,
        }
    }
}
