//! A standalone instance on a real data directory: one damaged file (a flipped WAL
//! byte, a missing segment object) takes down only its collection; `inspect` finds it
//! and `repair` fixes it, saying what was lost.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use quiver_core::batch::{Batch, ColumnData, FieldColumn};
use quiver_core::ids::FieldId;
use quiver_core::schema::{CollectionSchema, DataType, FieldSchema};
use quiver_core::wal::FsyncPolicy;

use super::*;
use crate::coordinator::DEFAULT_DB;
use crate::error::code;
use crate::rpc::{ShardRef, StreamingApi};
use crate::standalone::{Standalone, StandaloneConfig, WalBackend};

/// Runs `f` on a runtime of its own: dropping the runtime ends every task of the
/// instance started in it, as a `kill -9` would (the meta store's lock is released).
fn run<T>(f: impl Future<Output = T>) -> T {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(f)
}

async fn start(dir: &Path) -> Result<Standalone, crate::error::ApiError> {
    start_with(dir, WalBackend::Local).await
}

async fn start_with(dir: &Path, wal: WalBackend) -> Result<Standalone, crate::error::ApiError> {
    Standalone::start(&StandaloneConfig {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        auth_token: None,
        fsync: FsyncPolicy::Always,
        seal_rows: 100_000,
        idle_flush: Duration::from_secs(3600),
        wal,
        pchannels: 4,
        // No ticks on their own: the tests count the records in logs (a read still
        // asks for one).
        tick_interval: Duration::from_secs(3600),
    })
    .await
}

fn schema(name: &str) -> CollectionSchema {
    CollectionSchema::new(
        name,
        vec![
            FieldSchema::new("id", DataType::Int64).primary(false),
            FieldSchema::new("v", DataType::FloatVector { dim: 2 }),
        ],
        false,
    )
    .unwrap()
}

fn batch(ids: std::ops::Range<i64>) -> Batch {
    let ids: Vec<i64> = ids.collect();
    Batch {
        num_rows: ids.len(),
        columns: vec![
            FieldColumn::new(FieldId(100), ColumnData::Int64(ids.clone())),
            FieldColumn::new(
                FieldId(101),
                ColumnData::FloatVector {
                    dim: 2,
                    data: ids.iter().flat_map(|&i| [i as f32, 1.0]).collect(),
                },
            ),
        ],
    }
}

fn at(info: &CollectionInfo) -> ShardRef {
    ShardRef {
        collection: info.id,
        shard: 0,
    }
}

/// Creates collections `good` and `bad`, writes 5 batches of 10 rows to each and
/// flushes after batch `flush_after` (if any). Stops without a final flush.
fn populate(dir: &Path, flush_after: Option<i64>) -> (CollectionInfo, CollectionInfo) {
    run(async {
        let s = start(dir).await.unwrap();
        let mut infos = Vec::new();
        for name in ["good", "bad"] {
            let info = s
                .coord
                .create(DEFAULT_DB, schema(name), 1, 0, vec![])
                .await
                .unwrap();
            s.streaming.open(info.clone()).await.unwrap();
            let p = info.partitions[0].id;
            for b in 0..5 {
                let rows = batch(b * 10..(b + 1) * 10);
                s.streaming.insert(at(&info), p, rows, false).await.unwrap();
                if flush_after == Some(b) {
                    s.streaming.flush(at(&info)).await.unwrap();
                }
            }
            infos.push(info);
        }
        (infos[0].clone(), infos.remove(1))
    })
}

