//! An index's progress on a real standalone instance: in progress from the moment it
//! is created until its segment is searched through it on the query node, finished
//! then; nothing to wait for with FLAT.

use std::time::Duration;

use quiver_core::batch::{Batch, ColumnData, FieldColumn};
use quiver_core::ids::FieldId;
use quiver_core::schema::{CollectionSchema, DataType, FieldSchema};
use quiver_core::search::Metric;
use quiver_core::wal::FsyncPolicy;

use crate::coordinator::{CatalogChange, CollectionInfo, IndexInfo, DEFAULT_DB};
use crate::rpc::{IndexProgress, ShardRef, StreamingApi};
use crate::standalone::{Standalone, StandaloneConfig};

const DIM: usize = 16;
const ROWS: usize = 3000;

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

async fn start(dir: &std::path::Path) -> Standalone {
    Standalone::start(&StandaloneConfig {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        auth_token: None,
        fsync: FsyncPolicy::Never,
        seal_rows: 100_000,
        idle_flush: Duration::from_secs(3600),
        wal: Default::default(),
        pchannels: 4,
        tick_interval: Duration::from_millis(200),
    })
    .await
    .unwrap()
}

fn rows() -> Batch {
    let ids: Vec<i64> = (0..ROWS as i64).collect();
    let data = (0..ROWS * DIM)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    Batch {
        num_rows: ROWS,
        columns: vec![
            FieldColumn::new(FieldId(100), ColumnData::Int64(ids)),
            FieldColumn::new(
                FieldId(101),
                ColumnData::FloatVector {
                    dim: DIM as u32,
                    data,
                },
            ),
        ],
    }
}

/// A collection of one shard with `ROWS` flushed rows, then an index of `index_type`
/// on it; the catalog entry with the index and where its shard is.
async fn indexed(s: &Standalone, name: &str, index_type: &str) -> (CollectionInfo, ShardRef) {
    let schema = CollectionSchema::new(
        name,
        vec![
            FieldSchema::new("id", DataType::Int64).primary(false),
            FieldSchema::new("v", DataType::FloatVector { dim: DIM as u32 }),
        ],
        false,
    )
    .unwrap();
    let info = s
        .coord
        .create(DEFAULT_DB, schema, 1, 0, vec![])
        .await
        .unwrap();
    let at = ShardRef {
        collection: info.id,
        shard: 0,
    };
    s.streaming.open(info.clone()).await.unwrap();
    let p = info.partitions[0].id;
    s.streaming.insert(at, p, rows(), false).await.unwrap();
    s.streaming.flush(at).await.unwrap();
    let index = IndexInfo {
        id: 77,
        name: "v".into(),
        field_name: "v".into(),
        index_type: index_type.into(),
        metric: Metric::L2,
        params: vec![
            ("M".into(), "16".into()),
            ("efConstruction".into(), "200".into()),
        ],
    };
    let info = s
        .coord
        .change(DEFAULT_DB, name, CatalogChange::AddIndex(index))
        .await
        .unwrap();
    s.streaming.open(info.clone()).await.unwrap();
    (info, at)
}

#[test]
fn an_index_is_in_progress_until_its_segment_is_served_with_it() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let s = start(dir.path()).await;
        let (_, at) = indexed(&s, "hnsw", "HNSW").await;
        // The build takes far longer than this call: it cannot be done yet.
        let first = s.streaming.index_state(at, 77).await.unwrap();
        assert_eq!(first.total_rows, ROWS as u64);
        assert_eq!(first.indexed_rows, 0, "{first:?}");
        assert_eq!(first.pending_segments, 1);
        assert!(!first.finished());
        let deadline = quiver_core::rt::now() + Duration::from_secs(120);
        let done = loop {
            let p = s.streaming.index_state(at, 77).await.unwrap();
            if p.finished() || quiver_core::rt::now() > deadline {
                break p;
            }
            quiver_core::rt::sleep(Duration::from_millis(100)).await;
        };
        let expect = IndexProgress {
            total_rows: ROWS as u64,
            indexed_rows: ROWS as u64,
            pending_segments: 0,
            failure: None,
        };
        assert_eq!(done, expect);
        // An index this copy has not heard of is not built here.
        assert_eq!(
            s.streaming
                .index_state(at, 78)
                .await
                .unwrap()
                .pending_segments,
            1
        );
    });
}

#[test]
fn a_flat_index_has_nothing_to_wait_for() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let s = start(dir.path()).await;
        let (_, at) = indexed(&s, "flat", "FLAT").await;
        let p = s.streaming.index_state(at, 77).await.unwrap();
        assert!(p.finished(), "{p:?}");
        assert_eq!(p.indexed_rows, ROWS as u64);
    });
}
