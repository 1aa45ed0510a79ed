//! Crash-recovery property test of a shard's durable data path.
//!
//! Random sequences of insert / upsert / delete / flush run against a shard whose WAL
//! lives on the simulated disk. The power is cut at random points — in the middle of a
//! WAL append, a segment rotation, an fsync, a flush's WAL truncation — losing unsynced
//! bytes and tearing the last write. After every crash the shard is reopened from the
//! meta store, the flushed segments and the WAL tail, and its state must equal a model
//! of the acknowledged operations (plus, at most, the one operation that was in flight
//! when the power went, which the client never saw acknowledged).
//!
//! The same sequences run against a shard whose WAL is the object-storage log
//! ([`ObjectWal`]), on an object store that fails requests and loses the answers of
//! puts that took effect; there a "power cut" turns those faults on, and a crash drops
//! the process's log and shard and reopens both from the store.

use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::ObjectStore;
use proptest::prelude::*;
use quiver_core::batch::{Batch, ColumnData, FieldColumn, Pk};
use quiver_core::ids::{CollectionId, FieldId, PChannel, PartitionId, VChannel};
use quiver_core::meta::{MemMetaStore, MetaStore};
use quiver_core::objstore::{FaultConfig, FaultyStore};
use quiver_core::rt::disk::{Disk, SimDisk};
use quiver_core::schema::{CollectionSchema, DataType, FieldSchema};
use quiver_core::search::Metric;
use quiver_core::shard::{Shard, ShardConfig, ShardDeps, ShardError};
use quiver_core::tso::{Timestamp, TsoAllocator};
use quiver_core::wal::{
    Epoch, FsyncPolicy, LocalWal, LocalWalOptions, ObjectWal, ObjectWalOptions, Wal,
};

const DIM: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    Insert(Vec<i64>),
    Upsert(Vec<i64>),
    Delete(Vec<i64>),
    Flush,
    /// Cut the power during the n-th disk mutation from now.
    PowerCut(u64),
    /// Crash right now, between operations.
    Crash,
}

fn keys() -> impl Strategy<Value = Vec<i64>> {
    proptest::collection::btree_set(0i64..24, 1..5).prop_map(|s| s.into_iter().collect())
}

/// An insert's keys may repeat: each row is its own entity (Milvus's rule).
fn insert_keys() -> impl Strategy<Value = Vec<i64>> {
    proptest::collection::vec(0i64..24, 1..5)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => insert_keys().prop_map(Op::Insert),
        3 => keys().prop_map(Op::Upsert),
        3 => keys().prop_map(Op::Delete),
        2 => Just(Op::Flush),
        2 => (0u64..12).prop_map(Op::PowerCut),
        1 => Just(Op::Crash),
    ]
}

/// A row as the model sees it: (pk, tag, vector bits).
type Row = (i64, i32, Vec<u32>);

#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    rows: Vec<Row>,
}

impl Model {
    fn apply(&mut self, op: &Op, tag: i32) {
        match op {
            Op::Insert(ks) => self.rows.extend(ks.iter().map(|&k| row(k, tag))),
            Op::Upsert(ks) => {
                self.rows.retain(|r| !ks.contains(&r.0));
                self.rows.extend(ks.iter().map(|&k| row(k, tag)));
            }
            Op::Delete(ks) => self.rows.retain(|r| !ks.contains(&r.0)),
            _ => {}
        }
    }
    fn sorted(&self) -> Vec<Row> {
        let mut v = self.rows.clone();
        v.sort();
        v
    }
}

fn vector(k: i64, tag: i32) -> [f32; DIM] {
    [k as f32, tag as f32 * 0.5, 1.0, (k * tag as i64 % 7) as f32]
}

fn row(k: i64, tag: i32) -> Row {
    (k, tag, vector(k, tag).iter().map(|x| x.to_bits()).collect())
}

fn schema() -> Arc<CollectionSchema> {
    Arc::new(
        CollectionSchema::new(
            "crash",
            vec![
                FieldSchema::new("id", DataType::Int64).primary(false),
                FieldSchema::new("tag", DataType::Int32),
                FieldSchema::new("v", DataType::FloatVector { dim: DIM as u32 }),
            ],
            false,
        )
        .unwrap(),
    )
}

fn batch(ks: &[i64], tag: i32) -> Batch {
    Batch {
        num_rows: ks.len(),
        columns: vec![
            FieldColumn::new(FieldId(100), ColumnData::Int64(ks.to_vec())),
            FieldColumn::new(FieldId(101), ColumnData::Int32(vec![tag; ks.len()])),
            FieldColumn::new(
                FieldId(102),
                ColumnData::FloatVector {
                    dim: DIM as u32,
                    data: ks.iter().flat_map(|&k| vector(k, tag)).collect(),
                },
            ),
        ],
    }
}

