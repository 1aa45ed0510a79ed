//! Segments: the unit of data a shard grows, seals, flushes, indexes and hands off.
//!
//! A [`GrowingSegment`] takes appends in memory; every row carries its insert
//! timestamp, and reads see the state as of a read timestamp. Sealing freezes it into
//! a [`SealedSegment`], which is what gets written to object storage (one object per
//! field, a timestamp log, primary-key statistics, delete logs; see [`format`]) and
//! loaded back on a query node.

pub mod bloom;
pub mod deletes;
pub mod format;
pub mod storage;

use std::collections::HashMap;
use std::sync::Arc;

use crate::batch::{pk_column, Batch, ColumnData, FieldColumn, Pk};
use crate::ids::{FieldId, PartitionId, SegmentId};
use crate::schema::CollectionSchema;
use crate::tso::Timestamp;

pub use bloom::Bloom;
pub use deletes::{DeleteRecord, DeleteSet};

/// Rows of a segment in columnar form, with their insert timestamps.
#[derive(Debug, Clone)]
pub struct SegmentData {
    pub columns: Vec<FieldColumn>,
    pub timestamps: Vec<Timestamp>,
}

impl SegmentData {
    pub fn empty(schema: &CollectionSchema) -> Self {
        SegmentData {
            columns: schema
                .fields
                .iter()
                .map(|f| FieldColumn {
                    field_id: f.id,
                    data: ColumnData::empty(&f.data_type),
                    valid: f.nullable.then(Vec::new),
                })
                .collect(),
            timestamps: Vec::new(),
        }
    }

    pub fn num_rows(&self) -> usize {
        self.timestamps.len()
    }

    pub fn column(&self, field: FieldId) -> Option<&FieldColumn> {
        self.columns.iter().find(|c| c.field_id == field)
    }

    fn append(&mut self, batch: &Batch, ts: Timestamp) {
        for (col, new) in self.columns.iter_mut().zip(&batch.columns) {
            debug_assert_eq!(col.field_id, new.field_id);
            col.data.extend_from(&new.data);
            if let Some(valid) = &mut col.valid {
                match &new.valid {
                    Some(v) => valid.extend_from_slice(v),
                    None => valid.extend(std::iter::repeat_n(true, batch.num_rows)),
                }
            }
        }
        self.timestamps
            .extend(std::iter::repeat_n(ts, batch.num_rows));
    }

    /// The rows at `rows` as a batch (all fields).
    pub fn take(&self, rows: &[usize]) -> Batch {
        Batch {
            num_rows: rows.len(),
            columns: self
                .columns
                .iter()
                .map(|c| FieldColumn {
                    field_id: c.field_id,
                    data: c.data.take(rows),
                    valid: c
                        .valid
                        .as_ref()
                        .map(|v| rows.iter().map(|&i| v[i]).collect()),
                })
                .collect(),
        }
    }
}

/// What search and query need from any segment, growing or sealed.
pub trait SegmentView: Send + Sync {
    fn id(&self) -> SegmentId;
    fn partition(&self) -> PartitionId;
    fn data(&self) -> &SegmentData;
    fn pk(&self, row: usize) -> &Pk;
    fn deletes(&self) -> &DeleteSet;

    fn num_rows(&self) -> usize {
        self.data().num_rows()
    }

    /// Whether `row` exists and is not deleted as seen at `read_ts`.
    fn is_visible(&self, row: usize, read_ts: Timestamp) -> bool {
        let ts = self.data().timestamps[row];
        ts <= read_ts && !self.deletes().is_deleted(self.pk(row), ts, read_ts)
    }
}

/// Row lookup by primary key.
#[derive(Debug, Clone, Default)]
struct PkIndex {
    pks: Vec<Pk>,
    rows: HashMap<Pk, Vec<u32>>,
}

impl PkIndex {
    fn extend(&mut self, pks: Vec<Pk>) {
        for pk in pks {
            let row = self.pks.len() as u32;
            self.rows.entry(pk.clone()).or_default().push(row);
            self.pks.push(pk);
        }
    }
    fn contains(&self, pk: &Pk) -> bool {
        self.rows.contains_key(pk)
    }
}

