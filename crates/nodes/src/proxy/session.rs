//! Connection-level RPCs: version, health, connect, timestamp allocation.

use super::context::{ok, Ctx};
use super::Proxy;
use crate::error::ApiResult;
use crate::pb::milvus::*;

impl Proxy {
    pub(super) async fn do_get_version(
        &self,
        _ctx: &Ctx,
        _r: GetVersionRequest,
    ) -> ApiResult<GetVersionResponse> {
        ok(GetVersionResponse {
            version: format!("v2.6.0-quiver-{}", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        })
    }

    pub(super) async fn do_check_health(
        &self,
        _ctx: &Ctx,
        _r: CheckHealthRequest,
    ) -> ApiResult<CheckHealthResponse> {
        ok(CheckHealthResponse {
            is_healthy: true,
            ..Default::default()
        })
    }

    pub(super) async fn do_connect(
        &self,
        _ctx: &Ctx,
        _r: ConnectRequest,
    ) -> ApiResult<ConnectResponse> {
        let id = self.coord.now().await?;
        ok(ConnectResponse {
            server_info: Some(crate::pb::common::ServerInfo {
                build_tags: format!("quiver-{}", env!("CARGO_PKG_VERSION")),
                deploy_mode: "STANDALONE".into(),
                ..Default::default()
            }),
            identifier: id.0 as i64,
            ..Default::default()
        })
    }

    pub(super) async fn do_alloc_timestamp(
        &self,
        _ctx: &Ctx,
        _r: AllocTimestampRequest,
    ) -> ApiResult<AllocTimestampResponse> {
        ok(AllocTimestampResponse {
            timestamp: self.coord.now().await?.0,
            ..Default::default()
        })
    }
}
