//! DDL for indexes: create (the build parameters checked here, the build itself the
//! data nodes'), describe and drop.

use std::collections::BTreeMap;

use quiver_core::schema::{validate_name, FieldSchema};
use quiver_core::search::Metric;

use super::context::{ok, Ctx};
use super::params;
use super::Proxy;
use crate::coordinator::{CatalogChange, CollectionInfo, IndexInfo};
use crate::error::{code, ok_status, ApiError, ApiResult};
use crate::pb::common::{IndexState, KeyValuePair, Status};
use crate::pb::milvus::*;
use crate::rpc::IndexProgress;

/// The index types Quiver builds.
const INDEX_TYPES: [&str; 6] = [
    "AUTOINDEX",
    "FLAT",
    "HNSW",
    "IVF_FLAT",
    "IVF_SQ8",
    "HNSW_SQ",
];

impl Proxy {
    pub(super) async fn do_create_index(
        &self,
        ctx: &Ctx,
        r: CreateIndexRequest,
    ) -> ApiResult<Status> {
        let mut params = build_params(&r.extra_params);
        let info = self.coord.get(&ctx.db, &r.collection_name).await?;
        let field = indexable_field(info.schema.field(&r.field_name), &r.field_name)?;
        let index_type = index_type(&params)?;
        let metric = metric(&params)?;
        check_build_params(&index_type, &params)?;
        let index_name = if r.index_name.is_empty() {
            r.field_name.clone()
        } else {
            r.index_name.clone()
        };
        validate_name(&index_name).map_err(|e| ApiError::invalid(e.to_string()))?;
        params.remove("index_type");
        params.remove("metric_type");
        let mut all_params: Vec<(String, String)> = params.into_iter().collect();
        all_params.push(("index_type".into(), index_type.clone()));
        all_params.push(("metric_type".into(), metric.as_str().into()));
        all_params.sort();
        let index = IndexInfo {
            id: self.coord.now().await?.0 as i64,
            name: index_name,
            field_name: field.name.clone(),
            index_type,
            metric,
            params: all_params,
        };
        // The collection checked above, even if an alias moved meanwhile.
        let info = self
            .coord
            .change(&ctx.db, info.name(), CatalogChange::AddIndex(index))
            .await?;
        self.tell_streaming(&info).await;
        Ok(ok_status())
    }

    pub(super) async fn do_describe_index(
        &self,
        ctx: &Ctx,
        r: DescribeIndexRequest,
    ) -> ApiResult<DescribeIndexResponse> {
        let info = self.coord.get(&ctx.db, &r.collection_name).await?;
        let mut descs = Vec::new();
        for i in info
            .indexes
            .iter()
            .filter(|i| r.index_name.is_empty() || i.name == r.index_name)
            .filter(|i| r.field_name.is_empty() || i.field_name == r.field_name)
        {
            let progress = self.build_progress(&info, i).await?;
            descs.push(describe(i, progress));
        }
        if descs.is_empty() {
            return Err(ApiError::new(
                code::INDEX_NOT_FOUND,
                format!(
                    "index not found[collection={}][index={}]",
                    r.collection_name, r.index_name
                ),
            ));
        }
        ok(DescribeIndexResponse {
            index_descriptions: descs,
            ..Default::default()
        })
    }

    /// How far index `i` is built and served, summed over the collection's shards
    /// (asked of each shard's owner, which opens the shard if it must: a build needs
    /// no load, so neither does its state).
    async fn build_progress(
        &self,
        info: &CollectionInfo,
        i: &IndexInfo,
    ) -> ApiResult<IndexProgress> {
        let shards = self.shards(info);
        let per_shard =
            super::fanout::all(0..shards.len(), |s| shards.index_state(s, i.id)).await?;
        Ok(per_shard
            .into_iter()
            .fold(IndexProgress::default(), IndexProgress::merge))
    }

    pub(super) async fn do_drop_index(&self, ctx: &Ctx, r: DropIndexRequest) -> ApiResult<Status> {
        let change = CatalogChange::DropIndex {
            index_name: r.index_name.clone(),
            field_name: r.field_name.clone(),
        };
        let info = self
            .coord
            .change(&ctx.db, &r.collection_name, change)
            .await?;
        self.tell_streaming(&info).await;
        Ok(ok_status())
    }

    /// Gives the shards' owners the new catalog entry, so the build of a new index
    /// starts now (as in Milvus, loaded or not) and a dropped one stops being built,
    /// instead of at the next load. The change is made either way; an owner that does
    /// not hear it (its collection damaged, or it is down) learns it when it next
    /// opens the collection.
    async fn tell_streaming(&self, info: &CollectionInfo) {
        if let Err(e) = self.shards(info).open().await {
            tracing::warn!(collection = info.name(), error = %e.reason, "the shards' owners did not take the new index list yet");
        }
    }
}

