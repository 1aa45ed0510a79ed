//! Exact top-10 over 100k x 128 vectors in one sealed segment, as a query node would
//! run it with a FLAT index.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use quiver_core::batch::{Batch, ColumnData, FieldColumn};
use quiver_core::ids::{FieldId, PartitionId, SegmentId};
use quiver_core::schema::{CollectionSchema, DataType, FieldSchema};
use quiver_core::search::{search_segment, Metric, SearchRequest};
use quiver_core::segment::GrowingSegment;
use quiver_core::tso::Timestamp;

const N: usize = 100_000;
const DIM: usize = 128;

fn bench(c: &mut Criterion) {
    let schema = Arc::new(
        CollectionSchema::new(
            "bench",
            vec![
                FieldSchema::new("id", DataType::Int64).primary(false),
                FieldSchema::new("v", DataType::FloatVector { dim: DIM as u32 }),
            ],
            false,
        )
        .unwrap(),
    );
    let data = quiver_benches::clustered(N + 16, DIM, 7);
    let batch = Batch {
        num_rows: N,
        columns: vec![
            FieldColumn::new(FieldId(100), ColumnData::Int64((0..N as i64).collect())),
            FieldColumn::new(
                FieldId(101),
                ColumnData::FloatVector {
                    dim: DIM as u32,
                    data: data[..N * DIM].to_vec(),
                },
            ),
        ],
    };
    let mut g = GrowingSegment::new(SegmentId(1), PartitionId(1), schema);
    g.insert(&batch, Timestamp(1));
    let sealed = g.seal();
    let queries: Vec<Vec<f32>> = data[N * DIM..]
        .chunks_exact(DIM)
        .map(|q| q.to_vec())
        .collect();
    let mut group = c.benchmark_group("brute_force_top10_100k_x_128");
    group.sample_size(10);
    for metric in [Metric::L2, Metric::IP, Metric::Cosine] {
        let prepared: Vec<Vec<f32>> = queries[..1]
            .iter()
            .map(|q| metric.prepare_query(q))
            .collect();
        let req = SearchRequest {
            field: FieldId(101),
            queries: &prepared,
            k: 10,
            metric,
            read_ts: Timestamp::MAX,
            filter: None,
            range: Default::default(),
        };
        group.bench_function(metric.as_str(), |b| {
            b.iter(|| search_segment(&sealed, &req))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
