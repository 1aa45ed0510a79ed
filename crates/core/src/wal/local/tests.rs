use super::*;
use crate::rt::disk::{SimDisk, StdDisk};

fn small() -> LocalWalOptions {
    LocalWalOptions {
        segment_bytes: 64,
        fsync: FsyncPolicy::Always,
    }
}

#[tokio::test]
async fn satisfies_the_contract_on_the_sim_disk() {
    let disk = Arc::new(SimDisk::new(1));
    let wal = LocalWal::open(disk, "/wal/p0", small()).unwrap();
    super::super::contract::check(&wal).await;
}

#[tokio::test]
async fn satisfies_the_contract_on_a_real_disk_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let disk: Arc<dyn Disk> = Arc::new(StdDisk);
    {
        let wal = LocalWal::open(disk.clone(), dir.path(), small()).unwrap();
        super::super::contract::check(&wal).await;
    }
    let wal = LocalWal::open(disk, dir.path(), small()).unwrap();
    assert_eq!(wal.next_offset().await, 11);
    assert_eq!(wal.epoch().await, Epoch(2));
    assert_eq!(
        wal.read_from(10, 5).await.unwrap()[0].payload.as_ref(),
        b"new owner"
    );
}

#[tokio::test]
async fn acknowledged_appends_survive_crashes_and_torn_tails_are_cut() {
    for seed in 0..200 {
        let disk = SimDisk::new(seed);
        let d: Arc<dyn Disk> = Arc::new(disk.clone());
        let wal = LocalWal::open(d.clone(), "/w", small()).unwrap();
        let mut acked = 0u64;
        disk.power_cut_after(seed % 23);
        for i in 0..20u64 {
            match wal.append(Epoch(1), Bytes::from(vec![i as u8; 10])).await {
                Ok(off) => {
                    assert_eq!(off, i);
                    acked += 1;
                }
                Err(_) => break,
            }
        }
        disk.crash();
        let wal = LocalWal::open(d, "/w", small()).unwrap();
        let next = wal.next_offset().await;
        // Everything acknowledged is there; at most the one in-flight append more.
        assert!(
            next == acked || next == acked + 1,
            "seed {seed}: {next} vs {acked}"
        );
        let rs = wal.read_from(0, 100).await.unwrap();
        assert_eq!(rs.len() as u64, next);
        for (i, r) in rs.iter().enumerate() {
            assert_eq!(r.payload.as_ref(), &[i as u8; 10]);
        }
        // The log is usable again.
        assert_eq!(
            wal.append(Epoch(1), Bytes::from_static(b"x"))
                .await
                .unwrap(),
            next
        );
    }
}

#[tokio::test]
async fn mid_log_corruption_is_refused_not_cut() {
    let disk = SimDisk::new(9);
    let d: Arc<dyn Disk> = Arc::new(disk.clone());
    let opts = LocalWalOptions {
        segment_bytes: 1 << 20,
        fsync: FsyncPolicy::Always,
    };
    let wal = LocalWal::open(d.clone(), "/w", opts.clone()).unwrap();
    for i in 0..5u8 {
        wal.append(Epoch(1), Bytes::from(vec![i; 8])).await.unwrap();
    }
    drop(wal);
    // Flip a payload byte of record 1 by rewriting the file.
    let path = Path::new("/w").join(segment_name(0));
    let mut data = d.open(&path, false).unwrap().read_all().unwrap();
    data[(HEADER_LEN + 8) + HEADER_LEN + 2] ^= 0xff;
    d.remove(&path).unwrap();
    let mut f = d.open(&path, true).unwrap();
    f.append(&data).unwrap();
    f.sync().unwrap();
    let err = LocalWal::open(d, "/w", opts).unwrap_err();
    assert!(matches!(err, WalError::Corrupt { .. }), "{err}");
}

#[tokio::test]
async fn a_failed_write_breaks_the_log_until_reopen() {
    let disk = SimDisk::new(4);
    let d: Arc<dyn Disk> = Arc::new(disk.clone());
    let wal = LocalWal::open(d, "/w", small()).unwrap();
    wal.append(Epoch(1), Bytes::from_static(b"a"))
        .await
        .unwrap();
    disk.power_cut_after(0);
    assert!(wal
        .append(Epoch(1), Bytes::from_static(b"b"))
        .await
        .is_err());
    assert!(matches!(
        wal.append(Epoch(1), Bytes::from_static(b"c")).await,
        Err(WalError::Broken)
    ));
}

