//! The query node: serves sealed segments handed off by shard delegators. It loads a
//! segment's objects from object storage (verifying each), applies the deletes the
//! delegator sends with it and after it, and answers searches and queries over the
//! segments a delegator names ([`reads`]). [`start`] is the role's entry point.

mod reads;

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use quiver_ann::index::AnnIndex;
use quiver_core::batch::{Batch, Pk};
use quiver_core::ids::{CollectionId, FieldId, SegmentId};
use quiver_core::rt;
use quiver_core::search::Hit;
use quiver_core::segment::storage::{self, SegmentFiles};
use quiver_core::segment::{DeleteRecord, SealedSegment};

use crate::coordinator::{CollectionInfo, IndexInfo};
use crate::error::{code, ApiError, ApiResult};
use crate::rpc::{Handoff, QueryNodeApi, ShardRef, VectorSearch, WireScope};

struct Served {
    info: CollectionInfo,
    /// Shared with searches in flight (which snapshot them under the lock); a delete
    /// copies a segment only while a search still holds it.
    segments: BTreeMap<SegmentId, Arc<SealedSegment>>,
    /// Built vector indexes, by segment and field.
    indexes: BTreeMap<(SegmentId, FieldId), Arc<AnnIndex>>,
}

pub struct QueryNode {
    store: Arc<dyn ObjectStore>,
    served: Arc<tokio::sync::RwLock<BTreeMap<(CollectionId, u32), Served>>>,
    /// The newest owner epoch each shard's delegator has spoken with.
    epochs: Arc<std::sync::Mutex<BTreeMap<(CollectionId, u32), u64>>>,
    /// The lanes this node's searches take turns in.
    lanes: quiver_core::rt::Lanes,
    /// The delegators' reads running here, by shard and read id (with a count, as two
    /// delegators of one shard may pick the same id).
    reads: Arc<std::sync::Mutex<BTreeMap<ReadKey, usize>>>,
}

type ReadKey = (CollectionId, u32, u64);

/// A delegator's read, registered while it runs here (see `QueryNodeApi::reading`).
struct Reading {
    reads: Arc<std::sync::Mutex<BTreeMap<ReadKey, usize>>>,
    key: ReadKey,
}

impl Reading {
    fn start(node: &QueryNode, at: ShardRef, read_id: u64) -> Reading {
        let key = (at.collection, at.shard, read_id);
        *node
            .reads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default() += 1;
        Reading {
            reads: node.reads.clone(),
            key,
        }
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        let mut reads = self.reads.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = reads.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                reads.remove(&self.key);
            }
        }
    }
}

/// The segment a read names. A segment this node does not serve is an error, so the
/// delegator takes it back — except under the planted bug `early-release`, where a
/// segment still loading reads as empty.
fn segment_of(s: &Served, id: SegmentId) -> ApiResult<Option<&Arc<SealedSegment>>> {
    match s.segments.get(&id) {
        Some(seg) => Ok(Some(seg)),
        None if quiver_core::mutation::active("early-release") => Ok(None),
        None => Err(missing(id)),
    }
}

fn missing(id: SegmentId) -> ApiError {
    ApiError::new(
        code::NOT_OPEN,
        format!("segment {id} is not served by this query node"),
    )
}

impl QueryNode {
    /// The segment's built index, if the data node has written one. A missing index
    /// means exact search; a damaged one is refused (logged) and also means exact
    /// search, which is slower but never wrong.
    async fn load_index(
        &self,
        info: &CollectionInfo,
        files: &SegmentFiles,
        index: &IndexInfo,
    ) -> Option<Arc<AnnIndex>> {
        let path = crate::datanode::index_path(info.id, files, index);
        let bytes = match self
            .store
            .get(&object_store::path::Path::from(path.as_str()))
            .await
        {
            Ok(r) => r.bytes().await.ok()?,
            Err(object_store::Error::NotFound { .. }) => return None,
            Err(e) => {
                tracing::warn!(%path, error = %e, "cannot read index; searching exactly");
                return None;
            }
        };
        let bytes_owned = bytes.to_vec();
        match rt::compute(move || AnnIndex::from_bytes(&bytes_owned)).await {
            Ok(i) => Some(Arc::new(i)),
            Err(e) => {
                tracing::error!(%path, error = %e, "refusing a damaged index; searching exactly");
                None
            }
        }
    }

    fn new(store: Arc<dyn ObjectStore>) -> Arc<Self> {
        Arc::new(QueryNode {
            store,
            served: Default::default(),
            epochs: Default::default(),
            lanes: quiver_core::rt::Lanes::per_core(),
            reads: Default::default(),
        })
    }

