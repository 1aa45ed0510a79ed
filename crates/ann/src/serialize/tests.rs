use super::*;
use crate::hnsw::HnswParams;
use crate::index::IndexParams;
use crate::ivf::IvfParams;
use crate::testutil::clustered;
use quiver_core::rt::Rng;
use quiver_core::search::distance::Metric;

fn all_kinds() -> Vec<IndexParams> {
    let h = HnswParams {
        m: 8,
        ef_construction: 40,
        seed: 9,
    };
    let ivf = IvfParams {
        nlist: 6,
        iterations: 4,
        train_per_list: 32,
        seed: 2,
    };
    vec![
        IndexParams::Flat,
        IndexParams::Hnsw(h),
        IndexParams::HnswSq8(h),
        IndexParams::IvfFlat(ivf),
        IndexParams::IvfSq8 { ivf, refine: true },
        IndexParams::IvfSq8 { ivf, refine: false },
    ]
}

/// Recomputes the CRC so a mutation reaches the structural checks.
fn fix_crc(b: &mut [u8]) {
    let end = b.len() - 4;
    let crc = crc32fast::hash(&b[..end]);
    b[end..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn round_trip_keeps_search_results() {
    let dim = 12; // padded to 16: exercises the padding lanes
    let data = clustered(300, dim, 4);
    let queries = clustered(10, dim, 40);
    let sp = SearchParams {
        ef: Some(32),
        nprobe: Some(3),
        ..SearchParams::default()
    };
    for metric in [Metric::L2, Metric::IP, Metric::Cosine] {
        for p in all_kinds() {
            let idx = AnnIndex::build(&p, metric, dim, &data, 1).unwrap();
            let bytes = idx.to_bytes();
            assert_eq!(&bytes[..4], b"QANN");
            let back = AnnIndex::from_bytes(&bytes).unwrap();
            assert_eq!(back.to_bytes(), bytes);
            assert_eq!(back.kind(), idx.kind());
            assert_eq!(back.memory_bytes(), idx.memory_bytes());
            for q in queries.chunks_exact(dim) {
                assert_eq!(back.search(q, 5, &sp, None), idx.search(q, 5, &sp, None));
            }
        }
    }
    // Typed round trip, and a typed decode of the wrong kind.
    let h = Hnsw::build(Metric::L2, dim, &data, &HnswParams::default(), 1).unwrap();
    let b = h.to_bytes();
    let h2 = Hnsw::from_bytes(&b).unwrap();
    assert_eq!(h2.links0, h.links0);
    assert!(matches!(
        FlatIndex::from_bytes(&b),
        Err(AnnError::WrongKind { .. })
    ));
    let empty = AnnIndex::build(&IndexParams::autoindex(), Metric::L2, 3, &[], 1).unwrap();
    let e2 = AnnIndex::from_bytes(&empty.to_bytes()).unwrap();
    assert!(e2.is_empty());
}

#[test]
fn corrupt_bytes_are_refused() {
    let data = clustered(200, 8, 1);
    let idx = AnnIndex::build(
        &IndexParams::Hnsw(HnswParams {
            m: 8,
            ef_construction: 32,
            seed: 1,
        }),
        Metric::L2,
        8,
        &data,
        1,
    )
    .unwrap();
    let good = idx.to_bytes();
    assert_eq!(AnnIndex::from_bytes(&[]).err(), Some(AnnError::Truncated));
    assert_eq!(AnnIndex::from_bytes(b"QA").err(), Some(AnnError::Truncated));
    let mut b = good.clone();
    b[0] = b'X';
    assert_eq!(AnnIndex::from_bytes(&b).err(), Some(AnnError::BadMagic));
    let mut b = good.clone();
    b[4] = 9;
    assert_eq!(
        AnnIndex::from_bytes(&b).err(),
        Some(AnnError::UnsupportedVersion(9))
    );
    let mut b = good.clone();
    b[100] ^= 0x40;
    assert!(matches!(
        AnnIndex::from_bytes(&b),
        Err(AnnError::Checksum { .. })
    ));
    let mut b = good.clone();
    b[6] = 77;
    fix_crc(&mut b);
    assert_eq!(
        AnnIndex::from_bytes(&b).err(),
        Some(AnnError::UnknownKind(77))
    );
    let mut b = good[..good.len() - 40].to_vec();
    fix_crc(&mut b);
    assert!(AnnIndex::from_bytes(&b).is_err());
    // A neighbour id past the end, behind a valid checksum.
    if let AnnIndex::Hnsw(h) = &idx {
        let mut h = h.clone();
        h.links0[0] = 1;
        h.links0[1] = 10_000;
        assert_eq!(
            AnnIndex::from_bytes(&h.to_bytes()).err(),
            Some(AnnError::Corrupt("level-0 neighbour id out of range"))
        );
    }
}

#[test]
fn fuzz_survives_mutations() {
    let data = clustered(60, 5, 2);
    let mut rng = Rng::seed_from_u64(17);
    for p in all_kinds() {
        for metric in [Metric::L2, Metric::Cosine] {
            let good = AnnIndex::build(&p, metric, 5, &data, 1).unwrap().to_bytes();
            fuzz(&good);
            for _ in 0..150 {
                let mut b = good.clone();
                for _ in 0..1 + rng.index(4) {
                    let i = rng.index(b.len() - 4);
                    b[i] = match rng.index(4) {
                        0 => 0,
                        1 => 0xff,
                        _ => rng.next_u64() as u8,
                    };
                }
                if rng.gen_bool(0.2) {
                    let cut = rng.index(b.len());
                    b.truncate(cut.max(12));
                }
                if b.len() >= 12 {
                    fix_crc(&mut b);
                }
                fuzz(&b);
            }
        }
    }
    for len in 0..64 {
        let mut b = vec![0u8; len];
        rng.fill_bytes(&mut b);
        fuzz(&b);
    }
}