fn rows_of(b: &Batch) -> Vec<Row> {
    let (ColumnData::Int64(ids), ColumnData::Int32(tags)) =
        (&b.columns[0].data, &b.columns[1].data)
    else {
        panic!("unexpected columns")
    };
    let mut v: Vec<Row> = (0..b.num_rows)
        .map(|i| {
            let vec = b.columns[2].data.vector(i).unwrap();
            (ids[i], tags[i], vec.iter().map(|x| x.to_bits()).collect())
        })
        .collect();
    v.sort();
    v
}

struct World {
    disk: SimDisk,
    meta: Arc<dyn MetaStore>,
    store: Arc<dyn ObjectStore>,
    tso: Arc<TsoAllocator>,
    epoch: u64,
    wal_opts: LocalWalOptions,
}

impl World {
    async fn open_shard(&self, wal: Arc<dyn Wal>) -> Result<Shard, String> {
        let cfg = ShardConfig {
            collection: CollectionId(1),
            vchannel: VChannel::new(&PChannel::numbered("q", 0), CollectionId(1), 0),
            schema: schema(),
            seal_rows: 7,
            first_segment_id: 1,
        };
        let deps = ShardDeps {
            wal,
            epoch: Epoch(self.epoch),
            meta: self.meta.clone(),
            store: self.store.clone(),
            tso: self.tso.clone(),
            forwarder: None,
            ticks: None,
        };
        Shard::open(cfg, deps).await.map_err(|e| e.to_string())
    }

    /// Opens the shard, retrying while the power is still out mid-recovery.
    async fn open(&mut self) -> Shard {
        loop {
            self.epoch += 1;
            let disk: Arc<dyn Disk> = Arc::new(self.disk.clone());
            let opened = match LocalWal::open(disk, "/data/wal/p0", self.wal_opts.clone()) {
                Ok(wal) => self.open_shard(Arc::new(wal)).await,
                Err(e) => Err(e.to_string()),
            };
            match opened {
                Ok(s) => return s,
                Err(e) => {
                    assert!(
                        self.disk.is_powered_off(),
                        "recovery failed without a power cut: {e}"
                    );
                    self.disk.crash();
                }
            }
        }
    }
}

async fn check(shard: &Shard, model: &Model) -> Result<(), TestCaseError> {
    let got = rows_of(&shard.query_all(Timestamp::MAX).await);
    prop_assert_eq!(&got, &model.sorted());
    // With exact search, results equal brute force over the model.
    let q = vec![vec![3.0f32, 1.0, 1.0, 2.0]];
    let hits = shard
        .search(FieldId(102), &q, 5, Metric::L2, Timestamp::MAX)
        .await;
    let mut want: Vec<(f32, i64)> = model
        .rows
        .iter()
        .map(|r| {
            let v: Vec<f32> = r.2.iter().map(|b| f32::from_bits(*b)).collect();
            (Metric::L2.score(&q[0], &v), r.0)
        })
        .collect();
    want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut seen = std::collections::HashSet::new();
    want.retain(|x| seen.insert(x.1));
    want.truncate(5);
    let got: Vec<(f32, i64)> = hits[0]
        .iter()
        .map(|h| {
            (
                h.score,
                match h.pk {
                    Pk::Int(k) => k,
                    _ => unreachable!(),
                },
            )
        })
        .collect();
    prop_assert_eq!(got, want);
    Ok(())
}

/// Runs a write, flush or delete on the shard (the faults are the caller's).
async fn write(shard: &Shard, op: &Op, tag: i32) -> Result<(), ShardError> {
    match op {
        Op::Insert(ks) => shard
            .insert(PartitionId(1), batch(ks, tag))
            .await
            .map(|_| ()),
        Op::Upsert(ks) => shard
            .upsert(PartitionId(1), batch(ks, tag))
            .await
            .map(|_| ()),
        Op::Delete(ks) => shard
            .delete(ks.iter().map(|&k| Pk::Int(k)).collect())
            .await
            .map(|_| ()),
        Op::Flush => shard.flush().await.map(|_| ()),
        Op::PowerCut(_) | Op::Crash => unreachable!("faults are run by the caller"),
    }
}