    /// Loads segments (verifying every object) and the indexes built for them.
    async fn load(
        &self,
        info: CollectionInfo,
        shard: u32,
        segments: Handoff,
        epoch: u64,
    ) -> ApiResult<()> {
        self.fence(info.id, shard, epoch)?;
        // Load outside the lock: object reads may be slow.
        let mut loaded = Vec::new();
        let mut indexes = Vec::new();
        for (files, deletes) in segments {
            for index in info
                .indexes
                .iter()
                .filter(|i| crate::datanode::needs_build(i))
            {
                if let Some(idx) = self.load_index(&info, &files, index).await {
                    if let Some(field) = info.schema.field(&index.field_name).map(|f| f.id) {
                        indexes.push(((files.id, field), idx));
                    }
                }
            }
            let mut seg = storage::load_sealed(&self.store, &info.schema, &files)
                .await
                .map_err(|e| ApiError::internal(format!("loading segment {}: {e}", files.id)))?;
            for d in deletes {
                seg.delete(&d.pk, d.ts);
            }
            loaded.push(seg);
        }
        let mut all = self.served.write().await;
        let entry = all.entry((info.id, shard)).or_insert_with(|| Served {
            info: info.clone(),
            segments: BTreeMap::new(),
            indexes: BTreeMap::new(),
        });
        // A newer delegator may have spoken while the objects loaded.
        self.fence(info.id, shard, epoch)?;
        entry.info = info.clone();
        for seg in loaded {
            entry.indexes.retain(|(id, _), _| *id != seg.id);
            entry.segments.insert(seg.id, Arc::new(seg));
        }
        entry.indexes.extend(indexes);
        Ok(())
    }

    /// Refuses a delegator older than the newest one seen for the shard; records a
    /// newer one.
    fn fence(&self, collection: CollectionId, shard: u32, epoch: u64) -> ApiResult<()> {
        let mut epochs = self.epochs.lock().unwrap_or_else(|e| e.into_inner());
        let seen = epochs.entry((collection, shard)).or_insert(epoch);
        if epoch < *seen {
            return Err(ApiError::new(
                code::NOT_OWNER,
                format!(
                    "shard {shard} of collection {collection} has a newer delegator (epoch {seen}, this one {epoch})"
                ),
            ));
        }
        *seen = epoch;
        Ok(())
    }
}

/// What a query node is started with.
pub struct QueryNodeDeps {
    /// Where sealed segments and their index files are.
    pub store: Arc<dyn ObjectStore>,
}

/// Starts a query node. It keeps nothing local and runs no loops of its own: it serves
/// what delegators hand it, and a restart starts empty (delegators take their
/// segments back and hand them off again).
pub fn start(deps: QueryNodeDeps) -> Arc<QueryNode> {
    QueryNode::new(deps.store)
}

impl QueryNode {
    /// The planted bug `early-release`: acknowledge a load (so the delegator releases
    /// its copy) and load later.
    fn load_late(&self, info: CollectionInfo, shard: u32, segments: Handoff, epoch: u64) {
        let node = QueryNode {
            store: self.store.clone(),
            served: self.served.clone(),
            epochs: self.epochs.clone(),
            lanes: quiver_core::rt::Lanes::per_core(),
            reads: self.reads.clone(),
        };
        rt::spawn(async move {
            rt::sleep(std::time::Duration::from_millis(1500)).await;
            let _ = node.load(info, shard, segments, epoch).await;
        });
    }

    /// Serves a loaded index for a segment already served.
    async fn add_index(
        &self,
        info: &CollectionInfo,
        at: ShardRef,
        files: &SegmentFiles,
        index: &IndexInfo,
    ) -> ApiResult<()> {
        let Some(idx) = self.load_index(info, files, index).await else {
            return Err(ApiError::internal(format!(
                "index {} of segment {} is not readable",
                index.name, files.id
            )));
        };
        let field = info
            .schema
            .field(&index.field_name)
            .map(|f| f.id)
            .ok_or_else(|| {
                ApiError::internal(format!("index {} names a missing field", index.name))
            })?;
        let mut all = self.served.write().await;
        let s = all
            .get_mut(&(at.collection, at.shard))
            .ok_or_else(|| missing(files.id))?;
        if !s.segments.contains_key(&files.id) {
            return Err(missing(files.id));
        }
        s.indexes.insert((files.id, field), idx);
        tracing::info!(segment = files.id.0, index = %index.index_type, "index loaded for a served segment");
        Ok(())
    }
}

fn not_served(at: ShardRef) -> ApiError {
    ApiError::new(
        code::NOT_OPEN,
        format!(
            "collection {} shard {} is not served here",
            at.collection, at.shard
        ),
    )
}

