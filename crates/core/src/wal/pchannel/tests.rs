use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::meta::MemMetaStore;
use crate::wal::MemWal;

fn setup() -> (Arc<SharedLog>, VchannelWal, VchannelWal) {
    let shared = SharedLog::shared("p0", Arc::new(MemWal::new()), Arc::new(MemMetaStore::new()));
    let a = shared.vchannel(&VChannel("p0_1v0".into()));
    let b = shared.vchannel(&VChannel("p0_2v0".into()));
    (shared, a, b)
}

fn payloads(rs: &[WalRecord]) -> Vec<&[u8]> {
    rs.iter().map(|r| r.payload.as_ref()).collect()
}

/// Each vchannel reads back exactly its own records, at the pchannel's offsets, past
/// the other's records and the ticks.
#[test]
fn vchannels_read_their_own_records() {
    crate::rt::block_on(async {
        let (shared, a, b) = setup();
        let e = Epoch(1);
        a.fence(e).await.unwrap();
        assert_eq!(a.append(e, Bytes::from_static(b"a0")).await.unwrap(), 0);
        assert_eq!(b.append(e, Bytes::from_static(b"b0")).await.unwrap(), 1);
        shared.append_tick(e, Timestamp(7)).await.unwrap();
        assert_eq!(a.append(e, Bytes::from_static(b"a1")).await.unwrap(), 3);
        for i in 0..600u32 {
            b.append(e, Bytes::from(i.to_le_bytes().to_vec()))
                .await
                .unwrap();
        }
        assert_eq!(a.append(e, Bytes::from_static(b"a2")).await.unwrap(), 604);
        let ra = a.read_from(0, 100).await.unwrap();
        assert_eq!(payloads(&ra), [b"a0" as &[u8], b"a1", b"a2"]);
        assert_eq!(ra.iter().map(|r| r.offset).collect::<Vec<_>>(), [0, 3, 604]);
        assert_eq!(payloads(&a.read_from(1, 1).await.unwrap()), [b"a1"]);
        assert!(a.read_from(605, 10).await.unwrap().is_empty());
        assert_eq!(b.read_from(0, 1000).await.unwrap().len(), 601);
        assert_eq!(a.fresh_checkpoint().await.unwrap(), 605);
    });
}

/// The log drops only what every vchannel has checkpointed; a vchannel that pinned
/// its checkpoint holds the log there until it moves on, and a forgotten one no longer.
#[test]
fn truncation_waits_for_the_slowest_vchannel() {
    crate::rt::block_on(async {
        let (shared, a, b) = setup();
        let e = Epoch(1);
        for _ in 0..10 {
            a.append(e, Bytes::from_static(b"a")).await.unwrap();
            b.append(e, Bytes::from_static(b"b")).await.unwrap();
        }
        a.pin(0).await.unwrap();
        b.truncate_before(20).await.unwrap();
        assert_eq!(shared.log().first_offset().await, 0, "a still needs all");
        a.truncate_before(12).await.unwrap();
        assert_eq!(shared.log().first_offset().await, 12);
        // Checkpoints only rise: a stale copy's lower checkpoint changes nothing.
        a.truncate_before(4).await.unwrap();
        let cps = shared.checkpoints().await.unwrap();
        assert_eq!(
            cps,
            [("p0_1v0".to_string(), 12), ("p0_2v0".to_string(), 20)]
        );
        SharedLog::forget(shared.meta.as_ref(), "p0", "p0_1v0")
            .await
            .unwrap();
        b.truncate_before(20).await.unwrap();
        assert_eq!(shared.log().first_offset().await, 20);
        // b still needs its place: reading below it is a loss.
        assert!(matches!(
            b.read_from(0, 1).await,
            Err(WalError::Truncated { .. })
        ));
    });
}

/// A vchannel that claimed its start at the log's end but had not recorded it yet when
/// a neighbour truncated further reads on from the log's new start (nothing of it was
/// cut); once it has recorded a checkpoint, a log starting above it is a real loss.
#[test]
fn truncation_past_an_unrecorded_start_cuts_nothing_of_it() {
    crate::rt::block_on(async {
        let (shared, a, b) = setup();
        let e = Epoch(1);
        for _ in 0..5 {
            b.append(e, Bytes::from_static(b"b")).await.unwrap();
        }
        let start = a.fresh_checkpoint().await.unwrap();
        for _ in 0..5 {
            b.append(e, Bytes::from_static(b"b")).await.unwrap();
        }
        b.truncate_before(10).await.unwrap();
        assert_eq!(shared.log().first_offset().await, 10);
        assert!(a.read_from(start, 10).await.unwrap().is_empty());
        a.pin(start).await.unwrap();
        assert!(matches!(
            a.read_from(start, 10).await,
            Err(WalError::Truncated { .. })
        ));
    });
}

/// A log written before pchannels holds bare messages: its one vchannel reads them; a
/// shared log refuses them as damage.
#[test]
fn untagged_records_belong_only_to_a_dedicated_log() {
    crate::rt::block_on(async {
        let log: Arc<dyn Wal> = Arc::new(MemWal::new());
        log.append(Epoch(1), Bytes::from_static(b"\x01old"))
            .await
            .unwrap();
        let meta: Arc<dyn crate::meta::MetaStore> = Arc::new(MemMetaStore::new());
        let v = VChannel("p0_1v0".into());
        let own = SharedLog::dedicated("p0_1v0", log.clone(), meta.clone()).vchannel(&v);
        own.append(Epoch(1), Bytes::from_static(b"new"))
            .await
            .unwrap();
        assert_eq!(
            payloads(&own.read_from(0, 10).await.unwrap()),
            [b"\x01old" as &[u8], b"new"]
        );
        assert_eq!(own.fresh_checkpoint().await.unwrap(), 0);
        let shared = SharedLog::shared("p0", log.clone(), meta).vchannel(&v);
        let err = shared.read_from(0, 10).await.unwrap_err();
        assert!(err.is_damage(), "{err}");
        // A dedicated log truncates at its one vchannel's checkpoint.
        own.truncate_before(1).await.unwrap();
        assert_eq!(log.first_offset().await, 1);
        assert_eq!(
            payloads(&shared.read_from(1, 10).await.unwrap()),
            [b"new" as &[u8]]
        );
    });
}

#[test]
fn the_wal_contract_holds_for_a_vchannel() {
    crate::rt::block_on(async {
        let (_, a, _) = setup();
        crate::wal::contract::check(&a).await;
    });
}
