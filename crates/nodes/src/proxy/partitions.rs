//! DDL for partitions: create, drop, has, show, statistics, load and release, and
//! the loading state of a collection or its partitions.

use quiver_core::ids::PartitionId;
use quiver_core::schema::validate_name;
use quiver_core::tso::Timestamp;

use super::context::{ok, Ctx};
use super::Proxy;
use crate::coordinator::{CatalogChange, PartitionInfo};
use crate::error::{code, ok_status, ApiError, ApiResult};
use crate::pb::common::{KeyValuePair, Status};
use crate::pb::milvus::*;

impl Proxy {
    pub(super) async fn do_create_partition(
        &self,
        ctx: &Ctx,
        r: CreatePartitionRequest,
    ) -> ApiResult<Status> {
        validate_name(&r.partition_name).map_err(|e| ApiError::invalid(e.to_string()))?;
        let ts = self.coord.now().await?;
        let p = PartitionInfo {
            id: PartitionId(ts.0 as i64),
            name: r.partition_name.clone(),
            created_ts: ts.0,
        };
        self.coord
            .change(&ctx.db, &r.collection_name, CatalogChange::AddPartition(p))
            .await?;
        Ok(ok_status())
    }

    pub(super) async fn do_drop_partition(
        &self,
        ctx: &Ctx,
        r: DropPartitionRequest,
    ) -> ApiResult<Status> {
        let change = CatalogChange::DropPartition(r.partition_name.clone());
        self.coord
            .change(&ctx.db, &r.collection_name, change)
            .await?;
        Ok(ok_status())
    }

    pub(super) async fn do_has_partition(
        &self,
        ctx: &Ctx,
        r: HasPartitionRequest,
    ) -> ApiResult<BoolResponse> {
        let info = self.coord.get(&ctx.db, &r.collection_name).await?;
        ok(BoolResponse {
            value: info.partition(&r.partition_name).is_ok(),
            ..Default::default()
        })
    }

    pub(super) async fn do_load_partitions(
        &self,
        ctx: &Ctx,
        r: LoadPartitionsRequest,
    ) -> ApiResult<Status> {
        if r.partition_names.is_empty() {
            return Err(ApiError::new(
                code::MISSING_PARAMETER,
                "LoadPartitions needs at least one partition name",
            ));
        }
        self.load(&ctx.db, &r.collection_name, &r.partition_names)
            .await
    }

    pub(super) async fn do_release_partitions(
        &self,
        ctx: &Ctx,
        r: ReleasePartitionsRequest,
    ) -> ApiResult<Status> {
        if r.partition_names.is_empty() {
            return Err(ApiError::new(
                code::MISSING_PARAMETER,
                "ReleasePartitions needs at least one partition name",
            ));
        }
        let change = CatalogChange::ReleasePartitions(r.partition_names.clone());
        self.coord
            .change(&ctx.db, &r.collection_name, change)
            .await?;
        Ok(ok_status())
    }

    pub(super) async fn do_get_partition_statistics(
        &self,
        ctx: &Ctx,
        r: GetPartitionStatisticsRequest,
    ) -> ApiResult<GetPartitionStatisticsResponse> {
        let info = self.coord.get(&ctx.db, &r.collection_name).await?;
        let parts = Self::partitions_named(&info, std::slice::from_ref(&r.partition_name))?;
        let n = self.row_count(&info, &parts).await?;
        ok(GetPartitionStatisticsResponse {
            stats: vec![KeyValuePair {
                key: "row_count".into(),
                value: n.to_string(),
            }],
            ..Default::default()
        })
    }

    pub(super) async fn do_show_partitions(
        &self,
        ctx: &Ctx,
        r: ShowPartitionsRequest,
    ) -> ApiResult<ShowPartitionsResponse> {
        let info = self.coord.get(&ctx.db, &r.collection_name).await?;
        let ps = &info.partitions;
        ok(ShowPartitionsResponse {
            partition_names: ps.iter().map(|p| p.name.clone()).collect(),
            partition_i_ds: ps.iter().map(|p| p.id.0).collect(),
            created_timestamps: ps.iter().map(|p| p.created_ts).collect(),
            created_utc_timestamps: ps
                .iter()
                .map(|p| Timestamp(p.created_ts).physical_ms())
                .collect(),
            in_memory_percentages: ps
                .iter()
                .map(|p| if info.partition_loaded(p.id) { 100 } else { 0 })
                .collect(),
            ..Default::default()
        })
    }

    pub(super) async fn do_get_loading_progress(
        &self,
        ctx: &Ctx,
        r: GetLoadingProgressRequest,
    ) -> ApiResult<GetLoadingProgressResponse> {
        let info = self.coord.get(&ctx.db, &r.collection_name).await?;
        if !info.loaded() {
            return Err(ApiError::new(
                code::COLLECTION_NOT_LOADED,
                format!("collection not loaded[collection={}]", r.collection_name),
            ));
        }
        for name in &r.partition_names {
            if !info.partition_loaded(info.partition(name)?.id) {
                return Err(ApiError::new(
                    code::PARTITION_NOT_LOADED,
                    format!("partition not loaded[partition={name}]"),
                ));
            }
        }
        ok(GetLoadingProgressResponse {
            progress: 100,
            refresh_progress: 100,
            ..Default::default()
        })
    }

    pub(super) async fn do_get_load_state(
        &self,
        ctx: &Ctx,
        r: GetLoadStateRequest,
    ) -> ApiResult<GetLoadStateResponse> {
        use crate::pb::common::LoadState;
        let info = self.coord.get(&ctx.db, &r.collection_name).await?;
        let mut loaded = info.loaded();
        for p in &r.partition_names {
            loaded &= info.partition_loaded(info.partition(p)?.id);
        }
        let state = if loaded {
            LoadState::Loaded
        } else {
            LoadState::NotLoad
        };
        ok(GetLoadStateResponse {
            state: state as i32,
            ..Default::default()
        })
    }
}
