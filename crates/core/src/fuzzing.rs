//! Fuzz entry points: one per decoder. `fuzz/` drives them with cargo-fuzz; the tests
//! below drive them on stable with random and mutated inputs so CI covers them. Each
//! must return (not panic, not hang, not allocate without bound) on any input, and
//! anything that decodes must re-encode to the same meaning.

use std::path::Path;
use std::sync::Arc;

use crate::batch::FieldColumn;
use crate::message;
use crate::rt::disk::{Disk, SimDisk};
use crate::segment::format::{self, ObjectKind};
use crate::segment::{DeleteRecord, PkStats};
use crate::shard::Manifest;
use crate::tso::Timestamp;
use crate::wal::{record, LocalWal, LocalWalOptions};

/// The WAL frame decoder.
pub fn wal_record(data: &[u8]) {
    if let Ok((r, n)) = record::decode(data) {
        let mut again = Vec::new();
        record::encode(r.offset, r.epoch, &r.payload, &mut again);
        assert_eq!(
            &again[..],
            &data[..n],
            "frame does not re-encode identically"
        );
    }
    let (records, valid, _) = record::decode_all(data);
    assert!(valid <= data.len());
    assert!(records.len() <= data.len() / record::HEADER_LEN + 1);
}

/// The WAL message decoder.
pub fn wal_message(data: &[u8]) {
    if let Ok(m) = message::decode(data) {
        assert_eq!(message::decode(&message::encode(&m)).as_ref(), Ok(&m));
    }
}

/// The filter-expression parser and evaluator.
pub fn filter_expr(data: &[u8]) {
    crate::expr::fuzz(data)
}

/// A compiled filter plan as a read carries it between roles.
pub fn filter_plan(data: &[u8]) {
    crate::expr::fuzz_plan(data)
}

/// Local-WAL recovery over an arbitrary segment file: opens or refuses, never panics.
pub fn wal_recovery(data: &[u8]) {
    let disk = SimDisk::new(0);
    let dir = Path::new("/fuzz");
    let mut f = disk
        .open(&dir.join("00000000000000000000.wal"), true)
        .expect("sim disk");
    f.append(data).expect("sim disk");
    f.sync().expect("sim disk");
    let disk: Arc<dyn Disk> = Arc::new(disk);
    let _ = LocalWal::open(disk, dir, LocalWalOptions::default());
}

/// The object-storage WAL's block decoder: whatever decodes re-encodes identically.
/// A pchannel record's envelope: decodes or is refused; what decodes re-encodes to the
/// same bytes.
pub fn pchannel_envelope(data: &[u8]) {
    use crate::wal::pchannel::envelope::{decode, encode_data, encode_tick, Entry};
    match decode(data) {
        Ok(Entry::Data { vchannel, start }) => {
            assert_eq!(&encode_data(&vchannel, &data[start..])[..], data);
        }
        Ok(Entry::Tick(ts)) => assert_eq!(&encode_tick(ts)[..], data),
        Ok(Entry::Untagged) | Err(_) => {}
    }
}

pub fn wal_block(data: &[u8]) {
    use crate::wal::object::{decode_block, encode_data, encode_fence, Kind};
    if let Ok((h, records)) = decode_block(data) {
        let again = match h.kind {
            Kind::Fence => encode_fence(h.epoch, h.first_offset),
            Kind::Data => {
                let payloads: Vec<_> = records.iter().map(|r| r.payload.clone()).collect();
                encode_data(h.epoch, h.first_offset, &payloads)
            }
        };
        assert_eq!(&again[..], data, "block does not re-encode identically");
    }
}

/// Object-storage WAL recovery over arbitrary block objects: the input is cut into
/// up to eight objects (each a length byte, then that many bytes) stored as blocks
/// 0, 1, ...; opening and reading the log either works or fails with an error.
pub fn object_wal_recovery(data: &[u8]) {
    use object_store::{memory::InMemory, path::Path as ObjectPath, ObjectStore, ObjectStoreExt};
    let store = Arc::new(InMemory::new());
    let prefix = ObjectPath::from("wal/fuzz");
    let mut rest = data;
    let mut blocks = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let len = (len as usize).min(tail.len());
        blocks.push(tail[..len].to_vec());
        rest = &tail[len..];
        if blocks.len() == 8 {
            break;
        }
    }
    crate::rt::block_on(async move {
        for (seq, b) in blocks.into_iter().enumerate() {
            let path = prefix.clone().join(format!("{seq:020}"));
            store.put(&path, b.into()).await.expect("in-memory put");
        }
        let store: Arc<dyn ObjectStore> = store;
        let opts = crate::wal::ObjectWalOptions::default();
        if let Ok(wal) = crate::wal::ObjectWal::open(store, prefix, opts).await {
            use crate::wal::Wal;
            let first = wal.first_offset().await;
            let _ = wal.read_from(first, 1 << 16).await;
        }
    });
}

