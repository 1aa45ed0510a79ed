//! A shard's search paced through the compute lanes answers exactly what the unpaced
//! search answers, and stops with "deadline exceeded" when its deadline passes.

use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use quiver_core::batch::{Batch, ColumnData, FieldColumn};
use quiver_core::ids::{CollectionId, FieldId, PChannel, PartitionId, VChannel};
use quiver_core::meta::{MemMetaStore, MetaStore};
use quiver_core::rt::{self, Deadline, LaneError, Lanes};
use quiver_core::schema::{CollectionSchema, DataType, FieldSchema};
use quiver_core::search::Metric;
use quiver_core::shard::{ReadScope, Shard, ShardConfig, ShardDeps};
use quiver_core::tso::TsoAllocator;
use quiver_core::wal::{Epoch, MemWal};

const DIM: usize = 16;

fn schema() -> Arc<CollectionSchema> {
    Arc::new(
        CollectionSchema::new(
            "paced",
            vec![
                FieldSchema::new("id", DataType::Int64).primary(false),
                FieldSchema::new("v", DataType::FloatVector { dim: DIM as u32 }),
            ],
            false,
        )
        .unwrap(),
    )
}

fn vector(i: usize) -> Vec<f32> {
    (0..DIM)
        .map(|d| ((i * 31 + d * 7) % 97) as f32 / 97.0)
        .collect()
}

async fn shard_with(rows: usize) -> Shard {
    let meta: Arc<dyn MetaStore> = Arc::new(MemMetaStore::new());
    let tso = Arc::new(TsoAllocator::open(meta.clone(), "tso").await.unwrap());
    let cfg = ShardConfig {
        collection: CollectionId(1),
        vchannel: VChannel::new(&PChannel::numbered("p", 0), CollectionId(1), 0),
        schema: schema(),
        seal_rows: 1000,
        first_segment_id: 1,
    };
    let deps = ShardDeps {
        wal: Arc::new(MemWal::new()),
        epoch: Epoch(1),
        meta,
        store: Arc::new(InMemory::new()),
        tso,
        forwarder: None,
        ticks: None,
    };
    let shard = Shard::open(cfg, deps).await.unwrap();
    let ids: Vec<i64> = (0..rows as i64).collect();
    let batch = Batch {
        num_rows: rows,
        columns: vec![
            FieldColumn::new(FieldId(100), ColumnData::Int64(ids)),
            FieldColumn::new(
                FieldId(101),
                ColumnData::FloatVector {
                    dim: DIM as u32,
                    data: (0..rows).flat_map(vector).collect(),
                },
            ),
        ],
    };
    shard.insert(PartitionId(0), batch).await.unwrap();
    shard
}

#[tokio::test]
async fn paced_search_answers_what_the_plain_one_does() {
    let shard = shard_with(3000).await;
    let queries: Vec<Vec<f32>> = (0..300).map(|i| vector(i * 13 + 5)).collect();
    let ts = shard.tsafe().await;
    let scope = ReadScope::at(ts);
    let plain = shard
        .search_split(FieldId(101), &queries, 7, Metric::L2, scope)
        .await
        .0;
    // One lane and a deadline far off: many chunks (300 queries over 3000 rows of 16
    // floats is more than one chunk's work), same answer.
    let lanes = Lanes::new(1, 4);
    let ticket = lanes
        .admit(Deadline::after(Duration::from_secs(60)))
        .unwrap();
    let paced = shard
        .search_split_paced(FieldId(101), &queries, 7, Metric::L2, scope, &ticket)
        .await
        .unwrap()
        .0;
    assert_eq!(paced.len(), plain.len());
    for (p, q) in paced.iter().zip(&plain) {
        let ids = |hs: &Vec<quiver_core::search::Hit>| {
            hs.iter().map(|h| h.pk.clone()).collect::<Vec<_>>()
        };
        assert_eq!(ids(p), ids(q));
    }
}

#[tokio::test]
async fn an_expired_deadline_stops_the_search() {
    let shard = shard_with(200).await;
    let queries: Vec<Vec<f32>> = (0..4).map(vector).collect();
    let ts = shard.tsafe().await;
    let lanes = Lanes::new(1, 4);
    let ticket = lanes
        .admit(Deadline::after(Duration::from_millis(5)))
        .unwrap();
    rt::sleep(Duration::from_millis(20)).await;
    let r = shard
        .search_split_paced(
            FieldId(101),
            &queries,
            3,
            Metric::L2,
            ReadScope::at(ts),
            &ticket,
        )
        .await;
    assert_eq!(r.unwrap_err(), LaneError::DeadlineExceeded);
}