/// Starts again: the healthy collection takes writes and replays its log; the damaged
/// one answers every request with the damage status.
fn restart_and_expect_damage(
    dir: &Path,
    good: &CollectionInfo,
    bad: &CollectionInfo,
    needle: &str,
) {
    run(async {
        let s = start(dir)
            .await
            .expect("one damaged collection must not stop the start");
        s.streaming.open(good.clone()).await.unwrap();
        let p = good.partitions[0].id;
        s.streaming
            .insert(at(good), p, batch(100..101), false)
            .await
            .unwrap();
        assert!(!s.streaming.flush(at(good)).await.unwrap().is_empty());
        let e = s.streaming.open(bad.clone()).await.unwrap_err();
        assert_eq!(e.code, code::SEGMENT_LOAD_FAILED, "{e}");
        assert!(
            e.reason.contains("collection bad is damaged") && e.reason.contains(needle),
            "{e}"
        );
        let e = s
            .streaming
            .insert(at(bad), bad.partitions[0].id, batch(200..201), false)
            .await
            .unwrap_err();
        assert_eq!(e.code, code::SEGMENT_LOAD_FAILED, "{e}");
        assert_eq!(s.coord.get(DEFAULT_DB, "bad").await.unwrap().id, bad.id);
    });
}

#[test]
fn a_damaged_collection_can_still_be_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let (good, bad) = populate(tmp.path(), None);
    let wal = tmp.path().join("wal").join(&bad.log_of(0).name);
    let seg = wal.join("00000000000000000000.wal");
    let mut data = std::fs::read(&seg).unwrap();
    data[20] ^= 1;
    quiver_core::rt::disk::StdDisk
        .write_atomic(&seg, &data)
        .unwrap();
    run(async {
        let s = start(tmp.path()).await.unwrap();
        // The streaming side first: the catalog's drop would let the garbage collector
        // race this drop for the WAL files (issue 18 item 3, fixed elsewhere).
        StreamingApi::drop_collection(&*s.streaming, bad.clone())
            .await
            .unwrap();
        s.coord.drop_collection(DEFAULT_DB, "bad").await.unwrap();
        s.streaming.open(good.clone()).await.unwrap();
    });
    // The log is its pchannel's, shared, so it stays; the dropped shard's checkpoint
    // goes, so it no longer holds the log back.
    assert!(seg.exists());
    let left = run(async {
        let d = DataDir::open(tmp.path()).unwrap();
        d.meta
            .range(quiver_core::wal::pchannel::CHECKPOINT_PREFIX)
            .await
            .unwrap()
    });
    assert!(
        left.iter()
            .all(|(k, _)| !k.ends_with(&bad.vchannels()[0].0)),
        "{left:?}"
    );
    let left = run(async { inspect(&DataDir::open(tmp.path()).unwrap()).await.unwrap() });
    assert!(!left.is_damaged() && left.collections.len() == 1, "{left}");
}

fn inspect_and_repair(dir: &Path, opts: RepairOptions, would: &str, lost: &str) -> String {
    run(async {
        let d = DataDir::open(dir).unwrap();
        let found = inspect(&d).await.unwrap();
        assert!(found.is_damaged(), "{found}");
        assert!(!found.collections[0].is_damaged(), "{found}");
        let dry = repair(&d, DEFAULT_DB, "bad", RepairOptions::default())
            .await
            .unwrap();
        assert!(dry.damage_left && dry.text.contains(would), "{}", dry.text);
        let done = repair(&d, DEFAULT_DB, "bad", opts).await.unwrap();
        assert!(
            !done.damage_left && done.text.contains(lost),
            "{}",
            done.text
        );
        assert!(!inspect(&d).await.unwrap().is_damaged());
        done.text
    })
}

