//! DDL for aliases: create, alter (move to another collection), drop, describe, list.

use quiver_core::schema::validate_name;

use super::context::{ok, Ctx};
use super::Proxy;
use crate::error::{ok_status, ApiError, ApiResult};
use crate::pb::common::Status;
use crate::pb::milvus::*;

impl Proxy {
    pub(super) async fn do_create_alias(
        &self,
        ctx: &Ctx,
        r: CreateAliasRequest,
    ) -> ApiResult<Status> {
        validate_name(&r.alias).map_err(|e| ApiError::invalid(e.to_string()))?;
        self.coord
            .set_alias(&ctx.db, &r.alias, &r.collection_name, false)
            .await?;
        Ok(ok_status())
    }

    pub(super) async fn do_alter_alias(
        &self,
        ctx: &Ctx,
        r: AlterAliasRequest,
    ) -> ApiResult<Status> {
        self.coord
            .set_alias(&ctx.db, &r.alias, &r.collection_name, true)
            .await?;
        Ok(ok_status())
    }

    pub(super) async fn do_drop_alias(&self, ctx: &Ctx, r: DropAliasRequest) -> ApiResult<Status> {
        self.coord.drop_alias(&ctx.db, &r.alias).await?;
        Ok(ok_status())
    }

    pub(super) async fn do_describe_alias(
        &self,
        ctx: &Ctx,
        r: DescribeAliasRequest,
    ) -> ApiResult<DescribeAliasResponse> {
        let collection = self.coord.describe_alias(&ctx.db, &r.alias).await?;
        ok(DescribeAliasResponse {
            db_name: ctx.db.clone(),
            alias: r.alias,
            collection,
            ..Default::default()
        })
    }

    pub(super) async fn do_list_aliases(
        &self,
        ctx: &Ctx,
        r: ListAliasesRequest,
    ) -> ApiResult<ListAliasesResponse> {
        let of = Some(r.collection_name.as_str()).filter(|n| !n.is_empty());
        let aliases = self.coord.list_aliases(&ctx.db, of).await?;
        ok(ListAliasesResponse {
            db_name: ctx.db.clone(),
            collection_name: r.collection_name,
            aliases,
            ..Default::default()
        })
    }
}
