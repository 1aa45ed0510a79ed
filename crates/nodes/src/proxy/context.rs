//! The request-context step every RPC takes first: authenticate the caller, then name
//! the database the request addresses. It lives here, once, so no handler can forget
//! either; and it runs inside `Proxy`'s `MilvusService` methods rather than as a tonic
//! interceptor because the simulator calls those methods directly, without a server.
//!
//! Also here: how a handler's `ApiResult` becomes a response (errors in its `Status`).

use tonic::{Request, Response};

use quiver_core::rt::Deadline;

use super::Proxy;
use crate::coordinator::DEFAULT_DB;
use crate::error::{ok_status, ApiResult};
use crate::pb::common::Status;
use crate::pb::milvus::*;
use crate::rpc::envelope::result_too_large;
use crate::rpc::MAX_MESSAGE_BYTES;

/// What the context step established about a request.
#[derive(Debug, Clone)]
pub(super) struct Ctx {
    /// The database the request addresses: the `dbname` header, else the body's
    /// `db_name`, else the default. Whether it exists is the coordinator's answer.
    pub db: String,
    /// When the client stops waiting (its `grpc-timeout`, less a margin for the
    /// answer to reach it), or the server's default read budget.
    pub deadline: Deadline,
}

/// A request body, as the context step reads it.
pub(super) trait RequestBody {
    /// The body's `db_name`, or "" when the body names no database to work in.
    fn body_db(&self) -> &str;
}

macro_rules! body_with_db {
    ($($t:ty),* $(,)?) => {$(
        impl RequestBody for $t {
            fn body_db(&self) -> &str { &self.db_name }
        }
    )*};
}

macro_rules! body_without_db {
    ($($t:ty),* $(,)?) => {$(
        impl RequestBody for $t {
            fn body_db(&self) -> &str { "" }
        }
    )*};
}

body_with_db!(
    CreateCollectionRequest,
    DropCollectionRequest,
    HasCollectionRequest,
    LoadCollectionRequest,
    ReleaseCollectionRequest,
    DescribeCollectionRequest,
    GetCollectionStatisticsRequest,
    ShowCollectionsRequest,
    CreatePartitionRequest,
    DropPartitionRequest,
    HasPartitionRequest,
    LoadPartitionsRequest,
    ReleasePartitionsRequest,
    GetPartitionStatisticsRequest,
    ShowPartitionsRequest,
    GetLoadingProgressRequest,
    GetLoadStateRequest,
    CreateIndexRequest,
    DescribeIndexRequest,
    DropIndexRequest,
    InsertRequest,
    DeleteRequest,
    UpsertRequest,
    SearchRequest,
    HybridSearchRequest,
    FlushRequest,
    QueryRequest,
    GetFlushStateRequest,
    CreateAliasRequest,
    AlterAliasRequest,
    DropAliasRequest,
    DescribeAliasRequest,
    ListAliasesRequest,
);

// A database request's `db_name` is its subject, not the database it works in.
body_without_db!(
    GetVersionRequest,
    CheckHealthRequest,
    ConnectRequest,
    AllocTimestampRequest,
    CreateDatabaseRequest,
    DropDatabaseRequest,
    ListDatabasesRequest,
    DescribeDatabaseRequest,
    AlterDatabaseRequest,
);

impl Proxy {
    /// The request-context step: authenticates the request (a wrong or missing token
    /// is a gRPC `Unauthenticated` error, the one error not carried in a `Status`) and
    /// resolves its database and its deadline; returns the context and the body.
    pub(super) fn ctx<T: RequestBody>(&self, req: Request<T>) -> Result<(Ctx, T), tonic::Status> {
        authenticate(self.expected_auth.as_deref(), &req)?;
        let db = db_of(&req, req.get_ref().body_db());
        let timeout = req
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok());
        let deadline = crate::deadline::from_grpc_timeout(timeout);
        Ok((Ctx { db, deadline }, req.into_inner()))
    }
}

/// Checks the request's `authorization` header against the expected one, if any.
fn authenticate<T>(expected: Option<&str>, req: &Request<T>) -> Result<(), tonic::Status> {
    let Some(want) = expected else {
        return Ok(());
    };
    let got = req
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if got == want {
        Ok(())
    } else {
        Err(tonic::Status::unauthenticated(
            "authentication failed: wrong or missing token",
        ))
    }
}

/// The database a request addresses: the `dbname` header first (pymilvus 3 sends it
/// only there), then the body field.
fn db_of<T>(req: &Request<T>, body_db: &str) -> String {
    let header = req
        .metadata()
        .get("dbname")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let db = if !header.is_empty() { header } else { body_db };
    if db.is_empty() { DEFAULT_DB } else { db }.to_string()
}

/// A response type that carries a `Status`.
pub(super) trait WithStatus: Default {
    fn set_status(&mut self, s: Status);
}

macro_rules! with_status {
    ($($t:ty),* $(,)?) => {$(
        impl WithStatus for $t {
            fn set_status(&mut self, s: Status) { self.status = Some(s); }
        }
    )*};
}

with_status!(
    BoolResponse,
    DescribeCollectionResponse,
    GetCollectionStatisticsResponse,
    ShowCollectionsResponse,
    GetPartitionStatisticsResponse,
    ShowPartitionsResponse,
    GetLoadingProgressResponse,
    GetLoadStateResponse,
    DescribeIndexResponse,
    MutationResult,
    SearchResults,
    FlushResponse,
    QueryResults,
    GetFlushStateResponse,
    GetVersionResponse,
    CheckHealthResponse,
    ConnectResponse,
    AllocTimestampResponse,
    ListDatabasesResponse,
    DescribeDatabaseResponse,
    DescribeAliasResponse,
    ListAliasesResponse,
);

impl WithStatus for Status {
    fn set_status(&mut self, s: Status) {
        *self = s;
    }
}

/// A handler's result as a response: an error travels in the response's `Status`.
/// A response over the public message limit is refused with a status saying so:
/// sent, the transport would fail to encode it and the client see no reason.
pub(super) fn reply<T: WithStatus + prost::Message>(
    r: ApiResult<T>,
) -> Result<Response<T>, tonic::Status> {
    let r = r.and_then(|v| {
        let bytes = v.encoded_len();
        if bytes > MAX_MESSAGE_BYTES {
            return Err(result_too_large(bytes, MAX_MESSAGE_BYTES));
        }
        Ok(v)
    });
    Ok(Response::new(match r {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!(code = e.code, reason = %e.reason, "request failed");
            let mut v = T::default();
            v.set_status(e.status());
            v
        }
    }))
}

/// `v` with a success status.
pub(super) fn ok<T: WithStatus>(mut v: T) -> ApiResult<T> {
    v.set_status(ok_status());
    Ok(v)
}

#[cfg(test)]
mod tests;