#[test]
fn a_flipped_wal_byte_takes_down_one_collection_until_repaired() {
    let tmp = tempfile::tempdir().unwrap();
    let (good, bad) = populate(tmp.path(), None);
    let wal = tmp
        .path()
        .join("wal")
        .join(&bad.log_of(0).name)
        .join("00000000000000000000.wal");
    let mut data = std::fs::read(&wal).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x5a;
    quiver_core::rt::disk::StdDisk
        .write_atomic(&wal, &data)
        .unwrap();

    restart_and_expect_damage(tmp.path(), &good, &bad, "00000000000000000000.wal at byte");
    let opts = RepairOptions {
        truncate_wal: true,
        ..Default::default()
    };
    let text = inspect_and_repair(
        tmp.path(),
        opts,
        "loses every record from 2 on",
        "LOST: WAL records 2..=4",
    );
    assert!(text.contains("checksum mismatch"), "{text}");
    run(async {
        let s = start(tmp.path()).await.unwrap();
        s.streaming.open(bad.clone()).await.unwrap();
        // The two batches before the damage are back, in one segment.
        assert_eq!(s.streaming.flush(at(&bad)).await.unwrap().len(), 1);
    });
}

#[test]
fn a_missing_segment_object_takes_down_one_collection_until_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let (good, bad) = populate(tmp.path(), Some(1));
    let stats = tmp
        .path()
        .join("objects")
        .join("stats_log")
        .join(bad.id.to_string());
    let victim = walk(&stats)
        .into_iter()
        .next()
        .expect("a flushed segment's stats");
    std::fs::remove_file(&victim).unwrap();

    restart_and_expect_damage(tmp.path(), &good, &bad, "not found");
    let opts = RepairOptions {
        drop_damaged_segments: true,
        ..Default::default()
    };
    inspect_and_repair(tmp.path(), opts, "loses segment(s)", "LOST: 20 rows");
    run(async {
        let s = start(tmp.path()).await.unwrap();
        s.streaming.open(bad.clone()).await.unwrap();
    });
}

#[test]
fn a_deleted_wal_file_after_a_flush_is_damage_until_rebased() {
    let tmp = tempfile::tempdir().unwrap();
    let (good, bad) = populate(tmp.path(), Some(1));
    let wal = tmp.path().join("wal").join(&bad.log_of(0).name);
    std::fs::remove_file(wal.join("00000000000000000000.wal")).unwrap();

    // Not 20 rows served and a panic on the next write: the shard is refused.
    restart_and_expect_damage(tmp.path(), &good, &bad, "replay must start at record 2");
    let opts = RepairOptions {
        truncate_wal: true,
        ..Default::default()
    };
    let text = inspect_and_repair(
        tmp.path(),
        opts,
        "re-bases the log at the flush checkpoint 2",
        "LOST: every WAL record from 2 on that was in the missing file(s)",
    );
    assert!(text.contains("a WAL file is missing"), "{text}");
    run(async {
        let s = start(tmp.path()).await.unwrap();
        s.streaming.open(bad.clone()).await.unwrap();
        let p = bad.partitions[0].id;
        // The log starts at the checkpoint: writes land after it, no panic.
        let ack = s
            .streaming
            .insert(at(&bad), p, batch(500..501), false)
            .await;
        assert!(ack.is_ok(), "{ack:?}");
    });
}

#[test]
fn a_truncated_meta_store_is_damage_with_a_restore_hint() {
    let tmp = tempfile::tempdir().unwrap();
    populate(tmp.path(), None);
    let meta = tmp.path().join("meta.redb");
    let whole = std::fs::read(&meta).unwrap();
    for cut in [whole.len() / 2, 100] {
        quiver_core::rt::disk::StdDisk
            .write_atomic(&meta, &whole[..cut])
            .unwrap();
        let err = DataDir::open(tmp.path())
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("meta.redb is damaged") && err.contains("restore meta.redb from a backup"),
            "cut at {cut}: {err}"
        );
        let err = run(start(tmp.path())).err().expect("refused");
        assert!(err.reason.contains("is damaged"), "cut at {cut}: {err}");
    }
}