/// An in-memory segment taking appends.
#[derive(Debug, Clone)]
pub struct GrowingSegment {
    pub id: SegmentId,
    pub partition: PartitionId,
    schema: Arc<CollectionSchema>,
    data: SegmentData,
    pk_index: PkIndex,
    deletes: DeleteSet,
    /// Deletes applied here that are not in any delete log yet.
    unflushed_deletes: Vec<DeleteRecord>,
}

impl GrowingSegment {
    pub fn new(id: SegmentId, partition: PartitionId, schema: Arc<CollectionSchema>) -> Self {
        GrowingSegment {
            id,
            partition,
            data: SegmentData::empty(&schema),
            schema,
            pk_index: PkIndex::default(),
            deletes: DeleteSet::default(),
            unflushed_deletes: Vec::new(),
        }
    }

    /// Appends a validated batch whose rows all carry `ts`.
    pub fn insert(&mut self, batch: &Batch, ts: Timestamp) {
        self.data.append(batch, ts);
        self.pk_index.extend(batch.pks(&self.schema));
    }

    /// Records a delete if this segment holds the key; returns whether it did.
    pub fn delete(&mut self, pk: &Pk, ts: Timestamp) -> bool {
        if !self.pk_index.contains(pk) {
            return false;
        }
        self.deletes.add(pk.clone(), ts);
        self.unflushed_deletes
            .push(DeleteRecord { pk: pk.clone(), ts });
        true
    }

    /// Freezes the segment. Its deletes so far become the sealed segment's first
    /// unflushed delete log.
    pub fn seal(self) -> SealedSegment {
        let mut stats = PkStats::new(self.pk_index.pks.len());
        for pk in &self.pk_index.pks {
            stats.add(pk);
        }
        SealedSegment {
            id: self.id,
            partition: self.partition,
            data: Arc::new(self.data),
            pks: self.pk_index.pks.into(),
            pk_rows: Arc::new(self.pk_index.rows),
            stats: Arc::new(stats),
            deletes: self.deletes,
            unflushed_deletes: self.unflushed_deletes,
        }
    }
}

impl SegmentView for GrowingSegment {
    fn id(&self) -> SegmentId {
        self.id
    }
    fn partition(&self) -> PartitionId {
        self.partition
    }
    fn data(&self) -> &SegmentData {
        &self.data
    }
    fn pk(&self, row: usize) -> &Pk {
        &self.pk_index.pks[row]
    }
    fn deletes(&self) -> &DeleteSet {
        &self.deletes
    }
}

/// Primary-key statistics of a sealed segment.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PkStats {
    pub min: Option<Pk>,
    pub max: Option<Pk>,
    pub bloom: Bloom,
}

impl PkStats {
    pub fn new(expected: usize) -> Self {
        PkStats {
            min: None,
            max: None,
            bloom: Bloom::with_capacity(expected, 0.001),
        }
    }

    pub fn add(&mut self, pk: &Pk) {
        if self.min.as_ref().is_none_or(|m| pk < m) {
            self.min = Some(pk.clone());
        }
        if self.max.as_ref().is_none_or(|m| pk > m) {
            self.max = Some(pk.clone());
        }
        self.bloom.insert(pk);
    }

    /// False only when the key is certainly not in the segment.
    pub fn may_contain(&self, pk: &Pk) -> bool {
        match (&self.min, &self.max) {
            (Some(lo), Some(hi)) => pk >= lo && pk <= hi && self.bloom.may_contain(pk),
            _ => false,
        }
    }
}

/// An immutable segment. The row data is shared; deletes keep arriving.
#[derive(Debug, Clone)]
pub struct SealedSegment {
    pub id: SegmentId,
    pub partition: PartitionId,
    data: Arc<SegmentData>,
    pks: Arc<[Pk]>,
    pk_rows: Arc<HashMap<Pk, Vec<u32>>>,
    stats: Arc<PkStats>,
    deletes: DeleteSet,
    unflushed_deletes: Vec<DeleteRecord>,
}

