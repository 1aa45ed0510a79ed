//! The Milvus gRPC service: every RPC takes the request-context step
//! ([`Proxy::ctx`]: authentication, database) and hands the body to its handler, whose
//! result [`reply`] turns into the response. Nothing else happens here.

use tonic::{Request, Response};

use super::context::reply;
use super::Proxy;
use crate::deadline::within;
use crate::pb::common::Status;
use crate::pb::milvus::milvus_service_server::MilvusService;
use crate::pb::milvus::*;

type Rpc<T> = Result<Response<T>, tonic::Status>;

#[tonic::async_trait]
impl MilvusService for Proxy {
    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name))]
    async fn create_collection(&self, request: Request<CreateCollectionRequest>) -> Rpc<Status> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_create_collection(&ctx, r).await)
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name))]
    async fn drop_collection(&self, request: Request<DropCollectionRequest>) -> Rpc<Status> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_drop_collection(&ctx, r).await)
    }

    async fn has_collection(&self, request: Request<HasCollectionRequest>) -> Rpc<BoolResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_has_collection(&ctx, r).await)
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name))]
    async fn load_collection(&self, request: Request<LoadCollectionRequest>) -> Rpc<Status> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_load_collection(&ctx, r).await)
    }

    async fn release_collection(&self, request: Request<ReleaseCollectionRequest>) -> Rpc<Status> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_release_collection(&ctx, r).await)
    }

    async fn describe_collection(
        &self,
        request: Request<DescribeCollectionRequest>,
    ) -> Rpc<DescribeCollectionResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_describe_collection(&ctx, r).await)
    }

    async fn get_collection_statistics(
        &self,
        request: Request<GetCollectionStatisticsRequest>,
    ) -> Rpc<GetCollectionStatisticsResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_get_collection_statistics(&ctx, r).await)
    }

    async fn show_collections(
        &self,
        request: Request<ShowCollectionsRequest>,
    ) -> Rpc<ShowCollectionsResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_show_collections(&ctx, r).await)
    }

    async fn create_partition(&self, request: Request<CreatePartitionRequest>) -> Rpc<Status> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_create_partition(&ctx, r).await)
    }

    async fn drop_partition(&self, request: Request<DropPartitionRequest>) -> Rpc<Status> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_drop_partition(&ctx, r).await)
    }

    async fn has_partition(&self, request: Request<HasPartitionRequest>) -> Rpc<BoolResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_has_partition(&ctx, r).await)
    }

    async fn load_partitions(&self, request: Request<LoadPartitionsRequest>) -> Rpc<Status> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_load_partitions(&ctx, r).await)
    }

    async fn release_partitions(&self, request: Request<ReleasePartitionsRequest>) -> Rpc<Status> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_release_partitions(&ctx, r).await)
    }

    async fn get_partition_statistics(
        &self,
        request: Request<GetPartitionStatisticsRequest>,
    ) -> Rpc<GetPartitionStatisticsResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_get_partition_statistics(&ctx, r).await)
    }

    async fn show_partitions(
        &self,
        request: Request<ShowPartitionsRequest>,
    ) -> Rpc<ShowPartitionsResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_show_partitions(&ctx, r).await)
    }

    async fn get_loading_progress(
        &self,
        request: Request<GetLoadingProgressRequest>,
    ) -> Rpc<GetLoadingProgressResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_get_loading_progress(&ctx, r).await)
    }

    async fn get_load_state(
        &self,
        request: Request<GetLoadStateRequest>,
    ) -> Rpc<GetLoadStateResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_get_load_state(&ctx, r).await)
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name))]
    async fn create_index(&self, request: Request<CreateIndexRequest>) -> Rpc<Status> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_create_index(&ctx, r).await)
    }

    async fn describe_index(
        &self,
        request: Request<DescribeIndexRequest>,
    ) -> Rpc<DescribeIndexResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_describe_index(&ctx, r).await)
    }

    async fn drop_index(&self, request: Request<DropIndexRequest>) -> Rpc<Status> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_drop_index(&ctx, r).await)
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name, rows = request.get_ref().num_rows))]
    async fn insert(&self, request: Request<InsertRequest>) -> Rpc<MutationResult> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_insert(&ctx, r).await)
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name))]
    async fn delete(&self, request: Request<DeleteRequest>) -> Rpc<MutationResult> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_delete(&ctx, r).await)
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name, rows = request.get_ref().num_rows))]
    async fn upsert(&self, request: Request<UpsertRequest>) -> Rpc<MutationResult> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_upsert(&ctx, r).await)
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name, nq = request.get_ref().nq))]
    async fn search(&self, request: Request<SearchRequest>) -> Rpc<SearchResults> {
        let (ctx, r) = self.ctx(request)?;
        reply(within(ctx.deadline, "the search", self.do_search(&ctx, r)).await)
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name))]
    async fn hybrid_search(&self, request: Request<HybridSearchRequest>) -> Rpc<SearchResults> {
        let (ctx, r) = self.ctx(request)?;
        reply(
            within(
                ctx.deadline,
                "the hybrid search",
                self.do_hybrid_search(&ctx, r),
            )
            .await,
        )
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_names.join(",")))]
    async fn flush(&self, request: Request<FlushRequest>) -> Rpc<FlushResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_flush(&ctx, r).await)
    }

    #[tracing::instrument(skip_all, fields(collection = %request.get_ref().collection_name))]
    async fn query(&self, request: Request<QueryRequest>) -> Rpc<QueryResults> {
        let (ctx, r) = self.ctx(request)?;
        reply(within(ctx.deadline, "the query", self.do_query(&ctx, r)).await)
    }

    async fn get_flush_state(
        &self,
        request: Request<GetFlushStateRequest>,
    ) -> Rpc<GetFlushStateResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_get_flush_state(&ctx, r).await)
    }

    async fn get_version(&self, request: Request<GetVersionRequest>) -> Rpc<GetVersionResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_get_version(&ctx, r).await)
    }

    async fn check_health(&self, request: Request<CheckHealthRequest>) -> Rpc<CheckHealthResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_check_health(&ctx, r).await)
    }

    async fn connect(&self, request: Request<ConnectRequest>) -> Rpc<ConnectResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_connect(&ctx, r).await)
    }

    async fn alloc_timestamp(
        &self,
        request: Request<AllocTimestampRequest>,
    ) -> Rpc<AllocTimestampResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_alloc_timestamp(&ctx, r).await)
    }

    async fn create_database(&self, request: Request<CreateDatabaseRequest>) -> Rpc<Status> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_create_database(&ctx, r).await)
    }

    async fn drop_database(&self, request: Request<DropDatabaseRequest>) -> Rpc<Status> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_drop_database(&ctx, r).await)
    }

    async fn list_databases(
        &self,
        request: Request<ListDatabasesRequest>,
    ) -> Rpc<ListDatabasesResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_list_databases(&ctx, r).await)
    }

    async fn describe_database(
        &self,
        request: Request<DescribeDatabaseRequest>,
    ) -> Rpc<DescribeDatabaseResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_describe_database(&ctx, r).await)
    }

    async fn alter_database(&self, request: Request<AlterDatabaseRequest>) -> Rpc<Status> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_alter_database(&ctx, r).await)
    }

    async fn create_alias(&self, request: Request<CreateAliasRequest>) -> Rpc<Status> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_create_alias(&ctx, r).await)
    }

    async fn alter_alias(&self, request: Request<AlterAliasRequest>) -> Rpc<Status> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_alter_alias(&ctx, r).await)
    }

    async fn drop_alias(&self, request: Request<DropAliasRequest>) -> Rpc<Status> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_drop_alias(&ctx, r).await)
    }

    async fn describe_alias(
        &self,
        request: Request<DescribeAliasRequest>,
    ) -> Rpc<DescribeAliasResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_describe_alias(&ctx, r).await)
    }

    async fn list_aliases(&self, request: Request<ListAliasesRequest>) -> Rpc<ListAliasesResponse> {
        let (ctx, r) = self.ctx(request)?;
        reply(self.do_list_aliases(&ctx, r).await)
    }
}