fn roundtrip<T>(kind: ObjectKind, data: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(v) = format::decode::<T>(kind, data) {
        assert_eq!(
            format::decode::<T>(kind, &format::encode(kind, &v)).ok(),
            Some(v)
        );
    }
    // Reach the body decoders behind a valid envelope too.
    let wrapped = format::wrap(kind, data);
    if let Ok(v) = format::decode::<T>(kind, &wrapped) {
        assert_eq!(
            format::decode::<T>(kind, &format::encode(kind, &v)).ok(),
            Some(v)
        );
    }
}

/// Every segment-object decoder (field binlog, timestamp log, pk stats, delta log,
/// shard manifest). The first byte picks the kind.
pub fn segment_object(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 5 {
        0 => {
            if let Ok(col) = format::decode::<FieldColumn>(
                ObjectKind::FieldBinlog,
                &format::wrap(ObjectKind::FieldBinlog, rest),
            ) {
                // Whatever decodes must be safe to measure.
                let _ = col.data.len();
            }
            roundtrip::<FieldColumn>(ObjectKind::FieldBinlog, rest)
        }
        1 => roundtrip::<Vec<Timestamp>>(ObjectKind::TimestampLog, rest),
        2 => {
            if let Ok(stats) = format::decode::<PkStats>(
                ObjectKind::PkStats,
                &format::wrap(ObjectKind::PkStats, rest),
            ) {
                let _ = stats.may_contain(&crate::batch::Pk::Int(1));
            }
            roundtrip::<PkStats>(ObjectKind::PkStats, rest)
        }
        3 => roundtrip::<Vec<DeleteRecord>>(ObjectKind::DeltaLog, rest),
        _ => roundtrip::<Manifest>(ObjectKind::ShardManifest, rest),
    }
}

/// Applies byte edits `(position, byte, how)` to a valid input: xor, truncate, insert
/// or remove. The stable fuzz tests of every crate mutate their seeds with it.
pub fn mutate(mut v: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(pos, byte, how) in edits {
        if v.is_empty() {
            v.push(byte);
            continue;
        }
        let p = pos % v.len();
        match how % 4 {
            0 => v[p] ^= byte,
            1 => v.truncate(p),
            2 => v.insert(p, byte),
            _ => {
                v.remove(p);
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{ColumnData, Pk};
    use crate::ids::{FieldId, PartitionId, SegmentId};
    use crate::message::WalMessage;
    use crate::wal::Epoch;
    use proptest::prelude::*;

    fn seeds() -> Vec<Vec<u8>> {
        let mut frame = Vec::new();
        record::encode(
            3,
            Epoch(2),
            &message::encode(&WalMessage::Delete {
                ts: Timestamp(5),
                pks: vec![Pk::Int(1), Pk::Str("a".into())],
            }),
            &mut frame,
        );
        let mut two = frame.clone();
        record::encode(4, Epoch(2), b"xyz", &mut two);
        let col = FieldColumn::new(
            FieldId(101),
            ColumnData::FloatVector {
                dim: 2,
                data: vec![1.0, 2.0, 3.0, 4.0],
            },
        );
        let mut stats = PkStats::new(4);
        stats.add(&Pk::Int(9));
        vec![
            crate::expr::fuzz_plan_seed(r#"age > 3 and name like "a%" or meta["a"] in [1, 2]"#),
            frame,
            two,
            message::encode(&WalMessage::Insert {
                ts: Timestamp(1),
                partition: PartitionId(1),
                segment: SegmentId(2),
                batch: crate::batch::Batch {
                    num_rows: 2,
                    columns: vec![col.clone()],
                },
            }),
            [&[0u8][..], &format::encode(ObjectKind::FieldBinlog, &col)].concat(),
            [&[2u8][..], &format::encode(ObjectKind::PkStats, &stats)].concat(),
            [
                &[3u8][..],
                &format::encode(
                    ObjectKind::DeltaLog,
                    &vec![DeleteRecord {
                        pk: Pk::Int(1),
                        ts: Timestamp(3),
                    }],
                ),
            ]
            .concat(),
            crate::wal::object::encode_data(Epoch(2), 7, &[bytes::Bytes::from_static(b"abc")])
                .to_vec(),
            crate::wal::pchannel::envelope::encode_data("quiver-dml_0_7v0", b"msg").to_vec(),
            crate::wal::pchannel::envelope::encode_tick(Timestamp(9)).to_vec(),
            {
                // Two blocks as `object_wal_recovery` cuts its input: a fence, then data.
                let fence = crate::wal::object::encode_fence(Epoch(1), 0);
                let data = crate::wal::object::encode_data(
                    Epoch(1),
                    0,
                    &[bytes::Bytes::from_static(b"r")],
                );
                [&[fence.len() as u8][..], &fence, &[data.len() as u8], &data].concat()
            },
        ]
    }

    fn all(data: &[u8]) {
        filter_expr(data);
        filter_plan(data);
        wal_record(data);
        wal_message(data);
        wal_recovery(data);
        wal_block(data);
        pchannel_envelope(data);
        object_wal_recovery(data);
        segment_object(data);
    }

    #[test]
    fn valid_seeds_pass() {
        for s in seeds() {
            all(&s);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            all(&data);
        }

        #[test]
        fn mutated_valid_inputs_never_panic(
            which in 0usize..9,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
        ) {
            let s = seeds().swap_remove(which);
            all(&mutate(s, &edits));
        }
    }
}
