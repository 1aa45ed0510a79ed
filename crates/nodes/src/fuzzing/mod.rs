//! Fuzz entry points for what the roles decode and parse themselves: catalog entries
//! from the meta store, the search parameters clients send (index search
//! parameters, grouping, hybrid rankers), and the Milvus requests the proxy decodes
//! itself ([`requests`]). `fuzz/` drives them with cargo-fuzz; the
//! tests below drive them on stable with random and mutated inputs so CI covers them.
//! Each must return (not panic, not hang) on any input, and whatever decodes must
//! re-encode to the same value.

use std::collections::BTreeMap;

use quiver_core::schema::{CollectionSchema, DataType, FieldSchema};
use quiver_core::segment::format::{self, ObjectKind};

use crate::coordinator::{AliasEntry, CollectionInfo, DatabaseInfo};
use crate::proxy::{GroupBy, Ranker};

mod requests;
pub use requests::milvus_request;

fn roundtrip<T>(data: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let kind = ObjectKind::CatalogEntry;
    for bytes in [data.to_vec(), format::wrap(kind, data)] {
        if let Ok(v) = format::decode::<T>(kind, &bytes) {
            assert_eq!(
                format::decode::<T>(kind, &format::encode(kind, &v)).ok(),
                Some(v)
            );
        }
    }
}

/// Catalog entries as the coordinator reads them back (collections, databases,
/// aliases); the first byte picks which.
pub fn catalog_entry(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 3 {
        0 => roundtrip::<CollectionInfo>(rest),
        1 => roundtrip::<DatabaseInfo>(rest),
        _ => roundtrip::<AliasEntry>(rest),
    }
}

pub(crate) fn fuzz_schema() -> CollectionSchema {
    CollectionSchema::new(
        "fuzz",
        vec![
            FieldSchema::new("id", DataType::Int64).primary(false),
            FieldSchema::new("tag", DataType::VarChar { max_length: 16 }),
            FieldSchema::new("v", DataType::FloatVector { dim: 4 }),
        ],
        false,
    )
    .expect("a valid schema")
}

/// Search parameters as key-value pairs: the input is text, one `key=value` per line.
pub fn search_params(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let kvs: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _ = quiver_ann::index::SearchParams::from_milvus(
        kvs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    for subs in [0, 1, 3] {
        let _ = Ranker::parse(&kvs, subs);
    }
    let inner: serde_json::Map<String, serde_json::Value> = kvs
        .get("params")
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    let schema = fuzz_schema();
    for groups in [0, 1, 10, usize::MAX / 2] {
        if let Ok(Some(g)) = GroupBy::parse(&schema, &kvs, &inner, groups) {
            assert!(g.size >= 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seeds() -> Vec<Vec<u8>> {
        let schema = fuzz_schema();
        let info = CollectionInfo {
            id: quiver_core::ids::CollectionId(7),
            db: "default".into(),
            schema,
            shards: 2,
            consistency_level: 1,
            properties: vec![("k".into(), "v".into())],
            partitions: vec![],
            indexes: vec![],
            load: crate::coordinator::Load::Partitions(vec![quiver_core::ids::PartitionId(3)]),
            created_ts: 9,
            pchannels: vec!["quiver-dml_1".into(), "quiver-dml_0".into()],
        };
        let kind = ObjectKind::CatalogEntry;
        let with = |sel: u8, body: Vec<u8>| {
            let mut v = vec![sel];
            v.extend(body);
            v
        };
        vec![
            with(0, format::encode(kind, &info)),
            with(
                1,
                format::encode(
                    kind,
                    &DatabaseInfo {
                        id: 5,
                        name: "shop".into(),
                        created_ts: 1,
                        properties: vec![],
                    },
                ),
            ),
            b"group_by_field=tag\ngroup_size=3\nstrict_group_size=true\nef=64".to_vec(),
            b"strategy=weighted\nparams={\"weights\":[0.5,1,0.2],\"norm_score\":false}".to_vec(),
            b"strategy=rrf\nparams={\"k\":60}\nrefine_k=2.5\nnprobe=8".to_vec(),
        ]
        .into_iter()
        .chain(requests::seeds())
        .collect()
    }

    fn all(data: &[u8]) {
        catalog_entry(data);
        search_params(data);
        milvus_request(data);
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
            which in 0usize..8,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
        ) {
            all(&quiver_core::fuzzing::mutate(seeds().swap_remove(which), &edits));
        }
    }
}
