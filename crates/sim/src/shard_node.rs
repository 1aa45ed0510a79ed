//! A streaming-node-shaped harness: one shard on its own simulated node, its WAL on a
//! simulated disk that outlives the node, its meta store and object store outside it
//! (like etcd and S3). A workload inside the node writes keys and records every
//! operation in a shared [`History`]; the scenario kills and restarts the node, cuts
//! the disk's power mid-write, and finally checks the history against what a fresh
//! recovery of the shard shows.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::memory::InMemory;
use object_store::ObjectStore;
use quiver_core::batch::{Batch, ColumnData, FieldColumn, Pk};
use quiver_core::ids::{CollectionId, FieldId, PChannel, PartitionId, VChannel};
use quiver_core::meta::{MemMetaStore, MetaStore};
use quiver_core::objstore::{FaultConfig, FaultyStore};
use quiver_core::rt::{self, disk::Disk, disk::SimDisk, Rng};
use quiver_core::schema::{CollectionSchema, DataType, FieldSchema};
use quiver_core::shard::{Shard, ShardConfig, ShardDeps, ShardError};
use quiver_core::tso::{Timestamp, TsoAllocator};
use quiver_core::wal::{Epoch, LocalWal, LocalWalOptions, WalError};

use crate::history::{History, OpKind, Outcome};
use crate::trace::TraceHash;

const DIM: u32 = 8;

/// Everything that survives the node: disk, meta store, object store, history.
#[derive(Clone)]
pub struct ShardWorld {
    pub disk: SimDisk,
    pub meta: Arc<dyn MetaStore>,
    pub store: FaultyStore,
    pub history: Arc<Mutex<History>>,
    pub trace: Arc<Mutex<TraceHash>>,
    epoch: Arc<AtomicU64>,
    next_key: Arc<AtomicU64>,
}

fn schema() -> Arc<CollectionSchema> {
    Arc::new(
        CollectionSchema::new(
            "sim",
            vec![
                FieldSchema::new("id", DataType::Int64).primary(false),
                FieldSchema::new("v", DataType::FloatVector { dim: DIM }),
            ],
            false,
        )
        .expect("valid schema"),
    )
}

fn batch(keys: &[i64]) -> Batch {
    Batch {
        num_rows: keys.len(),
        columns: vec![
            FieldColumn::new(FieldId(100), ColumnData::Int64(keys.to_vec())),
            FieldColumn::new(
                FieldId(101),
                ColumnData::FloatVector {
                    dim: DIM,
                    data: keys
                        .iter()
                        .flat_map(|&k| (0..DIM).map(move |i| ((k * 31 + i as i64) % 97) as f32))
                        .collect(),
                },
            ),
        ],
    }
}

/// An error is "refused" only when the operation certainly did not reach the WAL.
fn outcome_of(e: &ShardError) -> Outcome {
    match e {
        ShardError::Invalid(_)
        | ShardError::Wal(WalError::Fenced { .. })
        | ShardError::Wal(WalError::Broken) => Outcome::Refused,
        _ => Outcome::Unknown,
    }
}

impl ShardWorld {
    pub fn new(seed: u64) -> Self {
        ShardWorld {
            disk: SimDisk::new(seed),
            meta: Arc::new(MemMetaStore::new()),
            store: FaultyStore::new(Arc::new(InMemory::new()), seed ^ 0x5eed),
            history: Arc::default(),
            trace: Arc::default(),
            epoch: Arc::default(),
            next_key: Arc::default(),
        }
    }

    pub fn record(&self, event: &impl std::fmt::Debug) {
        self.trace.lock().expect("trace lock").record(event);
    }

    /// Opens the shard as a new owner (a higher epoch) would.
    pub async fn open_shard(&self) -> Result<Shard, ShardError> {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let disk: Arc<dyn Disk> = Arc::new(self.disk.clone());
        let wal = LocalWal::open(
            disk,
            "/data/wal/p0",
            LocalWalOptions {
                segment_bytes: 4096,
                ..Default::default()
            },
        )?;
        let tso = TsoAllocator::open(self.meta.clone(), "tso").await?;
        let store: Arc<dyn ObjectStore> = Arc::new(self.store.clone());
        Shard::open(
            ShardConfig {
                collection: CollectionId(1),
                vchannel: VChannel::new(&PChannel::numbered("sim", 0), CollectionId(1), 0),
                schema: schema(),
                seal_rows: 64,
                first_segment_id: 1,
            },
            ShardDeps {
                wal: Arc::new(wal),
                epoch: Epoch(epoch),
                meta: self.meta.clone(),
                store,
                tso: Arc::new(tso),
                forwarder: None,
                ticks: None,
            },
        )
        .await
    }

    /// The node's main task: open the shard (retrying while the disk is out), then write
    /// until killed. After a failed operation it reopens, as a restarted process would.
    pub async fn run_writer(self) {
        let mut rng = Rng::from_entropy();
        loop {
            let shard = match self.open_shard().await {
                Ok(s) => s,
                Err(e) => {
                    self.record(&("open-failed", e.to_string()));
                    rt::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            self.record(&"opened");
            loop {
                rt::sleep(Duration::from_millis(rng.gen_range(1, 20))).await;
                let dice = rng.gen_range(0, 100);
                let (kind, result) = if dice < 65 {
                    let n = rng.gen_range(1, 6);
                    let first = self.next_key.fetch_add(n, Ordering::SeqCst) as i64;
                    let keys: Vec<i64> = (first..first + n as i64).collect();
                    let id = self
                        .history
                        .lock()
                        .expect("history")
                        .invoke(OpKind::Insert(keys.clone()));
                    (
                        id,
                        shard.insert(PartitionId(1), batch(&keys)).await.map(|_| ()),
                    )
                } else if dice < 90 {
                    let acked = self.history.lock().expect("history").acked_keys();
                    if acked.is_empty() {
                        continue;
                    }
                    let keys: Vec<i64> = (0..rng.gen_range(1, 4))
                        .map(|_| acked[rng.index(acked.len())])
                        .collect();
                    let id = self
                        .history
                        .lock()
                        .expect("history")
                        .invoke(OpKind::Delete(keys.clone()));
                    (
                        id,
                        shard
                            .delete(keys.into_iter().map(Pk::Int).collect())
                            .await
                            .map(|_| ()),
                    )
                } else {
                    let id = self.history.lock().expect("history").invoke(OpKind::Flush);
                    (id, shard.flush().await.map(|_| ()))
                };
                let outcome = match &result {
                    Ok(()) => Outcome::Acked,
                    Err(e) => outcome_of(e),
                };
                self.history
                    .lock()
                    .expect("history")
                    .complete(kind, outcome);
                self.record(&(kind, outcome, result.as_ref().err().map(|e| e.to_string())));
                if result.is_err() {
                    break;
                }
            }
        }
    }

    /// Opens the shard once more and returns the keys it shows.
    pub async fn visible_keys(&self) -> Result<BTreeSet<i64>, ShardError> {
        let shard = self.open_shard().await?;
        let b = shard.query_all(Timestamp::MAX).await;
        match &b.columns[0].data {
            ColumnData::Int64(v) => Ok(v.iter().copied().collect()),
            _ => unreachable!("the pk column is Int64"),
        }
    }

    /// Opens a brownout window on the object store.
    pub fn set_object_store_faults(&self, error_probability: f64) {
        self.store.set_config(FaultConfig {
            error_probability,
            spike_probability: error_probability / 2.0,
            spike: Duration::from_millis(200),
            base_latency: Duration::from_millis(1),
            lost_ack_probability: error_probability / 2.0,
        });
    }
}