#[async_trait::async_trait]
impl QueryNodeApi for QueryNode {
    async fn load(
        &self,
        info: CollectionInfo,
        at: ShardRef,
        segments: Handoff,
        epoch: u64,
    ) -> ApiResult<()> {
        if quiver_core::mutation::active("early-release") {
            self.load_late(info, at.shard, segments, epoch);
            return Ok(());
        }
        QueryNode::load(self, info, at.shard, segments, epoch).await
    }

    async fn release(&self, at: ShardRef, segments: Vec<SegmentId>, epoch: u64) -> ApiResult<()> {
        self.fence(at.collection, at.shard, epoch)?;
        if let Some(s) = self
            .served
            .write()
            .await
            .get_mut(&(at.collection, at.shard))
        {
            for id in segments {
                s.segments.remove(&id);
                s.indexes.retain(|(sid, _), _| *sid != id);
            }
        }
        Ok(())
    }

    async fn load_index(
        &self,
        info: Box<CollectionInfo>,
        at: ShardRef,
        files: Box<SegmentFiles>,
        index: Box<IndexInfo>,
        epoch: u64,
    ) -> ApiResult<()> {
        self.fence(info.id, at.shard, epoch)?;
        self.add_index(&info, at, &files, &index).await
    }

    async fn drop_collection(&self, collection: CollectionId) -> ApiResult<()> {
        self.served
            .write()
            .await
            .retain(|(c, _), _| *c != collection);
        Ok(())
    }

    async fn delete(
        &self,
        at: ShardRef,
        deletes: Vec<(SegmentId, DeleteRecord)>,
        epoch: u64,
    ) -> ApiResult<()> {
        self.fence(at.collection, at.shard, epoch)?;
        let mut all = self.served.write().await;
        let s = all
            .get_mut(&(at.collection, at.shard))
            .ok_or_else(|| not_served(at))?;
        for (id, d) in deletes {
            let seg = Arc::make_mut(s.segments.get_mut(&id).ok_or_else(|| missing(id))?);
            seg.delete(&d.pk, d.ts);
        }
        Ok(())
    }

    async fn search(
        &self,
        at: ShardRef,
        segments: Vec<SegmentId>,
        search: VectorSearch,
    ) -> ApiResult<Vec<Vec<Hit>>> {
        let deadline = search.scope.deadline;
        let _reading = Reading::start(self, at, search.scope.read_id);
        let work = self.search_segments(at, &segments, search);
        crate::deadline::within(deadline, "the query node's search", work).await
    }

    async fn query_rows(
        &self,
        at: ShardRef,
        segments: Vec<SegmentId>,
        scope: WireScope,
        limit: Option<u64>,
    ) -> ApiResult<Vec<(Pk, SegmentId, u32)>> {
        let _reading = Reading::start(self, at, scope.read_id);
        let work = self.rows_in_scope(at, &segments, &scope, limit);
        crate::deadline::within(scope.deadline, "the query node's query", work).await
    }

    async fn count(
        &self,
        at: ShardRef,
        segments: Vec<SegmentId>,
        scope: WireScope,
    ) -> ApiResult<u64> {
        let _reading = Reading::start(self, at, scope.read_id);
        let work = self.count_in_scope(at, &segments, &scope);
        crate::deadline::within(scope.deadline, "the query node's count", work).await
    }

    async fn fetch(&self, at: ShardRef, refs: Vec<(SegmentId, u32)>) -> ApiResult<Batch> {
        self.rows_by_ref(at, &refs).await
    }

    async fn reading(&self, at: ShardRef, read_id: u64) -> ApiResult<bool> {
        let reads = self.reads.lock().unwrap_or_else(|e| e.into_inner());
        Ok(reads.contains_key(&(at.collection, at.shard, read_id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read is known while it runs and forgotten when it ends, per shard and id.
    #[test]
    fn a_read_is_known_while_it_runs() {
        quiver_core::rt::block_on(async {
            let qn = start(QueryNodeDeps {
                store: Arc::new(object_store::memory::InMemory::new()),
            });
            let at = ShardRef {
                collection: CollectionId(1),
                shard: 0,
            };
            let other = ShardRef { shard: 1, ..at };
            assert!(!qn.reading(at, 5).await.unwrap());
            let a = Reading::start(&qn, at, 5);
            let b = Reading::start(&qn, at, 5);
            assert!(qn.reading(at, 5).await.unwrap());
            assert!(!qn.reading(other, 5).await.unwrap());
            assert!(!qn.reading(at, 6).await.unwrap());
            drop(a);
            assert!(qn.reading(at, 5).await.unwrap());
            drop(b);
            assert!(!qn.reading(at, 5).await.unwrap());
        });
    }
}
