//! A shard whose WAL does not cover its flush checkpoint — a deleted WAL file — is
//! refused as damage when it opens (issue 18, item 8 follow-up). It used to open with
//! the rows after the checkpoint silently gone, and its next write panicked on the
//! invariant that the WAL and the applied state agree. The legitimate states near it —
//! a log truncated right up to the checkpoint, a fresh log, a relaxed fsync policy
//! after a power loss — must still open.

use std::path::Path;
use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::ObjectStore;
use quiver_core::batch::{Batch, ColumnData, FieldColumn};
use quiver_core::ids::{CollectionId, FieldId, PChannel, PartitionId, VChannel};
use quiver_core::meta::{MemMetaStore, MetaStore};
use quiver_core::rt::disk::{Disk, SimDisk};
use quiver_core::schema::{CollectionSchema, DataType, FieldSchema};
use quiver_core::shard::{Shard, ShardConfig, ShardDeps, ShardError};
use quiver_core::tso::{Timestamp, TsoAllocator};
use quiver_core::wal::{Epoch, FsyncPolicy, LocalWal, LocalWalOptions};

const DIR: &str = "/data/wal/p0";

fn schema() -> Arc<CollectionSchema> {
    Arc::new(
        CollectionSchema::new(
            "gap",
            vec![
                FieldSchema::new("id", DataType::Int64).primary(false),
                FieldSchema::new("v", DataType::FloatVector { dim: 2 }),
            ],
            false,
        )
        .unwrap(),
    )
}

fn batch(from: i64, n: i64) -> Batch {
    let ks: Vec<i64> = (from..from + n).collect();
    Batch {
        num_rows: ks.len(),
        columns: vec![
            FieldColumn::new(FieldId(100), ColumnData::Int64(ks.clone())),
            FieldColumn::new(
                FieldId(101),
                ColumnData::FloatVector {
                    dim: 2,
                    data: ks.iter().flat_map(|&k| [k as f32, 1.0]).collect(),
                },
            ),
        ],
    }
}

struct World {
    disk: SimDisk,
    meta: Arc<dyn MetaStore>,
    store: Arc<dyn ObjectStore>,
    tso: Arc<TsoAllocator>,
    epoch: u64,
    opts: LocalWalOptions,
}

impl World {
    async fn new(fsync: FsyncPolicy) -> World {
        let meta: Arc<dyn MetaStore> = Arc::new(MemMetaStore::new());
        let tso = Arc::new(TsoAllocator::open(meta.clone(), "tso").await.unwrap());
        World {
            disk: SimDisk::new(7),
            meta,
            store: Arc::new(InMemory::new()),
            tso,
            epoch: 0,
            opts: LocalWalOptions {
                segment_bytes: 4096,
                fsync,
            },
        }
    }

    async fn open(&mut self) -> Result<Shard, ShardError> {
        self.epoch += 1;
        let disk: Arc<dyn Disk> = Arc::new(self.disk.clone());
        let wal = LocalWal::open(disk, DIR, self.opts.clone())?;
        let cfg = ShardConfig {
            collection: CollectionId(1),
            vchannel: VChannel::new(&PChannel::numbered("q", 0), CollectionId(1), 0),
            schema: schema(),
            seal_rows: 1000,
            first_segment_id: 1,
        };
        let deps = ShardDeps {
            wal: Arc::new(wal),
            epoch: Epoch(self.epoch),
            meta: self.meta.clone(),
            store: self.store.clone(),
            tso: self.tso.clone(),
            forwarder: None,
            ticks: None,
        };
        Shard::open(cfg, deps).await
    }

    /// The WAL's segment files, oldest first.
    fn wal_files(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .disk
            .list(Path::new(DIR))
            .unwrap()
            .into_iter()
            .filter(|n| n.ends_with(".wal"))
            .collect();
        names.sort();
        names
    }

    fn remove(&self, name: &str) {
        self.disk.remove(&Path::new(DIR).join(name)).unwrap();
    }
}

async fn rows(shard: &Shard) -> usize {
    shard.query_all(Timestamp::MAX).await.num_rows
}

