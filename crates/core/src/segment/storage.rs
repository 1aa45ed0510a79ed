//! Writing sealed segments to object storage and loading them back.
//!
//! Layout under the store's root, modelled on Milvus's binlog paths:
//! `insert_log/<collection>/<partition>/<segment>/<field>`,
//! `insert_log/<collection>/<partition>/<segment>/ts`,
//! `stats_log/<collection>/<partition>/<segment>/pk`,
//! `delta_log/<collection>/<partition>/<segment>/<log>`.
//! The list of a segment's objects ([`SegmentFiles`]) lives in the meta store; an object
//! that no meta entry names is garbage from an interrupted flush.

use std::sync::Arc;

use bytes::Bytes;
use object_store::{path::Path, ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::format::{self, FormatError, ObjectKind};
use super::{DeleteRecord, PkStats, SealedSegment, SegmentData, SegmentView};
use crate::batch::FieldColumn;
use crate::ids::{CollectionId, FieldId, PartitionId, SegmentId};
use crate::schema::{CollectionSchema, DataType};
use crate::tso::Timestamp;

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("object store error at {path}: {source}")]
    Store {
        path: String,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot read {path}: {source}")]
    Format {
        path: String,
        #[source]
        source: FormatError,
    },
    #[error("segment object {path} does not match the segment: {reason}")]
    Inconsistent { path: String, reason: String },
}

/// Where a sealed segment's objects are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentFiles {
    pub id: SegmentId,
    pub partition: PartitionId,
    pub num_rows: u64,
    pub binlogs: Vec<(FieldId, String)>,
    pub ts_log: String,
    pub stats_log: String,
    pub deltalogs: Vec<String>,
}

/// A segment's objects live under the writer's epoch: a writer that lost its vchannel
/// and has not noticed yet can never overwrite what the new owner wrote for the same
/// segment id.
fn seg_dir(kind: &str, c: CollectionId, p: PartitionId, s: SegmentId, writer: u64) -> String {
    format!("{kind}/{c}/{p}/{s}/e{writer}")
}

async fn put(store: &dyn ObjectStore, path: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
    store
        .put(&Path::from(path), PutPayload::from(Bytes::from(bytes)))
        .await
        .map_err(|source| StorageError::Store {
            path: path.to_string(),
            source,
        })?;
    Ok(())
}

async fn get(store: &dyn ObjectStore, path: &str) -> Result<Bytes, StorageError> {
    let map = |source| StorageError::Store {
        path: path.to_string(),
        source,
    };
    store
        .get(&Path::from(path))
        .await
        .map_err(map)?
        .bytes()
        .await
        .map_err(map)
}

fn decode_at<T: serde::de::DeserializeOwned>(
    kind: ObjectKind,
    path: &str,
    bytes: &[u8],
) -> Result<T, StorageError> {
    format::decode(kind, bytes).map_err(|source| StorageError::Format {
        path: path.to_string(),
        source,
    })
}

/// Writes every object of a sealed segment (not its unflushed deletes; see
/// [`write_deltalog`]) and returns their locations.
pub async fn write_sealed(
    store: &Arc<dyn ObjectStore>,
    collection: CollectionId,
    seg: &SealedSegment,
    writer: u64,
) -> Result<SegmentFiles, StorageError> {
    let (c, p, s) = (collection, seg.partition, seg.id);
    let data = seg.data();
    let mut binlogs = Vec::with_capacity(data.columns.len());
    for col in &data.columns {
        let path = format!(
            "{}/{}",
            seg_dir("insert_log", c, p, s, writer),
            col.field_id
        );
        put(
            store.as_ref(),
            &path,
            format::encode(ObjectKind::FieldBinlog, col),
        )
        .await?;
        binlogs.push((col.field_id, path));
    }
    let ts_log = format!("{}/ts", seg_dir("insert_log", c, p, s, writer));
    put(
        store.as_ref(),
        &ts_log,
        format::encode(ObjectKind::TimestampLog, &data.timestamps),
    )
    .await?;
    let stats_log = format!("{}/pk", seg_dir("stats_log", c, p, s, writer));
    put(
        store.as_ref(),
        &stats_log,
        format::encode(ObjectKind::PkStats, seg.stats()),
    )
    .await?;
    Ok(SegmentFiles {
        id: s,
        partition: p,
        num_rows: data.num_rows() as u64,
        binlogs,
        ts_log,
        stats_log,
        deltalogs: Vec::new(),
    })
}

/// Writes one delete log of a segment; returns its location.
pub async fn write_deltalog(
    store: &Arc<dyn ObjectStore>,
    collection: CollectionId,
    partition: PartitionId,
    segment: SegmentId,
    log_id: u64,
    records: &[DeleteRecord],
    writer: u64,
) -> Result<String, StorageError> {
    let path = format!(
        "{}/{log_id}",
        seg_dir("delta_log", collection, partition, segment, writer)
    );

    put(
        store.as_ref(),
        &path,
        format::encode(ObjectKind::DeltaLog, &records),
    )
    .await?;
    Ok(path)
}