#[tokio::test]
async fn segments_rotate_and_truncate() {
    let disk: Arc<dyn Disk> = Arc::new(SimDisk::new(2));
    let wal = LocalWal::open(disk.clone(), "/w", small()).unwrap();
    for _ in 0..20 {
        wal.append(Epoch(1), Bytes::from(vec![0u8; 30]))
            .await
            .unwrap();
    }
    let files = disk.list(Path::new("/w")).unwrap();
    assert!(files.len() > 5, "{files:?}");
    wal.truncate_before(15).await.unwrap();
    let first = wal.first_offset().await;
    assert!(first <= 15 && first > 0);
    assert_eq!(
        wal.read_from(first, 100).await.unwrap().len() as u64,
        20 - first
    );
    drop(wal);
    let wal = LocalWal::open(disk, "/w", small()).unwrap();
    assert_eq!(wal.first_offset().await, first);
    assert_eq!(wal.next_offset().await, 20);
}

/// A log of `n` records of 20 bytes each in one segment file on a sim disk.
async fn log_of(n: u8) -> (Arc<dyn Disk>, LocalWalOptions) {
    let d: Arc<dyn Disk> = Arc::new(SimDisk::new(11));
    let opts = LocalWalOptions {
        segment_bytes: 1 << 20,
        fsync: FsyncPolicy::Always,
    };
    let wal = LocalWal::open(d.clone(), "/w", opts.clone()).unwrap();
    for i in 0..n {
        wal.append(Epoch(1), Bytes::from(vec![i; 20]))
            .await
            .unwrap();
    }
    (d, opts)
}

/// Rewrites byte `at` of the first segment file with `f(byte)`.
fn damage_byte(d: &Arc<dyn Disk>, at: usize, f: impl Fn(u8) -> u8) {
    let path = Path::new("/w").join(segment_name(0));
    let mut data = d.open(&path, false).unwrap().read_all().unwrap();
    data[at] = f(data[at]);
    let mut file = d.open(&path, false).unwrap();
    file.truncate(0).unwrap();
    file.append(&data).unwrap();
    file.sync().unwrap();
}

const FRAME: usize = HEADER_LEN + 20;

#[tokio::test]
async fn a_damaged_length_field_mid_log_is_refused_not_cut() {
    let (d, opts) = log_of(6).await;
    // The length field of record 2: the old check followed it and saw a torn tail.
    damage_byte(&d, 2 * FRAME + 5, |b| b ^ 0x40);
    let err = LocalWal::open(d.clone(), "/w", opts).unwrap_err();
    assert!(err.is_damage(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("at byte {} (record 2)", 2 * FRAME)),
        "{text}"
    );
    let check = check_local_wal(&*d, Path::new("/w")).unwrap();
    let damage = check.damage.unwrap();
    assert_eq!(damage.record, Some(2));
    assert_eq!(damage.intact_beyond, Some((3, 5)));
}

#[tokio::test]
async fn repair_cuts_at_damage_after_the_checkpoint_and_says_what_was_lost() {
    let (d, opts) = log_of(6).await;
    damage_byte(&d, 3 * FRAME + HEADER_LEN + 4, |b| b ^ 1);
    let repair = repair_local_wal(&*d, Path::new("/w"), 1).unwrap().unwrap();
    assert_eq!(repair.lost, vec![(3, 5)]);
    assert!(check_local_wal(&*d, Path::new("/w"))
        .unwrap()
        .damage
        .is_none());
    let wal = LocalWal::open(d.clone(), "/w", opts).unwrap();
    assert_eq!(wal.next_offset().await, 3);
    let rs = wal.read_from(0, 10).await.unwrap();
    assert_eq!(rs.len(), 3);
    assert_eq!(rs[2].payload.as_ref(), &[2u8; 20]);
    // Nothing to do the second time.
    assert!(repair_local_wal(&*d, Path::new("/w"), 1).unwrap().is_none());
}

