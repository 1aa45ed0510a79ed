//! DDL for databases: create, drop, list, describe, alter. A database request names
//! its database in the body; the `dbname` header does not apply to it.

use quiver_core::schema::validate_name;

use super::context::{ok, Ctx};
use super::Proxy;
use crate::coordinator::DEFAULT_DB;
use crate::error::{code, ok_status, ApiError, ApiResult};
use crate::pb::common::{KeyValuePair, Status};
use crate::pb::milvus::*;

/// Database names follow collection naming rules, up to 64 characters.
fn validate_db_name(name: &str) -> ApiResult<()> {
    if name.len() > 64 || validate_name(name).is_err() {
        return Err(ApiError::new(
            code::DATABASE_INVALID_NAME,
            format!(
                "invalid database name[database={name}]: use letters, digits and \
                 underscores, starting with a letter or underscore, at most 64 characters"
            ),
        ));
    }
    Ok(())
}

fn kv_pairs(kvs: &[KeyValuePair]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect()
}

impl Proxy {
    pub(super) async fn do_create_database(
        &self,
        _ctx: &Ctx,
        r: CreateDatabaseRequest,
    ) -> ApiResult<Status> {
        validate_db_name(&r.db_name)?;
        self.coord
            .create_database(&r.db_name, kv_pairs(&r.properties))
            .await?;
        Ok(ok_status())
    }

    pub(super) async fn do_drop_database(
        &self,
        _ctx: &Ctx,
        r: DropDatabaseRequest,
    ) -> ApiResult<Status> {
        self.coord.drop_database(&r.db_name).await?;
        Ok(ok_status())
    }

    pub(super) async fn do_list_databases(
        &self,
        _ctx: &Ctx,
        _r: ListDatabasesRequest,
    ) -> ApiResult<ListDatabasesResponse> {
        let dbs = self.coord.databases().await?;
        ok(ListDatabasesResponse {
            db_names: dbs.iter().map(|d| d.name.clone()).collect(),
            db_ids: dbs.iter().map(|d| d.id).collect(),
            created_timestamp: dbs.iter().map(|d| d.created_ts).collect(),
            ..Default::default()
        })
    }

    pub(super) async fn do_describe_database(
        &self,
        _ctx: &Ctx,
        r: DescribeDatabaseRequest,
    ) -> ApiResult<DescribeDatabaseResponse> {
        let name = if r.db_name.is_empty() {
            DEFAULT_DB
        } else {
            &r.db_name
        };
        let d = self.coord.database(name).await?;
        ok(DescribeDatabaseResponse {
            db_name: d.name,
            db_id: d.id,
            created_timestamp: d.created_ts,
            properties: d
                .properties
                .into_iter()
                .map(|(key, value)| KeyValuePair { key, value })
                .collect(),
            ..Default::default()
        })
    }

    pub(super) async fn do_alter_database(
        &self,
        _ctx: &Ctx,
        r: AlterDatabaseRequest,
    ) -> ApiResult<Status> {
        self.coord
            .alter_database(&r.db_name, kv_pairs(&r.properties), r.delete_keys)
            .await?;
        Ok(ok_status())
    }
}
