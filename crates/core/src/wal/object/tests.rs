use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use proptest::prelude::*;

use super::*;
use crate::objstore::{FaultConfig, FaultyStore};
use crate::wal::FrameError;

fn prefix() -> Path {
    Path::from("wal/log-1")
}

async fn open(store: &Arc<dyn ObjectStore>) -> ObjectWal {
    ObjectWal::open(store.clone(), prefix(), ObjectWalOptions::default())
        .await
        .unwrap()
}

async fn objects(store: &dyn ObjectStore) -> Vec<String> {
    let mut out: Vec<String> = store
        .list(Some(&prefix()))
        .map(|m| m.unwrap().location.to_string())
        .collect()
        .await;
    out.sort();
    out
}

fn mem() -> Arc<dyn ObjectStore> {
    Arc::new(InMemory::new())
}

#[tokio::test]
async fn meets_the_wal_contract() {
    let store = mem();
    crate::wal::contract::check(&open(&store).await).await;
}

/// Sixty-four appends in flight together become a handful of blocks, and every one
/// gets its own offset.
#[tokio::test]
async fn concurrent_appends_share_blocks() {
    let faulty = FaultyStore::new(mem(), 1);
    faulty.set_config(FaultConfig {
        base_latency: Duration::from_millis(5),
        ..FaultConfig::default()
    });
    let store: Arc<dyn ObjectStore> = Arc::new(faulty);
    let wal = open(&store).await;
    wal.fence(Epoch(1)).await.unwrap();
    let appends = (0..64u8).map(|i| {
        let wal = wal.clone();
        async move { wal.append(Epoch(1), Bytes::from(vec![i])).await.unwrap() }
    });
    let mut offsets = futures::future::join_all(appends).await;
    offsets.sort_unstable();
    assert_eq!(offsets, (0..64).collect::<Vec<u64>>());
    let blocks = objects(store.as_ref()).await.len();
    assert!(blocks <= 8, "64 appends took {blocks} objects");
    let read = wal.read_from(0, 100).await.unwrap();
    assert_eq!(read.len(), 64);
}

/// A new owner's fence stops the old one at its next put, and the new owner reads
/// every record the old one had acknowledged.
#[tokio::test]
async fn a_fence_stops_the_old_owner_and_keeps_its_records() {
    let store = mem();
    let old = open(&store).await;
    for i in 0..5u8 {
        old.append(Epoch(1), Bytes::from(vec![i])).await.unwrap();
    }
    let new = open(&store).await;
    new.fence(Epoch(2)).await.unwrap();
    assert_eq!(new.read_from(0, 100).await.unwrap().len(), 5);
    let err = old.append(Epoch(1), Bytes::from_static(b"late")).await;
    assert!(
        matches!(
            err,
            Err(WalError::Fenced {
                attempted: 1,
                current: 2
            })
        ),
        "{err:?}"
    );
    // The old owner's probe (a Strong read's tick) fails too.
    assert!(matches!(
        old.fence(Epoch(1)).await,
        Err(WalError::Fenced { .. })
    ));
    assert_eq!(
        new.append(Epoch(2), Bytes::from_static(b"n"))
            .await
            .unwrap(),
        5
    );
    // A third process sees one log: five old records, one new.
    let third = open(&store).await;
    let all = third.read_from(0, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.epoch.0).collect::<Vec<_>>(),
        [1, 1, 1, 1, 1, 2]
    );
}

/// A holder's probe sees nothing new while it holds the log.
#[tokio::test]
async fn a_probe_by_the_holder_is_one_lookup() {
    let store = mem();
    let wal = open(&store).await;
    wal.fence(Epoch(3)).await.unwrap();
    wal.append(Epoch(3), Bytes::from_static(b"x"))
        .await
        .unwrap();
    let before = objects(store.as_ref()).await;
    wal.fence(Epoch(3)).await.unwrap();
    assert_eq!(
        objects(store.as_ref()).await,
        before,
        "a probe writes nothing"
    );
}