fn check_column(
    path: &str,
    col: &FieldColumn,
    expected: FieldId,
    dt: &DataType,
    rows: usize,
) -> Result<(), StorageError> {
    let bad = |reason: String| {
        Err(StorageError::Inconsistent {
            path: path.to_string(),
            reason,
        })
    };
    if col.field_id != expected {
        return bad(format!(
            "holds field {}, expected {}",
            col.field_id, expected
        ));
    }
    if !col.data.matches_type(dt) {
        return bad(format!(
            "holds {} data, schema says {}",
            col.data.type_name(),
            dt.name()
        ));
    }
    if let (
        crate::batch::ColumnData::FloatVector { dim, data },
        DataType::FloatVector { dim: want },
    ) = (&col.data, dt)
    {
        if dim != want || data.len() != rows * *want as usize {
            return bad(format!(
                "vector dim {dim} x {} values, expected dim {want} x {rows} rows",
                data.len()
            ));
        }
    }
    if col.data.len() != rows {
        return bad(format!("{} rows, segment has {rows}", col.data.len()));
    }
    if let Some(v) = &col.valid {
        if v.len() != rows {
            return bad(format!(
                "{} validity flags, segment has {rows} rows",
                v.len()
            ));
        }
    }
    Ok(())
}

/// Loads a sealed segment, verifying every object against the schema and each other.
pub async fn load_sealed(
    store: &Arc<dyn ObjectStore>,
    schema: &CollectionSchema,
    files: &SegmentFiles,
) -> Result<SealedSegment, StorageError> {
    let rows = files.num_rows as usize;
    let ts_bytes = get(store.as_ref(), &files.ts_log).await?;
    let timestamps: Vec<Timestamp> = decode_at(ObjectKind::TimestampLog, &files.ts_log, &ts_bytes)?;
    if timestamps.len() != rows {
        return Err(StorageError::Inconsistent {
            path: files.ts_log.clone(),
            reason: format!("{} timestamps, segment has {rows} rows", timestamps.len()),
        });
    }
    let mut columns = Vec::with_capacity(schema.fields.len());
    for field in &schema.fields {
        let Some((_, path)) = files.binlogs.iter().find(|(id, _)| *id == field.id) else {
            return Err(StorageError::Inconsistent {
                path: format!("segment {}", files.id),
                reason: format!("no binlog for field {:?}", field.name),
            });
        };
        let bytes = get(store.as_ref(), path).await?;
        let col: FieldColumn = decode_at(ObjectKind::FieldBinlog, path, &bytes)?;
        check_column(path, &col, field.id, &field.data_type, rows)?;
        columns.push(col);
    }
    let stats_bytes = get(store.as_ref(), &files.stats_log).await?;
    let stats: PkStats = decode_at(ObjectKind::PkStats, &files.stats_log, &stats_bytes)?;
    let mut deletes = Vec::new();
    for path in &files.deltalogs {
        let bytes = get(store.as_ref(), path).await?;
        let recs: Vec<DeleteRecord> = decode_at(ObjectKind::DeltaLog, path, &bytes)?;
        deletes.extend(recs);
    }
    Ok(SealedSegment::from_parts(
        files.id,
        files.partition,
        schema,
        SegmentData {
            columns,
            timestamps,
        },
        stats,
        deletes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::{batch, schema};
    use crate::batch::Pk;
    use crate::segment::GrowingSegment;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn flush_and_load_roundtrip_and_corruption_is_refused() {
        let schema = Arc::new(schema());
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mut g = GrowingSegment::new(SegmentId(7), PartitionId(2), schema.clone());
        g.insert(&batch(&[1, 2, 3]), Timestamp(5));
        g.delete(&Pk::Int(2), Timestamp(6));
        let sealed = g.seal();
        let mut files = write_sealed(&store, CollectionId(1), &sealed, 1)
            .await
            .unwrap();
        let log = write_deltalog(
            &store,
            CollectionId(1),
            PartitionId(2),
            SegmentId(7),
            1,
            sealed.unflushed_deletes(),
            1,
        )
        .await
        .unwrap();
        files.deltalogs.push(log);

        let loaded = load_sealed(&store, &schema, &files).await.unwrap();
        assert_eq!(loaded.num_rows(), 3);
        assert_eq!(loaded.data().columns, sealed.data().columns);
        assert!(!loaded.is_visible(1, Timestamp(10)));
        assert!(loaded.is_visible(0, Timestamp(10)));

        // Flip a byte in the vector binlog: refused with a clear error.
        let path = files.binlogs[2].1.clone();
        let mut bytes = store
            .get(&Path::from(path.as_str()))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        bytes[20] ^= 0x55;
        store
            .put(&Path::from(path.as_str()), PutPayload::from(bytes))
            .await
            .unwrap();
        let err = load_sealed(&store, &schema, &files).await.unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        assert!(err.to_string().contains(&path), "{err}");

        // A valid object of the wrong field is refused too.
        let other = store
            .get(&Path::from(files.binlogs[0].1.as_str()))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        store
            .put(&Path::from(path.as_str()), PutPayload::from(other))
            .await
            .unwrap();
        let err = load_sealed(&store, &schema, &files).await.unwrap_err();
        assert!(matches!(err, StorageError::Inconsistent { .. }), "{err}");
    }
}
