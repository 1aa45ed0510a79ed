//! Changes to one collection's catalog entry (load and release, indexes, partitions)
//! and the rules the coordinator applies to them.

use quiver_core::ids::PartitionId;
use serde::{Deserialize, Serialize};

use crate::error::{code, ApiError, ApiResult};

use super::catalog::*;

/// A change to one collection's catalog entry. The coordinator owns the rules.

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CatalogChange {
    /// LoadCollection (every partition) or ReleaseCollection.
    SetLoaded(bool),
    /// LoadPartitions: adds these to what is loaded.
    LoadPartitions(Vec<String>),
    /// ReleasePartitions: takes these out; releasing the last releases the collection.
    ReleasePartitions(Vec<String>),
    AddIndex(IndexInfo),
    /// Empty strings match any index / field.
    DropIndex {
        index_name: String,
        field_name: String,
    },
    AddPartition(PartitionInfo),
    DropPartition(String),
}

impl CatalogChange {
    pub(super) fn apply(self, i: &mut CollectionInfo) -> ApiResult<()> {
        match self {
            CatalogChange::SetLoaded(l) => {
                if l {
                    i.check_indexed()?;
                }
                i.load = if l { Load::Collection } else { Load::NotLoaded };
                Ok(())
            }
            CatalogChange::LoadPartitions(names) => load_partitions(i, &names),
            CatalogChange::ReleasePartitions(names) => release_partitions(i, &names),
            CatalogChange::AddIndex(idx) => add_index(i, idx),
            CatalogChange::DropIndex {
                index_name,
                field_name,
            } => drop_index(i, &index_name, &field_name),
            CatalogChange::AddPartition(p) => add_partition(i, p),
            CatalogChange::DropPartition(name) => drop_partition(i, &name),
        }
    }
}

fn partition_ids(i: &CollectionInfo, names: &[String]) -> ApiResult<Vec<PartitionId>> {
    names.iter().map(|n| i.partition(n).map(|p| p.id)).collect()
}

/// LoadPartitions adds to what is loaded (loading the whole collection covers them).
fn load_partitions(i: &mut CollectionInfo, names: &[String]) -> ApiResult<()> {
    i.check_indexed()?;
    let ids = partition_ids(i, names)?;
    match &mut i.load {
        Load::Collection => {}
        Load::NotLoaded => i.load = Load::Partitions(ids),
        Load::Partitions(ps) => {
            for id in ids {
                if !ps.contains(&id) {
                    ps.push(id);
                }
            }
        }
    }
    Ok(())
}

/// ReleasePartitions takes these out; releasing the last releases the collection.
fn release_partitions(i: &mut CollectionInfo, names: &[String]) -> ApiResult<()> {
    let ids = partition_ids(i, names)?;
    let left: Vec<PartitionId> = i
        .partitions
        .iter()
        .map(|p| p.id)
        .filter(|id| i.partition_loaded(*id) && !ids.contains(id))
        .collect();
    if !ids.is_empty() {
        i.load = if left.is_empty() {
            Load::NotLoaded
        } else {
            Load::Partitions(left)
        };
    }
    Ok(())
}

/// At most one distinct index per field, names unique; the same index again is a no-op.
fn add_index(i: &mut CollectionInfo, idx: IndexInfo) -> ApiResult<()> {
    if let Some(existing) = i.indexes.iter().find(|x| x.field_name == idx.field_name) {
        if existing.params == idx.params && existing.name == idx.name {
            return Ok(());
        }
        return Err(ApiError::new(
            code::INDEX_DUPLICATE,
            "CreateIndex failed: at most one distinct index is allowed per field",
        ));
    }
    if i.indexes.iter().any(|x| x.name == idx.name) {
        return Err(ApiError::new(
            code::INDEX_DUPLICATE,
            format!("index name {} is already used", idx.name),
        ));
    }
    i.indexes.push(idx);
    Ok(())
}

/// Empty names match any index / field; a loaded collection keeps its indexes.
fn drop_index(i: &mut CollectionInfo, index_name: &str, field_name: &str) -> ApiResult<()> {
    let pos = i
        .indexes
        .iter()
        .position(|x| {
            (index_name.is_empty() || x.name == index_name)
                && (field_name.is_empty() || x.field_name == field_name)
        })
        .ok_or_else(|| {
            ApiError::new(
                code::INDEX_NOT_FOUND,
                format!("index not found[index={index_name}]"),
            )
        })?;
    if i.loaded() {
        return Err(ApiError::invalid(
            "index cannot be dropped, collection is loaded, please release it first",
        ));
    }
    i.indexes.remove(pos);
    Ok(())
}

fn add_partition(i: &mut CollectionInfo, p: PartitionInfo) -> ApiResult<()> {
    if i.partitions.iter().any(|x| x.name == p.name) {
        return Err(ApiError::new(
            code::NOT_READY,
            format!("partition already exists: {}", p.name),
        ));
    }
    if i.partitions.len() >= 1024 {
        return Err(ApiError::invalid(
            "a collection has at most 1024 partitions",
        ));
    }
    i.partitions.push(p);
    Ok(())
}

fn drop_partition(i: &mut CollectionInfo, name: &str) -> ApiResult<()> {
    if name == DEFAULT_PARTITION {
        return Err(ApiError::invalid("the default partition cannot be dropped"));
    }
    if i.partitions
        .iter()
        .any(|p| p.name == name && i.partition_loaded(p.id))
    {
        return Err(ApiError::invalid(
            "partition cannot be dropped, partition is loaded, please release it first",
        ));
    }
    // Its rows become invisible at once: reads cover live partitions only.
    i.partitions.retain(|p| p.name != name);
    if let Load::Partitions(ps) = &mut i.load {
        let live: Vec<PartitionId> = i.partitions.iter().map(|p| p.id).collect();
        ps.retain(|id| live.contains(id));
    }
    Ok(())
}
