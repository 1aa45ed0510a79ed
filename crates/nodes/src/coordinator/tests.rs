use super::*;
use crate::error::code;
use quiver_core::ids::{CollectionId, PartitionId};
use quiver_core::meta::MemMetaStore;
use quiver_core::schema::CollectionSchema;
use quiver_core::schema::{DataType, FieldSchema};
use quiver_core::search::Metric;
use serde::Serialize;

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

async fn open(meta: &Arc<MemMetaStore>) -> Coordinator {
    let meta: Arc<dyn MetaStore> = meta.clone();
    let tso = Arc::new(TsoAllocator::open(meta.clone(), "tso").await.unwrap());
    Coordinator::open(meta, tso, 4).await.unwrap()
}

fn partition(id: i64, name: &str) -> PartitionInfo {
    PartitionInfo {
        id: PartitionId(id),
        name: name.into(),
        created_ts: 0,
    }
}

#[test]
fn databases_scope_collections_and_survive_reopen() {
    quiver_core::rt::block_on(async {
        let meta = Arc::new(MemMetaStore::new());
        let c = open(&meta).await;
        let missing = c.create("shop", schema("a"), 1, 0, vec![]).await;
        assert_eq!(missing.unwrap_err().code, code::DATABASE_NOT_FOUND);
        c.create_database("shop", vec![("k".into(), "v".into())])
            .await
            .unwrap();
        assert_eq!(
            c.create_database("shop", vec![]).await.unwrap_err().code,
            code::UNEXPECTED
        );
        let a = c.create("shop", schema("a"), 1, 0, vec![]).await;
        let b = c.create(DEFAULT_DB, schema("a"), 1, 0, vec![]).await;
        assert_ne!(a.unwrap().id, b.unwrap().id);
        assert!(c
            .drop_database("shop")
            .await
            .unwrap_err()
            .reason
            .contains("not empty"));
        assert!(c.drop_database(DEFAULT_DB).await.is_err());

        let c = open(&meta).await;
        let names: Vec<String> = c
            .databases()
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.name)
            .collect();
        assert_eq!(names, vec![DEFAULT_DB.to_string(), "shop".to_string()]);
        assert_eq!(c.list("shop").await.unwrap().len(), 1);
        c.drop_collection("shop", "a").await.unwrap();
        c.drop_database("shop").await.unwrap();
        c.drop_database("shop").await.unwrap();
        assert_eq!(
            c.list("shop").await.unwrap_err().code,
            code::DATABASE_NOT_FOUND
        );
        assert_eq!(open(&meta).await.databases().await.unwrap().len(), 1);
    });
}

#[test]
fn partition_loads_follow_milvus_rules() {
    let mut info = CollectionInfo {
        id: CollectionId(1),
        db: DEFAULT_DB.into(),
        schema: schema("c"),
        shards: 1,
        consistency_level: 0,
        properties: vec![],
        partitions: vec![partition(10, "_default"), partition(11, "p1")],
        indexes: vec![],
        load: Load::NotLoaded,
        created_ts: 0,
        pchannels: vec!["quiver-dml_0".into()],
    };
    let apply = |i: &mut CollectionInfo, c: CatalogChange| c.apply(i);
    // Nothing loads without an index on every vector field.
    let err = apply(&mut info, CatalogChange::SetLoaded(true)).unwrap_err();
    assert_eq!(err.code, code::INDEX_NOT_FOUND);
    info.indexes.push(IndexInfo {
        id: 1,
        name: "v".into(),
        field_name: "v".into(),
        index_type: "FLAT".into(),
        metric: Metric::L2,
        params: vec![],
    });
    apply(&mut info, CatalogChange::LoadPartitions(vec!["p1".into()])).unwrap();
    assert!(info.loaded() && info.partition_loaded(PartitionId(11)));
    assert!(!info.partition_loaded(PartitionId(10)) && info.loaded_percent() == 50);
    // Partitions created later are not loaded by a partition load ...
    apply(&mut info, CatalogChange::AddPartition(partition(12, "p2"))).unwrap();
    assert!(!info.partition_loaded(PartitionId(12)));
    let err = apply(&mut info, CatalogChange::DropPartition("p1".into())).unwrap_err();
    assert!(err.reason.contains("release it first"));
    apply(
        &mut info,
        CatalogChange::ReleasePartitions(vec!["p1".into()]),
    )
    .unwrap();
    assert_eq!(info.load, Load::NotLoaded);
    // ... but are by a collection load.
    apply(&mut info, CatalogChange::SetLoaded(true)).unwrap();
    apply(&mut info, CatalogChange::AddPartition(partition(13, "p3"))).unwrap();
    assert!(info.partition_loaded(PartitionId(13)) && info.loaded_percent() == 100);
    apply(
        &mut info,
        CatalogChange::ReleasePartitions(vec!["p3".into()]),
    )
    .unwrap();
    assert_eq!(
        info.load,
        Load::Partitions(vec![PartitionId(10), PartitionId(11), PartitionId(12)])
    );
    let err = apply(
        &mut info,
        CatalogChange::LoadPartitions(vec!["nope".into()]),
    );
    assert_eq!(err.unwrap_err().code, code::PARTITION_NOT_FOUND);
}

#[test]
fn legacy_catalog_entries_still_open() {
    #[derive(Serialize)]
    struct V1<'a> {
        id: CollectionId,
        db: &'a str,
        schema: CollectionSchema,
        shards: u32,
        consistency_level: i32,
        properties: Vec<(String, String)>,
        partitions: Vec<PartitionInfo>,
        indexes: Vec<IndexInfo>,
        loaded: bool,
        created_ts: u64,
    }
    let bytes = format::encode(
        ObjectKind::CatalogEntry,
        &V1 {
            id: CollectionId(7),
            db: DEFAULT_DB,
            schema: schema("old"),
            shards: 2,
            consistency_level: 1,
            properties: vec![],
            partitions: vec![partition(8, "_default")],
            indexes: vec![],
            loaded: true,
            created_ts: 9,
        },
    );
    let info = decode_collection("k", &bytes).unwrap();
    assert_eq!(
        (info.id, info.load, info.shards),
        (CollectionId(7), Load::Collection, 2)
    );
    assert!(decode_collection("k", &bytes[..bytes.len() - 1]).is_err());
}
