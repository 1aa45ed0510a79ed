//! The data node: builds vector indexes for sealed segments. It reads the segment from
//! object storage (every object verified), builds the collection's index over the
//! vector field on the compute seam, and writes the index bytes (the ANN engine's own
//! versioned, checksummed format) next to the segment. Query nodes load them; a
//! segment without an index file is searched exactly.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use quiver_ann::index::{AnnIndex, IndexParams};
use quiver_core::batch::ColumnData;
use quiver_core::ids::CollectionId;
use quiver_core::rt;
use quiver_core::segment::storage::{self, SegmentFiles};
use quiver_core::segment::SegmentView;

use crate::coordinator::{CollectionInfo, IndexInfo};
use crate::error::{ApiError, ApiResult};
use crate::rpc::DataNodeApi;

/// Where the index `index` of a segment lives.
pub fn index_path(collection: CollectionId, files: &SegmentFiles, index: &IndexInfo) -> String {
    // Keyed by the segment's timestamp-log path too, which names the writer's epoch:
    // two writers of the same segment id never share an index.
    format!(
        "index_files/{}/{}/{}/{:016x}/{}/{}",
        collection,
        files.partition,
        files.id,
        xxhash_rust::xxh3::xxh3_64(files.ts_log.as_bytes()),
        index.field_name,
        index.id
    )
}

/// Whether an index type needs building (FLAT is the exact scan itself).
pub fn needs_build(index: &IndexInfo) -> bool {
    index.index_type != "FLAT"
}

/// Engine parameters for a catalog index.
pub fn engine_params(index: &IndexInfo) -> ApiResult<IndexParams> {
    IndexParams::from_milvus(
        &index.index_type,
        index.params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .map_err(|e| ApiError::invalid(format!("index {}: {e}", index.name)))
}

/// What a data node is started with.
pub struct DataNodeDeps {
    /// Where sealed segments are read and index files written.
    pub store: Arc<dyn ObjectStore>,
}

/// Starts a data node. It keeps nothing local and runs no loops of its own: it builds
/// what streaming nodes ask for (a retried build finds its index already written).
pub fn start(deps: DataNodeDeps) -> Arc<DataNode> {
    DataNode::new(deps.store)
}

pub struct DataNode {
    store: Arc<dyn ObjectStore>,
}

impl DataNode {
    fn new(store: Arc<dyn ObjectStore>) -> Arc<Self> {
        Arc::new(DataNode { store })
    }

    async fn build(
        &self,
        info: &CollectionInfo,
        files: &SegmentFiles,
        index: &IndexInfo,
    ) -> ApiResult<()> {
        if !needs_build(index) {
            return Ok(());
        }
        let path = index_path(info.id, files, index);
        if self.store.head(&Path::from(path.as_str())).await.is_ok() {
            return Ok(()); // built before (a retry after a lost reply)
        }
        let field = info.schema.field(&index.field_name).ok_or_else(|| {
            ApiError::internal(format!("index {} names a missing field", index.name))
        })?;
        let seg = storage::load_sealed(&self.store, &info.schema, files)
            .await
            .map_err(|e| ApiError::internal(format!("reading segment {}: {e}", files.id)))?;
        let (dim, data) = match &seg.data().column(field.id).map(|c| &c.data) {
            Some(ColumnData::FloatVector { dim, data }) => (*dim as usize, data.clone()),
            _ => {
                return Err(ApiError::internal(format!(
                    "segment {} has no vectors for {}",
                    files.id, field.name
                )))
            }
        };
        let params = engine_params(index)?;
        let metric = index.metric;
        let started = rt::now();
        let built = rt::compute(move || {
            AnnIndex::build(&params, metric, dim, &data, rt::compute_parallelism())
        })
        .await
        // The same data and parameters fail the same way every time: final.
        .map_err(|e| ApiError::invalid(format!("building index {}: {e}", index.name)))?;
        let bytes = built.to_bytes();
        self.store
            .put(
                &Path::from(path.as_str()),
                PutPayload::from(Bytes::from(bytes)),
            )
            .await
            .map_err(|e| ApiError::internal(format!("writing {path}: {e}")))?;
        tracing::info!(
            segment = files.id.0,
            rows = files.num_rows,
            index = %index.index_type,
            secs = rt::now().duration_since(started).as_secs_f64(),
            "index built"
        );
        Ok(())
    }
}

#[async_trait::async_trait]
impl DataNodeApi for DataNode {
    #[tracing::instrument(skip_all, fields(op = "build_index", segment = files.id.0))]
    async fn build_index(
        &self,
        info: CollectionInfo,
        files: SegmentFiles,
        index: IndexInfo,
    ) -> ApiResult<()> {
        self.build(&info, &files, &index).await
    }
}