#[test]
fn a_missing_meta_store_beside_wals_refuses_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    populate(tmp.path(), None);
    std::fs::remove_file(tmp.path().join("meta.redb")).unwrap();
    let err = run(start(tmp.path())).err().expect("refused");
    assert!(err.reason.contains("meta.redb is missing"), "{err}");
    assert!(matches!(
        DataDir::open(tmp.path()),
        Err(OpsError::NotADataDir(_))
    ));
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// `inspect` reads object-storage logs (`--wal object`) too: whole, it reports them
/// ok; with a block gone from the middle it names the hole, and `repair` says it
/// cannot mend an object log rather than touching local files.
#[test]
fn inspect_checks_object_wals_and_repair_refuses_them() {
    let tmp = tempfile::tempdir().unwrap();
    let log = run(async {
        let s = start_with(tmp.path(), WalBackend::Object).await.unwrap();
        let info = s
            .coord
            .create(DEFAULT_DB, schema("objwal"), 1, 0, vec![])
            .await
            .unwrap();
        s.streaming.open(info.clone()).await.unwrap();
        let p = info.partitions[0].id;
        for b in 0..4 {
            let rows = batch(b * 10..(b + 1) * 10);
            s.streaming.insert(at(&info), p, rows, false).await.unwrap();
        }
        info.log_of(0).name
    });
    let report = run(async { inspect(&DataDir::open(tmp.path()).unwrap()).await.unwrap() });
    assert!(!report.is_damaged(), "{report}");
    assert!(report.to_string().contains("records 0..4"), "{report}");
    let log = tmp.path().join("objects/wal").join(&log);
    let mut blocks: Vec<_> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    blocks.sort();
    std::fs::remove_file(&blocks[2]).unwrap();
    let report = run(async { inspect(&DataDir::open(tmp.path()).unwrap()).await.unwrap() });
    assert!(report.is_damaged(), "{report}");
    assert!(report.to_string().contains("missing"), "{report}");
    let opts = RepairOptions {
        truncate_wal: true,
        drop_damaged_segments: false,
    };
    let d = DataDir::open(tmp.path()).unwrap();
    let out = run(async { repair(&d, DEFAULT_DB, "objwal", opts).await.unwrap() });
    assert!(out.text.contains("object-storage log"), "{}", out.text);
}

/// A damaged log that two collections share: `repair --truncate-wal` of one is not
/// offered, and says which other shard cutting the log would cost its writes.
#[test]
fn repair_does_not_cut_a_shared_log() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, first) = run(async {
        let s = start(tmp.path()).await.unwrap();
        let mut infos = Vec::new();
        for name in ["a", "b", "c", "d", "e"] {
            let info = s
                .coord
                .create(DEFAULT_DB, schema(name), 1, 0, vec![])
                .await
                .unwrap();
            s.streaming.open(info.clone()).await.unwrap();
            let p = info.partitions[0].id;
            s.streaming
                .insert(at(&info), p, batch(0..10), false)
                .await
                .unwrap();
            infos.push(info);
        }
        // Four pchannels, each new shard on the least used: the fifth shares the first's.
        assert_eq!(infos[4].log_of(0), infos[0].log_of(0));
        (infos[0].log_of(0).name, infos[0].vchannels()[0].0.clone())
    });
    let seg = tmp
        .path()
        .join("wal")
        .join(&log)
        .join("00000000000000000000.wal");
    let mut data = std::fs::read(&seg).unwrap();
    // Inside the first record (the first collection's), a valid one after it: damage,
    // not a torn tail.
    data[60] ^= 0x5a;
    quiver_core::rt::disk::StdDisk
        .write_atomic(&seg, &data)
        .unwrap();
    let d = DataDir::open(tmp.path()).unwrap();
    let opts = RepairOptions {
        truncate_wal: true,
        ..Default::default()
    };
    let out = run(async { repair(&d, DEFAULT_DB, "e", opts).await.unwrap() });
    assert!(out.damage_left, "{}", out.text);
    assert!(
        out.text.contains("is shared with 1 other shard") && out.text.contains(&first),
        "{}",
        out.text
    );
    assert_eq!(std::fs::read(&seg).unwrap(), data, "the log was changed");
}
