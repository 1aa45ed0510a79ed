//! DDL for collections: create, drop, has, describe, show, statistics, and load and
//! release (of a whole collection or of some partitions).

use quiver_core::schema::validate_name;
use quiver_core::tso::Timestamp;

use super::context::{ok, Ctx};
use super::{schema_from_proto, schema_to_proto, Proxy};
use crate::coordinator::CatalogChange;
use crate::error::{code, ok_status, ApiError, ApiResult};
use crate::pb::common::{KeyValuePair, Status};
use crate::pb::milvus::*;

/// Most shards a collection may have.
const MAX_SHARDS: u32 = 16;

/// Most fields a collection may have (Milvus's `proxy.maxFieldNum`), not counting
/// the dynamic field's `$meta`, which the server adds.
pub(super) const MAX_FIELDS: usize = 64;

/// Refuses a schema with more than [`MAX_FIELDS`] user fields.
pub(super) fn check_field_count(proto: &crate::pb::schema::CollectionSchema) -> ApiResult<()> {
    let n = proto.fields.iter().filter(|f| !f.is_dynamic).count();
    if n > MAX_FIELDS {
        return Err(ApiError::invalid(format!(
            "maximum field's number should be limited to {MAX_FIELDS}, got {n}"
        )));
    }
    Ok(())
}

impl Proxy {
    pub(super) async fn do_create_collection(
        &self,
        ctx: &Ctx,
        r: CreateCollectionRequest,
    ) -> ApiResult<Status> {
        validate_name(&r.collection_name).map_err(|e| ApiError::invalid(e.to_string()))?;
        let proto: crate::pb::schema::CollectionSchema =
            prost::Message::decode(r.schema.as_slice()).map_err(|e| {
                ApiError::new(code::ILLEGAL_SCHEMA, format!("undecodable schema: {e}"))
            })?;
        check_field_count(&proto)?;
        let schema = schema_from_proto(&proto, &r.collection_name)?;
        let shards = if r.shards_num <= 0 {
            1
        } else {
            r.shards_num as u32
        };
        if shards > MAX_SHARDS {
            return Err(ApiError::invalid(format!(
                "shards_num {shards} exceeds the limit of {MAX_SHARDS}"
            )));
        }
        let props = r
            .properties
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();
        let info = self
            .coord
            .create(&ctx.db, schema, shards, r.consistency_level, props)
            .await?;
        self.shards(&info).open().await?;
        Ok(ok_status())
    }

    pub(super) async fn do_drop_collection(
        &self,
        ctx: &Ctx,
        r: DropCollectionRequest,
    ) -> ApiResult<Status> {
        if let Some(info) = self
            .coord
            .drop_collection(&ctx.db, &r.collection_name)
            .await?
        {
            self.streaming.drop_collection(info).await?;
        }
        Ok(ok_status())
    }

    pub(super) async fn do_has_collection(
        &self,
        ctx: &Ctx,
        r: HasCollectionRequest,
    ) -> ApiResult<BoolResponse> {
        let value = self.coord.get(&ctx.db, &r.collection_name).await.is_ok();
        ok(BoolResponse {
            value,
            ..Default::default()
        })
    }

    pub(super) async fn do_load_collection(
        &self,
        ctx: &Ctx,
        r: LoadCollectionRequest,
    ) -> ApiResult<Status> {
        self.load(&ctx.db, &r.collection_name, &[]).await
    }

    /// Loads the whole collection, or (`partitions` non-empty) just those partitions.
    pub(super) async fn load(
        &self,
        db: &str,
        name: &str,
        partitions: &[String],
    ) -> ApiResult<Status> {
        let info = self.coord.get(db, name).await?;
        for p in partitions {
            info.partition(p)?;
        }
        info.check_indexed()?;
        // Opening the shards recovers them; only then is the collection served.
        self.shards(&info).open().await?;
        let change = if partitions.is_empty() {
            CatalogChange::SetLoaded(true)
        } else {
            CatalogChange::LoadPartitions(partitions.to_vec())
        };
        // The collection checked and opened above, even if an alias moved meanwhile;
        // the change itself re-checks the indexes under the catalog lock.
        self.coord.change(db, info.name(), change).await?;
        Ok(ok_status())
    }

    pub(super) async fn do_release_collection(
        &self,
        ctx: &Ctx,
        r: ReleaseCollectionRequest,
    ) -> ApiResult<Status> {
        self.coord
            .change(&ctx.db, &r.collection_name, CatalogChange::SetLoaded(false))
            .await?;
        Ok(ok_status())
    }

    pub(super) async fn do_describe_collection(
        &self,
        ctx: &Ctx,
        r: DescribeCollectionRequest,
    ) -> ApiResult<DescribeCollectionResponse> {
        let db = &ctx.db;
        let info = self.coord.get(db, &r.collection_name).await?;
        let aliases = self.coord.list_aliases(db, Some(info.name())).await?;
        ok(DescribeCollectionResponse {
            aliases,
            schema: Some(schema_to_proto(&info.schema)),
            collection_id: info.id.0,
            virtual_channel_names: info.vchannels().iter().map(|v| v.0.clone()).collect(),
            physical_channel_names: info.vchannels().iter().map(|v| v.pchannel().0).collect(),
            created_timestamp: info.created_ts,
            created_utc_timestamp: Timestamp(info.created_ts).physical_ms(),
            shards_num: info.shards as i32,
            consistency_level: info.consistency_level,
            collection_name: info.name().to_string(),
            properties: info
                .properties
                .iter()
                .map(|(k, v)| KeyValuePair {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            db_name: info.db.clone(),
            num_partitions: info.partitions.len() as i64,
            update_timestamp: info.created_ts,
            ..Default::default()
        })
    }

    pub(super) async fn do_get_collection_statistics(
        &self,
        ctx: &Ctx,
        r: GetCollectionStatisticsRequest,
    ) -> ApiResult<GetCollectionStatisticsResponse> {
        let info = self.coord.get(&ctx.db, &r.collection_name).await?;
        let parts = Self::partitions_named(&info, &[])?;
        let n = self.row_count(&info, &parts).await?;
        ok(GetCollectionStatisticsResponse {
            stats: vec![KeyValuePair {
                key: "row_count".into(),
                value: n.to_string(),
            }],
            ..Default::default()
        })
    }

    pub(super) async fn do_show_collections(
        &self,
        ctx: &Ctx,
        _r: ShowCollectionsRequest,
    ) -> ApiResult<ShowCollectionsResponse> {
        let all = self.coord.list(&ctx.db).await?;
        ok(ShowCollectionsResponse {
            collection_names: all.iter().map(|c| c.name().to_string()).collect(),
            collection_ids: all.iter().map(|c| c.id.0).collect(),
            created_timestamps: all.iter().map(|c| c.created_ts).collect(),
            created_utc_timestamps: all
                .iter()
                .map(|c| Timestamp(c.created_ts).physical_ms())
                .collect(),
            in_memory_percentages: all.iter().map(|c| c.loaded_percent()).collect(),
            query_service_available: all.iter().map(|c| c.loaded()).collect(),
            shards_num: all.iter().map(|c| c.shards as i32).collect(),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests;