impl SealedSegment {
    /// Builds a sealed segment from loaded parts.
    pub fn from_parts(
        id: SegmentId,
        partition: PartitionId,
        schema: &CollectionSchema,
        data: SegmentData,
        stats: PkStats,
        deletes: impl IntoIterator<Item = DeleteRecord>,
    ) -> Self {
        let pos = schema
            .position(schema.primary_field().id)
            .expect("primary key");
        let pks: Vec<Pk> = pk_column(&data.columns[pos].data);
        let mut pk_rows: HashMap<Pk, Vec<u32>> = HashMap::with_capacity(pks.len());
        for (i, pk) in pks.iter().enumerate() {
            pk_rows.entry(pk.clone()).or_default().push(i as u32);
        }
        let mut set = DeleteSet::default();
        for d in deletes {
            set.add(d.pk, d.ts);
        }
        SealedSegment {
            id,
            partition,
            data: Arc::new(data),
            pks: pks.into(),
            pk_rows: Arc::new(pk_rows),
            stats: Arc::new(stats),
            deletes: set,
            unflushed_deletes: Vec::new(),
        }
    }

    pub fn stats(&self) -> &PkStats {
        &self.stats
    }

    pub fn shared_data(&self) -> Arc<SegmentData> {
        self.data.clone()
    }

    /// Records a delete if this segment holds the key; returns whether it did.
    pub fn delete(&mut self, pk: &Pk, ts: Timestamp) -> bool {
        if !self.stats.may_contain(pk) || !self.pk_rows.contains_key(pk) {
            return false;
        }
        self.deletes.add(pk.clone(), ts);
        self.unflushed_deletes
            .push(DeleteRecord { pk: pk.clone(), ts });
        true
    }

    /// Deletes not yet written to a delete log.
    pub fn unflushed_deletes(&self) -> &[DeleteRecord] {
        &self.unflushed_deletes
    }

    /// Called once the unflushed deletes are durably in a delete log.
    pub fn mark_deletes_flushed(&mut self, count: usize) {
        self.unflushed_deletes.drain(..count);
    }
}

impl SegmentView for SealedSegment {
    fn id(&self) -> SegmentId {
        self.id
    }
    fn partition(&self) -> PartitionId {
        self.partition
    }
    fn data(&self) -> &SegmentData {
        &self.data
    }
    fn pk(&self, row: usize) -> &Pk {
        &self.pks[row]
    }
    fn deletes(&self) -> &DeleteSet {
        &self.deletes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::{batch, schema};

    #[test]
    fn growing_segment_reads_as_of_a_timestamp() {
        let s = Arc::new(schema());
        let mut g = GrowingSegment::new(SegmentId(1), PartitionId(1), s);
        g.insert(&batch(&[1, 2]), Timestamp(10));
        g.insert(&batch(&[3]), Timestamp(20));
        assert!(g.delete(&Pk::Int(1), Timestamp(15)));
        assert!(!g.delete(&Pk::Int(9), Timestamp(15)));
        let visible = |g: &GrowingSegment, r| {
            (0..g.num_rows())
                .filter(|&i| g.is_visible(i, Timestamp(r)))
                .map(|i| g.pk(i).clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(visible(&g, 9), vec![]);
        assert_eq!(visible(&g, 10), vec![Pk::Int(1), Pk::Int(2)]);
        assert_eq!(visible(&g, 15), vec![Pk::Int(2)]);
        assert_eq!(visible(&g, 25), vec![Pk::Int(2), Pk::Int(3)]);

        let mut sealed = g.seal();
        assert_eq!(sealed.unflushed_deletes().len(), 1);
        assert!(sealed.is_visible(1, Timestamp(25)));
        assert!(!sealed.is_visible(0, Timestamp(25)));
        assert!(sealed.delete(&Pk::Int(3), Timestamp(30)));
        assert!(!sealed.delete(&Pk::Int(42), Timestamp(30)));
        assert!(!sealed.is_visible(2, Timestamp(30)));
        assert!(sealed.stats().may_contain(&Pk::Int(2)));
        assert!(!sealed.stats().may_contain(&Pk::Int(100)));
    }
}