/// A put that took effect but reported failure is read back and counts as written.
#[tokio::test]
async fn a_put_whose_acknowledgement_was_lost_is_read_back() {
    let faulty = FaultyStore::new(mem(), 7);
    let store: Arc<dyn ObjectStore> = Arc::new(faulty.clone());
    let wal = open(&store).await;
    wal.fence(Epoch(1)).await.unwrap();
    faulty.set_config(FaultConfig {
        lost_ack_probability: 1.0,
        ..FaultConfig::default()
    });
    for i in 0..4u64 {
        assert_eq!(
            wal.append(Epoch(1), Bytes::from(vec![i as u8]))
                .await
                .unwrap(),
            i
        );
    }
    assert_eq!(faulty.stats().lost_acks_injected, 4);
    faulty.set_config(FaultConfig::default());
    assert_eq!(open(&store).await.read_from(0, 10).await.unwrap().len(), 4);
}

/// Truncation deletes whole blocks below the checkpoint, never the last one, and the
/// log still says where it ends after reopening.
#[tokio::test]
async fn truncation_keeps_the_tail_and_the_end() {
    let store = mem();
    let wal = open(&store).await;
    for i in 0..10u8 {
        wal.append(Epoch(1), Bytes::from(vec![i])).await.unwrap();
    }
    assert_eq!(
        objects(store.as_ref()).await.len(),
        11,
        "a fence and ten blocks"
    );
    wal.truncate_before(7).await.unwrap();
    assert_eq!(wal.first_offset().await, 7);
    assert_eq!(
        objects(store.as_ref()).await.len(),
        4,
        "the fence and records 7..10"
    );
    wal.truncate_before(100).await.unwrap();
    assert_eq!(
        objects(store.as_ref()).await.len(),
        2,
        "the fence and the last block stay"
    );
    let again = open(&store).await;
    assert_eq!(again.next_offset().await, 10);
    assert_eq!(again.epoch().await, Epoch(1));
    assert!(matches!(
        again.read_from(3, 1).await,
        Err(WalError::Truncated { .. })
    ));
    assert_eq!(
        again
            .append(Epoch(2), Bytes::from_static(b"y"))
            .await
            .unwrap(),
        10
    );
}

/// The case the property test below found: a writer fenced out, whose next block
/// number the new owner's truncation would have freed, must still be stopped there.
#[tokio::test]
async fn a_stale_writer_cannot_write_into_a_truncated_log() {
    let store = mem();
    let (old, new) = (open(&store).await, open(&store).await);
    old.append(Epoch(2), Bytes::from_static(b"a"))
        .await
        .unwrap();
    new.fence(Epoch(3)).await.unwrap();
    new.append(Epoch(3), Bytes::from_static(b"b"))
        .await
        .unwrap();
    new.truncate_before(1).await.unwrap();
    let err = old.append(Epoch(2), Bytes::from_static(b"lost")).await;
    assert!(matches!(err, Err(WalError::Fenced { .. })), "{err:?}");
    let all = open(&store).await.read_from(1, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.payload.clone()).collect::<Vec<_>>(),
        [Bytes::from_static(b"b")]
    );
}

/// A reader whose listing is older than the owner's truncation still reads what is
/// left from where it asks: blocks gone under it mean "list again", not damage.
#[tokio::test]
async fn a_stale_reader_rereads_after_the_owner_truncates() {
    let store = mem();
    let owner = open(&store).await;
    for i in 0..10u8 {
        owner.append(Epoch(1), Bytes::from(vec![i])).await.unwrap();
    }
    let reader = open(&store).await;
    owner.truncate_before(8).await.unwrap();
    let rs = reader.read_from(8, 10).await.unwrap();
    assert_eq!(rs.iter().map(|r| r.offset).collect::<Vec<_>>(), [8, 9]);
    assert!(matches!(
        reader.read_from(3, 1).await,
        Err(WalError::Truncated { first: 8, .. })
    ));
}

/// Records come from blocks (not the tail buffer) after a reopen, from the middle of a
/// block too.
#[tokio::test]
async fn reads_from_the_middle_of_the_log_after_reopening() {
    let store = mem();
    let wal = open(&store).await;
    let batch = (0..30u8).map(|i| {
        let wal = wal.clone();
        async move { wal.append(Epoch(1), Bytes::from(vec![i; 3])).await.unwrap() }
    });
    futures::future::join_all(batch).await;
    for i in 30..40u8 {
        wal.append(Epoch(1), Bytes::from(vec![i; 3])).await.unwrap();
    }
    let again = open(&store).await;
    for from in [0u64, 1, 17, 29, 30, 39] {
        let rs = again.read_from(from, 5).await.unwrap();
        let want: Vec<u64> = (from..(from + 5).min(40)).collect();
        assert_eq!(
            rs.iter().map(|r| r.offset).collect::<Vec<_>>(),
            want,
            "from {from}"
        );
        assert!(rs.iter().all(|r| r.payload[0] as u64 == r.offset));
    }
}