#[tokio::test]
async fn damage_before_the_checkpoint_costs_nothing() {
    let (d, opts) = log_of(6).await;
    damage_byte(&d, FRAME + HEADER_LEN + 4, |b| b ^ 1);
    let repair = repair_local_wal(&*d, Path::new("/w"), 4).unwrap().unwrap();
    assert!(repair.lost.is_empty(), "{repair:?}");
    assert_eq!(repair.written_files, vec![segment_name(4)]);
    let wal = LocalWal::open(d, "/w", opts).unwrap();
    assert_eq!(wal.first_offset().await, 4);
    assert_eq!(wal.next_offset().await, 6);
    let rs = wal.read_from(4, 10).await.unwrap();
    assert_eq!(
        rs.iter().map(|r| r.payload[0]).collect::<Vec<_>>(),
        vec![4, 5]
    );
}

#[tokio::test]
async fn a_missing_segment_file_is_a_gap() {
    let disk: Arc<dyn Disk> = Arc::new(SimDisk::new(3));
    let wal = LocalWal::open(disk.clone(), "/w", small()).unwrap();
    for _ in 0..12 {
        wal.append(Epoch(1), Bytes::from(vec![0u8; 30]))
            .await
            .unwrap();
    }
    drop(wal);
    let mut segs: Vec<_> = disk
        .list(Path::new("/w"))
        .unwrap()
        .into_iter()
        .filter_map(|n| parse_segment_name(&n))
        .collect();
    segs.sort_unstable();
    assert!(segs.len() >= 3, "{segs:?}");
    disk.remove(&Path::new("/w").join(segment_name(segs[1])))
        .unwrap();
    let err = LocalWal::open(disk.clone(), "/w", small()).unwrap_err();
    assert!(err.to_string().contains("are missing"), "{err}");
    let repair = repair_local_wal(&*disk, Path::new("/w"), 0)
        .unwrap()
        .unwrap();
    assert_eq!(repair.lost, vec![(segs[1], 11)]);
    let wal = LocalWal::open(disk, "/w", small()).unwrap();
    assert_eq!(wal.next_offset().await, segs[1]);
}

#[tokio::test]
async fn a_damaged_epoch_file_is_rebuilt_from_the_records() {
    let (d, opts) = log_of(3).await;
    let epoch = Path::new("/w").join(EPOCH_FILE);
    d.write_atomic(&epoch, b"junk").unwrap();
    assert!(LocalWal::open(d.clone(), "/w", opts.clone())
        .unwrap_err()
        .is_damage());
    let repair = repair_local_wal(&*d, Path::new("/w"), 0).unwrap().unwrap();
    assert!(repair.lost.is_empty());
    let wal = LocalWal::open(d, "/w", opts).unwrap();
    assert_eq!(wal.epoch().await, Epoch(1));
    assert_eq!(wal.next_offset().await, 3);
}

#[tokio::test]
async fn a_damaged_flushed_file_is_dropped_when_a_later_one_covers_the_checkpoint() {
    let disk: Arc<dyn Disk> = Arc::new(SimDisk::new(5));
    let wal = LocalWal::open(disk.clone(), "/w", small()).unwrap();
    for i in 0..12u8 {
        wal.append(Epoch(1), Bytes::from(vec![i; 30]))
            .await
            .unwrap();
    }
    drop(wal);
    // Every file holds two 58-byte records (a file rotates once it reaches 64 bytes).
    let first = Path::new("/w").join(segment_name(0));
    let mut data = disk.open(&first, false).unwrap().read_all().unwrap();
    data[HEADER_LEN + 3] ^= 1;
    disk.write_atomic(&first, &data).unwrap();
    let repair = repair_local_wal(&*disk, Path::new("/w"), 5)
        .unwrap()
        .unwrap();
    assert!(repair.lost.is_empty(), "{repair:?}");
    assert_eq!(repair.removed_files, vec![segment_name(0)]);
    let wal = LocalWal::open(disk, "/w", small()).unwrap();
    assert_eq!(wal.first_offset().await, 2);
    assert_eq!(wal.read_from(5, 100).await.unwrap().len(), 7);
}