/// Two batches of 20, a flush, three more batches: checkpoint 2, log end 5.
async fn flushed_then_more(w: &mut World) -> Shard {
    let shard = w.open().await.unwrap();
    for b in 0..5 {
        shard
            .insert(PartitionId(1), batch(b * 20, 20))
            .await
            .unwrap();
        if b == 1 {
            assert_eq!(shard.flush().await.unwrap().checkpoint, 2);
        }
    }
    shard
}

fn assert_missing(e: &ShardError, needed: u64) {
    assert!(e.is_damage(), "{e}");
    let text = e.to_string();
    assert!(text.contains(DIR), "{text}");
    assert!(
        text.contains(&format!("replay must start at record {needed}")),
        "{text}"
    );
    assert!(text.contains("a WAL file is missing"), "{text}");
}

#[tokio::test]
async fn a_deleted_only_wal_file_after_a_flush_is_damage_not_silent_loss() {
    let mut w = World::new(FsyncPolicy::Always).await;
    drop(flushed_then_more(&mut w).await);
    let files = w.wal_files();
    assert_eq!(files.len(), 1, "{files:?}");
    w.remove(&files[0]);
    let e = w.open().await.unwrap_err();
    assert_missing(&e, 2);
}

#[tokio::test]
async fn a_deleted_wal_directory_after_a_flush_is_damage() {
    let mut w = World::new(FsyncPolicy::Always).await;
    drop(flushed_then_more(&mut w).await);
    for name in w.disk.list(Path::new(DIR)).unwrap() {
        w.remove(&name);
    }
    let e = w.open().await.unwrap_err();
    assert_missing(&e, 2);
}

#[tokio::test]
async fn a_deleted_head_file_after_the_checkpoint_is_damage() {
    let mut w = World::new(FsyncPolicy::Always).await;
    w.opts.segment_bytes = 600; // a file per batch or so
    drop(flushed_then_more(&mut w).await);
    let files = w.wal_files();
    assert!(files.len() >= 2, "{files:?}");
    // The flush dropped the files wholly before the checkpoint: the first file left
    // holds record 2, the checkpoint.
    w.remove(&files[0]);
    let e = w.open().await.unwrap_err();
    assert_missing(&e, 2);
}

#[tokio::test]
async fn a_log_truncated_up_to_the_checkpoint_reopens_and_takes_writes() {
    let mut w = World::new(FsyncPolicy::Always).await;
    w.opts.segment_bytes = 600;
    let shard = flushed_then_more(&mut w).await;
    // Flush everything: the log may now drop every record but the active file.
    assert_eq!(shard.flush().await.unwrap().checkpoint, 5);
    drop(shard);
    for reopened in 0..2 {
        let shard = w.open().await.unwrap();
        assert_eq!(rows(&shard).await, 100 + reopened);
        let ack = shard
            .insert(PartitionId(1), batch(1000 + reopened as i64, 1))
            .await
            .unwrap();
        assert!(ack.offset >= 5, "{ack:?}");
        shard.flush().await.unwrap();
    }
    // A fresh log with no checkpoint opens too.
    let mut fresh = World::new(FsyncPolicy::Always).await;
    let shard = fresh.open().await.unwrap();
    shard.insert(PartitionId(1), batch(0, 3)).await.unwrap();
    assert_eq!(rows(&shard).await, 3);
}

#[tokio::test]
async fn a_relaxed_fsync_policy_never_leaves_a_checkpoint_past_the_log_end() {
    // Unsynced appends are lost on power loss; a flush syncs the log before it commits
    // its checkpoint, so the log still reaches the checkpoint afterwards.
    let mut w = World::new(FsyncPolicy::Never).await;
    let shard = flushed_then_more(&mut w).await;
    shard.flush().await.unwrap();
    drop(shard);
    w.disk.crash();
    let shard = w.open().await.unwrap();
    assert_eq!(rows(&shard).await, 100);
    shard.insert(PartitionId(1), batch(1000, 1)).await.unwrap();
}
