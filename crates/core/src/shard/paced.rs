//! A shard's search paced through the compute lanes ([`crate::rt::Lanes`]): the
//! queries are cut into chunks of about [`crate::rt::lanes::CHUNK_WORK`] each, and
//! every chunk waits its turn for a lane, so a search with a large `nq` over many rows
//! neither holds a lane (and the searches of other collections queued behind it) for
//! its whole length nor runs on after its deadline. The segments are borrowed under
//! the shard's read lock, so the chunks run in place, on a thread taken out of the
//! async workers for the chunk's length ([`crate::rt::Ticket::in_place`]).

use super::read::{ReadScope, RemoteInScope};
use super::Shard;
use crate::ids::FieldId;
use crate::rt::lanes::{chunk_len, LaneError, Ticket};
use crate::search::{reduce, search_segment, Hit, Metric, SearchRequest};
use crate::segment::SegmentView;

impl Shard {
    /// [`Shard::search_split`], chunk by chunk in `ticket`'s lanes; fails when the
    /// ticket's deadline passes between two chunks.
    pub async fn search_split_paced(
        &self,
        field: FieldId,
        queries: &[Vec<f32>],
        k: usize,
        metric: Metric,
        scope: ReadScope<'_>,
        ticket: &Ticket<'_>,
    ) -> Result<(Vec<Vec<Hit>>, RemoteInScope), LaneError> {
        let prepared: Vec<Vec<f32>> = queries.iter().map(|q| metric.prepare_query(q)).collect();
        let st = self.state.read().await;
        let segments: Vec<&dyn SegmentView> =
            st.segments().filter(|s| scope.admits_segment(*s)).collect();
        let rows: usize = segments.iter().map(|s| s.num_rows()).sum();
        let dim = prepared.first().map_or(1, Vec::len);
        let per_chunk = chunk_len(prepared.len(), rows.saturating_mul(dim));
        let mut out = Vec::with_capacity(prepared.len());
        for chunk in prepared.chunks(per_chunk) {
            let req = SearchRequest {
                field,
                queries: chunk,
                k,
                metric,
                read_ts: scope.read_ts,
                filter: scope.filter,
                range: scope.range,
            };
            let part = ticket
                .in_place(|| {
                    let per_segment: Vec<Vec<Vec<Hit>>> =
                        segments.iter().map(|s| search_segment(*s, &req)).collect();
                    (0..chunk.len())
                        .map(|q| reduce(per_segment.iter().map(|r| r[q].clone()).collect(), k))
                        .collect::<Vec<_>>()
                })
                .await?;
            out.extend(part);
        }
        crate::invariant!(
            out.len() == queries.len(),
            "a paced search of {} queries answered {}",
            queries.len(),
            out.len()
        );
        Ok((out, st.remote_in(scope.partitions)))
    }
}