#[tokio::test]
async fn reading_past_the_end_of_a_log_that_lost_its_file_is_damage() {
    let (d, opts) = log_of(5).await;
    d.remove(&Path::new("/w").join(segment_name(0))).unwrap();
    // The open itself cannot tell: an empty directory is also a fresh log.
    let wal = LocalWal::open(d, "/w", opts).unwrap();
    assert_eq!(wal.next_offset().await, 0);
    assert!(wal.read_from(0, 10).await.unwrap().is_empty());
    let err = wal.read_from(3, 10).await.unwrap_err();
    assert!(err.is_damage(), "{err}");
    assert!(
        matches!(
            err,
            WalError::Corrupt {
                source: FrameError::Missing {
                    needed: 3,
                    first: 0,
                    next: 0
                },
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_log_that_does_not_cover_the_checkpoint_is_reported_and_rebased() {
    let (d, opts) = log_of(5).await;
    let dir = Path::new("/w");
    // Whole and covering: fine at every checkpoint it holds.
    for c in 0..=5 {
        assert!(check_local_wal_from(&*d, dir, c).unwrap().damage.is_none());
    }
    let past = check_local_wal_from(&*d, dir, 6).unwrap().damage.unwrap();
    assert!(matches!(
        past.problem,
        FrameError::Missing { needed: 6, .. }
    ));
    d.remove(&dir.join(segment_name(0))).unwrap();
    // A log never written (no files) is fine at checkpoint 0 only.
    assert!(check_local_wal_from(&*d, dir, 0).unwrap().damage.is_none());
    let damage = check_local_wal_from(&*d, dir, 3).unwrap().damage.unwrap();
    assert_eq!(damage.record, Some(3));
    assert!(
        damage.to_string().contains("a WAL file is missing"),
        "{damage}"
    );
    let repair = repair_local_wal(&*d, dir, 3).unwrap().unwrap();
    assert_eq!(repair.rebased_at, Some(3));
    assert!(repair.lost.is_empty(), "{repair:?}");
    assert_eq!(repair.written_files, vec![segment_name(3)]);
    assert!(repair_local_wal(&*d, dir, 3).unwrap().is_none());
    let wal = LocalWal::open(d, "/w", opts).unwrap();
    assert_eq!((wal.first_offset().await, wal.next_offset().await), (3, 3));
    assert!(wal.read_from(3, 10).await.unwrap().is_empty());
    assert_eq!(
        wal.append(Epoch(1), Bytes::from_static(b"x"))
            .await
            .unwrap(),
        3
    );
}

#[tokio::test]
async fn a_missing_head_file_after_the_checkpoint_loses_the_records_after_the_hole() {
    let disk: Arc<dyn Disk> = Arc::new(SimDisk::new(6));
    let wal = LocalWal::open(disk.clone(), "/w", small()).unwrap();
    for i in 0..8u8 {
        wal.append(Epoch(1), Bytes::from(vec![i; 30]))
            .await
            .unwrap();
    }
    drop(wal);
    // Two records per file: files start at 0, 2, 4, 6. Checkpoint 1, file 0 lost.
    let dir = Path::new("/w");
    disk.remove(&dir.join(segment_name(0))).unwrap();
    let damage = check_local_wal_from(&*disk, dir, 1)
        .unwrap()
        .damage
        .unwrap();
    assert_eq!(damage.intact_beyond, Some((6, 7)));
    let repair = repair_local_wal(&*disk, dir, 1).unwrap().unwrap();
    assert_eq!(repair.lost, vec![(1, 7)]);
    assert_eq!(repair.rebased_at, Some(1));
    let wal = LocalWal::open(disk, "/w", small()).unwrap();
    assert_eq!(wal.next_offset().await, 1);
}

#[tokio::test]
async fn sync_makes_appends_durable_under_a_relaxed_policy() {
    let disk = SimDisk::new(8);
    let d: Arc<dyn Disk> = Arc::new(disk.clone());
    let opts = LocalWalOptions {
        segment_bytes: 1 << 20,
        fsync: FsyncPolicy::Never,
    };
    let wal = LocalWal::open(d.clone(), "/w", opts.clone()).unwrap();
    for i in 0..4u8 {
        wal.append(Epoch(1), Bytes::from(vec![i; 10]))
            .await
            .unwrap();
    }
    wal.sync().await.unwrap();
    drop(wal);
    disk.crash();
    let wal = LocalWal::open(d, "/w", opts).unwrap();
    assert_eq!(wal.next_offset().await, 4);
}