/// The build parameters of a CreateIndex request. Older clients send them as one JSON
/// object under "params"; its members join the others.
fn build_params(extra: &[KeyValuePair]) -> BTreeMap<String, String> {
    let mut params = params::kv_map(extra);
    if let Some(json) = params.remove("params") {
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(&json) {
            for (k, v) in m {
                let text = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                params.insert(k, text);
            }
        }
    }
    params
}

/// The field `name` (`field`, if found), which must be a vector field.
fn indexable_field<'a>(field: Option<&'a FieldSchema>, name: &str) -> ApiResult<&'a FieldSchema> {
    let field = field.filter(|f| !f.is_dynamic).ok_or_else(|| {
        ApiError::new(
            code::FIELD_NOT_FOUND,
            format!("cannot create index on non-exist field: {name}"),
        )
    })?;
    if !field.data_type.is_vector() {
        return Err(ApiError::invalid(format!(
            "field {:?}: scalar indexes are not supported by Quiver yet (filters on scalar fields work without one)",
            field.name
        )));
    }
    Ok(field)
}

/// The index type asked for, upper-cased (AUTOINDEX when none is).
fn index_type(params: &BTreeMap<String, String>) -> ApiResult<String> {
    let index_type = params
        .get("index_type")
        .cloned()
        .unwrap_or_else(|| "AUTOINDEX".into())
        .to_ascii_uppercase();
    if !INDEX_TYPES.contains(&index_type.as_str()) {
        return Err(ApiError::invalid(format!(
            "invalid index type: {index_type} (supported: AUTOINDEX, FLAT, HNSW, HNSW_SQ, IVF_FLAT, IVF_SQ8)"
        )));
    }
    Ok(index_type)
}

/// The metric asked for (COSINE when none is).
fn metric(params: &BTreeMap<String, String>) -> ApiResult<Metric> {
    let name = params
        .get("metric_type")
        .cloned()
        .unwrap_or_else(|| "COSINE".into());
    Metric::parse(&name).ok_or_else(|| {
        ApiError::invalid(format!(
            "metric type {name} is not supported for float vectors (L2, IP, COSINE)"
        ))
    })
}

/// Checks the build parameters with the builder's own parser
/// ([`quiver_ann::IndexParams::from_milvus`], the one place their ranges live), so
/// an index the data node would refuse to build is refused here, before it exists.
fn check_build_params(index_type: &str, params: &BTreeMap<String, String>) -> ApiResult<()> {
    quiver_ann::IndexParams::from_milvus(index_type, params.iter())
        .map(|_| ())
        .map_err(|e| {
            ApiError::invalid(format!(
                "{e}: invalid parameter[expected=valid index params][actual=invalid index params]"
            ))
        })
}

/// An index as DescribeIndex shows it: type and metric as pairs, the build
/// parameters as one JSON object under "params"; its progress over the sealed
/// segments (InProgress until every one is searched through the index, Finished
/// then, Failed with the reason when a build failed for good).
fn describe(i: &IndexInfo, progress: IndexProgress) -> IndexDescription {
    let build: serde_json::Map<String, serde_json::Value> = i
        .params
        .iter()
        .filter(|(k, _)| k != "index_type" && k != "metric_type")
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let mut params: Vec<KeyValuePair> = i
        .params
        .iter()
        .filter(|(k, _)| k == "index_type" || k == "metric_type")
        .map(|(k, v)| KeyValuePair {
            key: k.clone(),
            value: v.clone(),
        })
        .collect();
    params.push(KeyValuePair {
        key: "params".into(),
        value: serde_json::Value::Object(build).to_string(),
    });
    IndexDescription {
        index_name: i.name.clone(),
        index_id: i.id,
        params,
        field_name: i.field_name.clone(),
        indexed_rows: progress.indexed_rows as i64,
        total_rows: progress.total_rows as i64,
        pending_index_rows: (progress.total_rows - progress.indexed_rows) as i64,
        // Usable as soon as it exists: a segment whose build is pending (or retrying
        // after a passing failure) is searched exactly with the index's metric, and
        // the state says so.
        state: if progress.failure.is_some() {
            IndexState::Failed as i32
        } else if progress.finished() {
            IndexState::Finished as i32
        } else {
            IndexState::InProgress as i32
        },
        index_state_fail_reason: progress.failure.unwrap_or_default(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
