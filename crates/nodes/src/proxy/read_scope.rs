//! What a request reads: the collection (loaded, for reads), the partitions, the
//! timestamp its consistency level guarantees, and the filter compiled once here so a
//! malformed one is refused before any shard is asked.

use std::collections::{BTreeMap, HashMap};

use quiver_core::expr::{self, Predicate, Value};
use quiver_core::ids::PartitionId;
use quiver_core::schema::CollectionSchema;
use quiver_core::tso::Timestamp;

use super::params;
use super::shards::Shards;
use super::{Proxy, BOUNDED_STALENESS_MS};
use crate::coordinator::CollectionInfo;
use crate::error::{code, ApiError, ApiResult};
use crate::pb::schema::TemplateValue;
use crate::rpc::{WireScope, DEFAULT_READ_BUDGET};
use quiver_core::rt::Deadline;

/// How a read asked to be consistent: its level, whether it asked for the
/// collection's default, and its own timestamp (for Session and Customized).
#[derive(Debug, Clone, Copy)]
pub(super) struct Consistency {
    pub level: i32,
    pub use_default: bool,
    pub client_ts: u64,
}

impl Proxy {
    /// The collection `name` of `db`, which must be loaded.
    pub(super) async fn loaded(&self, db: &str, name: &str) -> ApiResult<CollectionInfo> {
        let info = self.coord.get(db, name).await?;
        if !info.loaded() {
            return Err(ApiError::new(
                code::COLLECTION_NOT_LOADED,
                format!("collection not loaded[collection={name}]"),
            ));
        }
        Ok(info)
    }

    /// The loaded collection a read addresses and the timestamp it must observe.
    pub(super) async fn read_target(
        &self,
        db: &str,
        name: &str,
        c: Consistency,
    ) -> ApiResult<(CollectionInfo, Timestamp)> {
        let info = self.loaded(db, name).await?;
        let gts = self.guarantee(&info, c).await?;
        Ok((info, gts))
    }

    /// The timestamp a read must observe, by consistency level, as Milvus's proxy
    /// computes it: Strong = now; Bounded = now minus 5 s; Session and Customized = the
    /// client's timestamp; Eventually = none. The level is the collection's when the
    /// client asks for the default.
    async fn guarantee(&self, info: &CollectionInfo, c: Consistency) -> ApiResult<Timestamp> {
        use crate::pb::common::ConsistencyLevel as L;
        let level = if c.use_default {
            info.consistency_level
        } else {
            c.level
        };
        Ok(match L::try_from(level).unwrap_or(L::Bounded) {
            L::Strong => self.coord.now().await?,
            L::Bounded => self.coord.now().await?.minus_ms(BOUNDED_STALENESS_MS),
            L::Session | L::Customized => Timestamp(c.client_ts),
            L::Eventually => Timestamp(1),
        })
    }

    pub(super) fn shards<'a>(&'a self, info: &'a CollectionInfo) -> Shards<'a> {
        Shards::new(self.streaming.as_ref(), info)
    }

    /// A read scope for the wire: the filter as text plus its template values.
    pub(super) fn scope(
        guarantee_ts: Timestamp,
        partitions: Vec<PartitionId>,
        filter: Predicate,
    ) -> WireScope {
        WireScope {
            guarantee_ts,
            read_ts: Timestamp::ZERO,
            partitions,
            filter,
            // The read's own deadline replaces this when the shards are asked.
            deadline: Deadline::after(DEFAULT_READ_BUDGET),
            read_id: 0,
        }
    }

    /// The partitions a statistic or a delete covers: the named ones, or all live ones.
    pub(super) fn partitions_named(
        info: &CollectionInfo,
        names: &[String],
    ) -> ApiResult<Vec<PartitionId>> {
        if names.is_empty() {
            return Ok(info.partitions.iter().map(|p| p.id).collect());
        }
        names
            .iter()
            .map(|n| info.partition(n).map(|p| p.id))
            .collect()
    }

    /// The partitions a search or query covers: the named ones, each of which must be
    /// loaded, or all loaded ones.
    pub(super) fn read_partitions(
        info: &CollectionInfo,
        names: &[String],
    ) -> ApiResult<Vec<PartitionId>> {
        if names.is_empty() {
            return Ok(info
                .partitions
                .iter()
                .filter(|p| info.partition_loaded(p.id))
                .map(|p| p.id)
                .collect());
        }
        names
            .iter()
            .map(|n| {
                let p = info.partition(n)?;
                if !info.partition_loaded(p.id) {
                    return Err(ApiError::new(
                        code::PARTITION_NOT_LOADED,
                        format!("partition not loaded[partition={n}]"),
                    ));
                }
                Ok(p.id)
            })
            .collect()
    }

    /// Compiles a filter here too, so a malformed one is refused before any shard is
    /// asked; returns the predicate and the template values for the wire.
    pub(super) fn compile(
        schema: &CollectionSchema,
        src: &str,
        templates: HashMap<String, TemplateValue>,
    ) -> ApiResult<(Predicate, BTreeMap<String, Value>)> {
        let params = params::template_params(templates)?;
        let pred = expr::compile(src, schema, &params)
            .map_err(|e| ApiError::invalid(format!("failed to create query plan: {e}")))?;
        Ok((pred, params))
    }

    /// Rows visible at now in `partitions`, over every shard at once.
    pub(super) async fn row_count(
        &self,
        info: &CollectionInfo,
        partitions: &[PartitionId],
    ) -> ApiResult<usize> {
        let everything = Self::compile(&info.schema, "", Default::default())?.0;
        let scope = Self::scope(self.coord.now().await?, partitions.to_vec(), everything);
        super::fanout::count(&self.shards(info), &scope).await
    }
}