/// A block missing between two present ones, a damaged block and a stray object are
/// damage with the object named, never skipped.
#[tokio::test]
async fn damage_is_refused_with_the_object_named() {
    let store = mem();
    let wal = open(&store).await;
    for i in 0..4u8 {
        wal.append(Epoch(1), Bytes::from(vec![i])).await.unwrap();
    }
    let names = objects(store.as_ref()).await;
    // A flipped byte in block 2 (records 1) is found when it is read.
    let victim = Path::from(names[2].as_str());
    let mut bytes = store
        .get(&victim)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    store.put(&victim, PutPayload::from(bytes)).await.unwrap();
    let err = open(&store).await.read_from(0, 10).await.unwrap_err();
    assert!(
        err.is_damage() && err.to_string().contains(victim.as_ref()),
        "{err}"
    );
    // Removing it leaves a hole: the log now starts after it, and a read from before
    // the hole is refused as truncated (a shard that still owns the log turns that into
    // damage: its checkpoint is below the start).
    store.delete(&victim).await.unwrap();
    let again = open(&store).await;
    assert_eq!(again.first_offset().await, 2);
    let err = again.read_from(0, 10).await.unwrap_err();
    assert!(
        matches!(
            err,
            WalError::Truncated {
                requested: 0,
                first: 2
            }
        ),
        "{err}"
    );
    // A read past the end of the log (its tail lost) is damage, not an empty read.
    let err = again.read_from(9, 10).await.unwrap_err();
    assert!(
        matches!(
            &err,
            WalError::Corrupt {
                source: FrameError::Missing { needed: 9, .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        again.read_from(4, 10).await.unwrap().is_empty(),
        "the end itself reads empty"
    );
    // A stray object in the log's folder.
    let store = mem();
    store
        .put(&prefix().join("junk"), PutPayload::from_static(b"x"))
        .await
        .unwrap();
    let err = ObjectWal::open(store.clone(), prefix(), ObjectWalOptions::default())
        .await
        .unwrap_err();
    assert!(err.is_damage(), "{err}");
}

/// Removal deletes every object and is idempotent.
#[tokio::test]
async fn removal_is_complete_and_idempotent() {
    let store = mem();
    let wal = open(&store).await;
    wal.append(Epoch(1), Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(
        list_logs(store.as_ref(), &Path::from("wal")).await.unwrap(),
        ["log-1"]
    );
    remove_log(store.as_ref(), &prefix()).await.unwrap();
    assert!(objects(store.as_ref()).await.is_empty());
    remove_log(store.as_ref(), &prefix()).await.unwrap();
}

/// One step of the property test below.
#[derive(Debug, Clone)]
enum Step {
    Append {
        writer: usize,
        n: usize,
    },
    Fence {
        writer: usize,
    },
    Faults {
        error: f64,
        lost_ack: f64,
    },
    Truncate {
        at: u64,
    },
    Reopen {
        writer: usize,
    },
    /// Appends under the writer's epoch while the same log object is fenced with a
    /// newer one (two incarnations of a shard in one process).
    AppendWhileFencing {
        writer: usize,
        n: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..2usize, 1..8usize).prop_map(|(writer, n)| Step::Append { writer, n }),
        1 => (0..2usize).prop_map(|writer| Step::Fence { writer }),
        1 => (0.0..0.5f64, 0.0..0.5f64).prop_map(|(error, lost_ack)| Step::Faults { error, lost_ack }),
        1 => (0..64u64).prop_map(|at| Step::Truncate { at }),
        1 => (0..2usize).prop_map(|writer| Step::Reopen { writer }),
        1 => (0..2usize, 1..6usize).prop_map(|(writer, n)| Step::AppendWhileFencing { writer, n }),
    ]
}

/// What the property test below did and saw.
struct Race {
    faulty: FaultyStore,
    store: Arc<dyn ObjectStore>,
    writers: [ObjectWal; 2],
    epochs: [Epoch; 2],
    next_epoch: u64,
    acked: BTreeMap<u64, (Epoch, Bytes)>,
    attempted: Vec<Bytes>,
}

impl Race {
    async fn append(&mut self, k: usize, writer: usize, n: usize) {
        let (w, epoch) = (self.writers[writer].clone(), self.epochs[writer]);
        let appends = (0..n).map(|i| {
            let p = Bytes::from(format!("{k}/{i}"));
            self.attempted.push(p.clone());
            let w = w.clone();
            async move { (p.clone(), w.append(epoch, p).await) }
        });
        for (p, r) in futures::future::join_all(appends).await {
            if let Ok(off) = r {
                assert!(
                    self.acked.insert(off, (epoch, p)).is_none(),
                    "offset {off} acknowledged twice"
                );
            }
        }
    }

    async fn step(&mut self, k: usize, s: Step) {
        match s {
            Step::Append { writer, n } => self.append(k, writer, n).await,
            Step::Fence { writer } => {
                self.epochs[writer] = Epoch(self.next_epoch);
                self.next_epoch += 1;
                let _ = self.writers[writer].fence(self.epochs[writer]).await;
            }
            Step::Faults { error, lost_ack } => self.faulty.set_config(FaultConfig {
                error_probability: error,
                lost_ack_probability: lost_ack,
                ..FaultConfig::default()
            }),
            Step::Truncate { at } => {
                let at = at.min(self.acked.keys().next_back().map_or(0, |o| o + 1));
                let _ = self.writers[0].truncate_before(at).await;
            }
            Step::AppendWhileFencing { writer, n } => {
                let (w, newer) = (self.writers[writer].clone(), Epoch(self.next_epoch));
                self.next_epoch += 1;
                let fence = async move {
                    let _ = w.fence(newer).await;
                };
                futures::future::join(self.append(k, writer, n), fence).await;
                self.epochs[writer] = newer;
            }
            Step::Reopen { writer } => {
                let opts = ObjectWalOptions::default();
                if let Ok(w) = ObjectWal::open(self.store.clone(), prefix(), opts).await {
                    self.writers[writer] = w;
                }
            }
        }
    }

    /// Reads the whole log back without faults and checks it.
    async fn verify(&self) {
        self.faulty.set_config(FaultConfig::default());
        let reader = open(&self.store).await;
        let first = reader.first_offset().await;
        let all = reader.read_from(first, usize::MAX).await.unwrap();
        for (i, r) in all.iter().enumerate() {
            assert_eq!(r.offset, first + i as u64, "records are dense");
            assert!(
                self.attempted.contains(&r.payload),
                "record {} was never appended",
                r.offset
            );
            if i > 0 {
                assert!(
                    all[i - 1].epoch <= r.epoch,
                    "epochs go back at {}",
                    r.offset
                );
            }
        }
        for (off, (epoch, p)) in self.acked.range(first..) {
            let r = &all[(off - first) as usize];
            assert_eq!(
                (&r.epoch, &r.payload),
                (epoch, p),
                "acknowledged record {off} changed"
            );
        }
        assert_eq!(reader.next_offset().await, first + all.len() as u64);
    }
}

/// Two writers that take the log from each other while puts fail (before and after
/// taking effect), under truncation and reopening: at the end, every acknowledged
/// record is in the log at its offset with its payload and epoch, records are dense
/// and in epoch order, and nothing appears that was never appended.
async fn run(seed: u64, steps: Vec<Step>) {
    let faulty = FaultyStore::new(mem(), seed);
    let store: Arc<dyn ObjectStore> = Arc::new(faulty.clone());
    let writers = [open(&store).await, open(&store).await];
    let mut race = Race {
        faulty,
        store,
        writers,
        epochs: [Epoch(1), Epoch(2)],
        next_epoch: 3,
        acked: BTreeMap::new(),
        attempted: Vec::new(),
    };
    for (k, s) in steps.into_iter().enumerate() {
        race.step(k, s).await;
    }
    race.verify().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn nothing_acknowledged_is_lost_under_races_and_faults(seed: u64, steps in proptest::collection::vec(step(), 1..40)) {
        crate::rt::block_on(run(seed, steps));
    }
}