async fn run(ops: Vec<Op>, seed: u64) -> Result<(), TestCaseError> {
    let meta: Arc<dyn MetaStore> = Arc::new(MemMetaStore::new());
    let tso = Arc::new(TsoAllocator::open(meta.clone(), "tso").await.unwrap());
    let mut w = World {
        disk: SimDisk::new(seed),
        meta,
        store: Arc::new(InMemory::new()),
        tso,
        epoch: 0,
        wal_opts: LocalWalOptions {
            segment_bytes: 512,
            fsync: FsyncPolicy::Always,
        },
    };
    let mut shard = w.open().await;
    let mut model = Model::default();
    for (i, op) in ops.iter().enumerate() {
        let tag = i as i32;
        let result = match op {
            Op::PowerCut(n) => {
                w.disk.power_cut_after(*n);
                continue;
            }
            Op::Crash => {
                drop(shard);
                w.disk.crash();
                shard = w.open().await;
                check(&shard, &model).await?;
                continue;
            }
            _ => write(&shard, op, tag).await,
        };
        match result {
            Ok(()) => model.apply(op, tag),
            Err(e) => {
                prop_assert!(
                    w.disk.is_powered_off(),
                    "op {op:?} failed without a fault: {e}"
                );
                drop(shard);
                w.disk.crash();
                shard = w.open().await;
                // The failed op was never acknowledged: it may or may not have landed.
                let mut with = model.clone();
                with.apply(op, tag);
                let got = rows_of(&shard.query_all(Timestamp::MAX).await);
                if got == with.sorted() {
                    model = with;
                }
                check(&shard, &model).await?;
            }
        }
        if !w.disk.is_powered_off() {
            check(&shard, &model).await?;
        }
    }
    drop(shard);
    w.disk.crash();
    let shard = w.open().await;
    check(&shard, &model).await
}

/// The object-storage variant of [`World`]: the WAL and the segments share one faulty
/// store; a "power cut" is a window of failed requests and lost put answers.
struct ObjectWorld {
    world: World,
    faulty: FaultyStore,
    faults_on: bool,
}

impl ObjectWorld {
    fn faults(&mut self, on: u64) {
        self.faults_on = on > 0;
        let p = on as f64 * 0.08;
        self.faulty.set_config(FaultConfig {
            error_probability: p,
            lost_ack_probability: p,
            ..FaultConfig::default()
        });
    }

    /// A new process: a fresh log object and shard over the same store. Recovery
    /// under faults may fail; then the faults end and it runs again.
    async fn open(&mut self) -> Shard {
        loop {
            self.world.epoch += 1;
            let opts = ObjectWalOptions::default();
            let opened = match ObjectWal::open(self.world.store.clone(), "wal/v".into(), opts).await
            {
                Ok(wal) => self.world.open_shard(Arc::new(wal)).await,
                Err(e) => Err(e.to_string()),
            };
            match opened {
                Ok(s) => return s,
                Err(e) => {
                    assert!(self.faults_on, "recovery failed without faults: {e}");
                    self.faults(0);
                }
            }
        }
    }
}

async fn run_object(ops: Vec<Op>, seed: u64) -> Result<(), TestCaseError> {
    let meta: Arc<dyn MetaStore> = Arc::new(MemMetaStore::new());
    let tso = Arc::new(TsoAllocator::open(meta.clone(), "tso").await.unwrap());
    let faulty = FaultyStore::new(Arc::new(InMemory::new()), seed);
    let world = World {
        disk: SimDisk::new(seed),
        meta,
        store: Arc::new(faulty.clone()),
        tso,
        epoch: 0,
        wal_opts: LocalWalOptions::default(),
    };
    let mut w = ObjectWorld {
        world,
        faulty,
        faults_on: false,
    };
    let mut shard = w.open().await;
    let mut model = Model::default();
    for (i, op) in ops.iter().enumerate() {
        let tag = i as i32;
        let result = match op {
            Op::PowerCut(n) => {
                w.faults(n % 5);
                continue;
            }
            Op::Crash => Ok(()),
            _ => write(&shard, op, tag).await,
        };
        if let Err(e) = &result {
            prop_assert!(w.faults_on, "op {op:?} failed without a fault: {e}");
        }
        if result.is_err() || matches!(op, Op::Crash) {
            drop(shard);
            w.faults(0);
            shard = w.open().await;
            if result.is_err() {
                // Not acknowledged: it may or may not have landed.
                let mut with = model.clone();
                with.apply(op, tag);
                if rows_of(&shard.query_all(Timestamp::MAX).await) == with.sorted() {
                    model = with;
                }
            }
            check(&shard, &model).await?;
            continue;
        }
        model.apply(op, tag);
        check(&shard, &model).await?;
    }
    drop(shard);
    w.faults(0);
    let shard = w.open().await;
    check(&shard, &model).await
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn object_wal_recovered_state_equals_the_acknowledged_operations(
        ops in proptest::collection::vec(op(), 1..60),
        seed in any::<u64>(),
    ) {
        quiver_core::rt::block_on(run_object(ops, seed))?;
    }

    #[test]
    fn recovered_state_equals_the_acknowledged_operations(
        ops in proptest::collection::vec(op(), 1..60),
        seed in any::<u64>(),
    ) {
        quiver_core::rt::block_on(run(ops, seed))?;
    }
}
