//! Exact search over one segment.

use super::distance::Metric;
use super::topk::{Hit, TopK};
use crate::ids::FieldId;
use crate::segment::SegmentView;
use crate::tso::Timestamp;

/// A row predicate: segment and row in, keep or drop out.
pub type RowFilter<'a> = &'a (dyn Fn(&dyn SegmentView, usize) -> bool + Sync);

/// Milvus's range search: with `radius` (and optionally `range_filter`) only scores
/// inside the range qualify — for L2 `range_filter <= score < radius`, for IP and
/// COSINE `radius < score <= range_filter`.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScoreRange {
    pub radius: Option<f32>,
    pub range_filter: Option<f32>,
}

impl ScoreRange {
    pub fn is_unbounded(&self) -> bool {
        self.radius.is_none() && self.range_filter.is_none()
    }

    #[inline]
    pub fn admits(&self, metric: Metric, score: f32) -> bool {
        if metric.higher_is_better() {
            self.radius.is_none_or(|r| score > r) && self.range_filter.is_none_or(|f| score <= f)
        } else {
            self.radius.is_none_or(|r| score < r) && self.range_filter.is_none_or(|f| score >= f)
        }
    }
}

/// One batch of queries against one vector field.
pub struct SearchRequest<'a> {
    pub field: FieldId,
    /// Prepared queries (see [`Metric::prepare_query`]).
    pub queries: &'a [Vec<f32>],
    pub k: usize,
    pub metric: Metric,
    pub read_ts: Timestamp,
    /// Extra row predicate (a compiled filter expression); `None` = all rows.
    pub filter: Option<RowFilter<'a>>,
    /// Range search bounds (unbounded for a plain top-k).
    pub range: ScoreRange,
}

/// The best `k` visible rows of `seg` for each query, best first.
pub fn search_segment(seg: &dyn SegmentView, req: &SearchRequest<'_>) -> Vec<Vec<Hit>> {
    let Some(col) = seg.data().column(req.field) else {
        return vec![Vec::new(); req.queries.len()];
    };
    let allowed: Vec<u32> = (0..seg.num_rows())
        .filter(|&i| seg.is_visible(i, req.read_ts) && req.filter.is_none_or(|f| f(seg, i)))
        .map(|i| i as u32)
        .collect();
    req.queries
        .iter()
        .map(|q| {
            let mut top = TopK::new(req.k);
            for &row in &allowed {
                let v = col.data.vector(row as usize).expect("vector column");
                let score = req.metric.score(q, v);
                let distance = req.metric.to_distance(score);
                if distance <= top.threshold() && req.range.admits(req.metric, score) {
                    top.push(Hit {
                        pk: seg.pk(row as usize).clone(),
                        score,
                        distance,
                        segment: seg.id(),
                        row,
                    });
                }
            }
            top.into_sorted()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::{batch, schema};
    use crate::batch::Pk;
    use crate::ids::{PartitionId, SegmentId};
    use crate::search::reduce;
    use crate::segment::GrowingSegment;
    use std::sync::Arc;

    #[test]
    fn score_ranges_follow_the_metric_direction() {
        let r = ScoreRange {
            radius: Some(10.0),
            range_filter: Some(2.0),
        };
        assert!(r.admits(Metric::L2, 2.0) && r.admits(Metric::L2, 9.9));
        assert!(!r.admits(Metric::L2, 10.0) && !r.admits(Metric::L2, 1.9));
        let r = ScoreRange {
            radius: Some(0.2),
            range_filter: Some(0.9),
        };
        assert!(
            r.admits(Metric::IP, 0.9)
                && !r.admits(Metric::IP, 0.2)
                && !r.admits(Metric::Cosine, 0.95)
        );
        assert!(ScoreRange::default().admits(Metric::L2, f32::MAX));
    }

    #[test]
    fn finds_nearest_skipping_deleted_and_invisible_rows() {
        let s = Arc::new(schema());
        let mut g = GrowingSegment::new(SegmentId(1), PartitionId(1), s.clone());
        g.insert(&batch(&[1, 2, 3, 4]), Timestamp(10));
        g.insert(&batch(&[5]), Timestamp(30));
        g.delete(&Pk::Int(2), Timestamp(20));
        let q = vec![vec![2.1f32, 1.0]];
        let req = SearchRequest {
            field: crate::ids::FieldId(102),
            queries: &q,
            k: 2,
            metric: Metric::L2,
            read_ts: Timestamp(25),
            filter: None,
            range: ScoreRange::default(),
        };
        let hits = search_segment(&g, &req);
        let pks: Vec<Pk> = hits[0].iter().map(|h| h.pk.clone()).collect();
        assert_eq!(pks, vec![Pk::Int(3), Pk::Int(1)]);
        assert!((hits[0][0].score - 0.81).abs() < 1e-4);

        // Split across a sealed and a growing segment: the reduce gives the same answer.
        let sealed = g.clone().seal();
        let mut g2 = GrowingSegment::new(SegmentId(2), PartitionId(1), s);
        g2.insert(&batch(&[6]), Timestamp(12));
        let both = reduce(
            vec![
                search_segment(&sealed, &req).remove(0),
                search_segment(&g2, &req).remove(0),
            ],
            2,
        );
        assert_eq!(
            both.iter().map(|h| h.pk.clone()).collect::<Vec<_>>(),
            vec![Pk::Int(3), Pk::Int(1)]
        );

        let filter = |seg: &dyn SegmentView, row: usize| *seg.pk(row) != Pk::Int(3);
        let req = SearchRequest {
            filter: Some(&filter),
            ..req
        };
        assert_eq!(search_segment(&g, &req)[0][0].pk, Pk::Int(1));
    }
}
