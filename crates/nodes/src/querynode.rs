//! The query node: serves sealed segments handed off by shard delegators. It loads a
//! segment's objects from object storage (verifying each), applies the deletes the
//! delegator sends with it and after it, and answers searches and queries over the
//! segments a delegator names.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use quiver_ann::bitset::Bitset;
use quiver_ann::index::{AnnIndex, SearchParams};
use quiver_core::ids::FieldId;
use quiver_core::ids::{CollectionId, SegmentId};
use quiver_core::rt;
use quiver_core::search::{reduce, search_segment, SearchRequest};
use quiver_core::segment::storage::{self, SegmentFiles};
use quiver_core::segment::{SealedSegment, SegmentView};

use crate::coordinator::{CollectionInfo, IndexInfo};
use crate::error::{code, ApiError, ApiResult};
use crate::rpc::wire::{QueryNodeRequest, StreamResponse, WireHit};

struct Served {
    info: CollectionInfo,
    segments: BTreeMap<SegmentId, SealedSegment>,
    /// Built vector indexes, by segment and field.
    indexes: BTreeMap<(SegmentId, FieldId), AnnIndex>,
}

pub struct QueryNode {
    store: Arc<dyn ObjectStore>,
    served: Arc<tokio::sync::RwLock<BTreeMap<(CollectionId, u32), Served>>>,
    /// The newest owner epoch each shard's delegator has spoken with.
    epochs: Arc<std::sync::Mutex<BTreeMap<(CollectionId, u32), u64>>>,
}

/// The segment a read names. A segment this node does not serve is an error, so the
/// delegator takes it back — except under the planted bug `early-release`, where a
/// segment still loading reads as empty.
fn segment_of(s: &Served, id: SegmentId) -> ApiResult<Option<&SealedSegment>> {
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
    ) -> Option<AnnIndex> {
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
            Ok(i) => Some(i),
            Err(e) => {
                tracing::error!(%path, error = %e, "refusing a damaged index; searching exactly");
                None
            }
        }
    }

    pub fn new(store: Arc<dyn ObjectStore>) -> Arc<Self> {
        Arc::new(QueryNode {
            store,
            served: Default::default(),
            epochs: Default::default(),
        })
    }

    /// Loads segments (verifying every object) and the indexes built for them.
    async fn load(
        &self,
        info: CollectionInfo,
        shard: u32,
        segments: Vec<(SegmentFiles, Vec<quiver_core::segment::DeleteRecord>)>,
        epoch: u64,
    ) -> ApiResult<StreamResponse> {
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
            entry.segments.insert(seg.id, seg);
        }
        entry.indexes.extend(indexes);
        Ok(StreamResponse::Done)
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

    /// Serves one request.
    #[tracing::instrument(skip_all, fields(op = req.name()))]
    pub async fn handle(&self, req: QueryNodeRequest) -> ApiResult<StreamResponse> {
        match req {
            QueryNodeRequest::Load {
                info,
                shard,
                segments,
                epoch,
            } if quiver_core::mutation::active("early-release") => {
                // Planted bug: acknowledge the load (so the delegator releases its
                // copy) and load later.
                let node = QueryNode {
                    store: self.store.clone(),
                    served: self.served.clone(),
                    epochs: self.epochs.clone(),
                };
                rt::spawn(async move {
                    rt::sleep(std::time::Duration::from_millis(1500)).await;
                    let _ = node.load(info, shard, segments, epoch).await;
                });
                Ok(StreamResponse::Done)
            }
            QueryNodeRequest::Load {
                info,
                shard,
                segments,
                epoch,
            } => self.load(info, shard, segments, epoch).await,
            QueryNodeRequest::Release {
                collection,
                shard,
                segments,
                epoch,
            } => {
                self.fence(collection, shard, epoch)?;
                if let Some(s) = self.served.write().await.get_mut(&(collection, shard)) {
                    for id in segments {
                        s.segments.remove(&id);
                        s.indexes.retain(|(sid, _), _| *sid != id);
                    }
                }
                Ok(StreamResponse::Done)
            }
            QueryNodeRequest::LoadIndex {
                info,
                shard,
                files,
                index,
                epoch,
            } => {
                self.fence(info.id, shard, epoch)?;
                let Some(idx) = self.load_index(&info, &files, &index).await else {
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
                    .get_mut(&(info.id, shard))
                    .ok_or_else(|| missing(files.id))?;
                if !s.segments.contains_key(&files.id) {
                    return Err(missing(files.id));
                }
                s.indexes.insert((files.id, field), idx);
                tracing::info!(segment = files.id.0, index = %index.index_type, "index loaded for a served segment");
                Ok(StreamResponse::Done)
            }
            QueryNodeRequest::DropCollection { collection } => {
                self.served
                    .write()
                    .await
                    .retain(|(c, _), _| *c != collection);
                Ok(StreamResponse::Done)
            }
            QueryNodeRequest::Delete {
                collection,
                shard,
                deletes,
                epoch,
            } => {
                self.fence(collection, shard, epoch)?;
                let mut all = self.served.write().await;
                let s = all.get_mut(&(collection, shard)).ok_or_else(|| {
                    ApiError::new(
                        code::NOT_OPEN,
                        format!("collection {collection} shard {shard} is not served here"),
                    )
                })?;
                for (id, d) in deletes {
                    let seg = s.segments.get_mut(&id).ok_or_else(|| missing(id))?;
                    seg.delete(&d.pk, d.ts);
                }
                Ok(StreamResponse::Done)
            }
            QueryNodeRequest::Search {
                collection,
                shard,
                segments,
                field,
                queries,
                k,
                metric,
                scope,
                params,
            } => {
                let all = self.served.read().await;
                let s = served(&all, collection, shard)?;
                let pred = scope.compile(&s.info)?;
                let f = |seg: &dyn SegmentView, row: usize| pred.eval(seg.data(), row);
                let prepared: Vec<Vec<f32>> =
                    queries.iter().map(|q| metric.prepare_query(q)).collect();
                let req = SearchRequest {
                    field,
                    queries: &prepared,
                    k: k as usize,
                    metric,
                    read_ts: scope.read_ts,
                    filter: if pred.matches_all() { None } else { Some(&f) },
                    range: crate::rpc::wire::score_range(&params)?,
                };
                let search_params =
                    SearchParams::from_milvus(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                        .map_err(|e| ApiError::invalid(format!("search params: {e}")))?;
                let mut per_segment = Vec::new();
                for id in &segments {
                    let Some(seg) = segment_of(s, *id)? else {
                        continue;
                    };
                    match s
                        .indexes
                        .get(&(*id, field))
                        // Range searches scan exactly: an index walk stops at top-k.
                        .filter(|i| i.metric() == metric && req.range.is_unbounded())
                    {
                        Some(index) => {
                            per_segment.push(search_indexed(seg, index, &req, &search_params))
                        }
                        None => per_segment.push(search_segment(seg, &req)),
                    }
                }
                let hits = (0..queries.len())
                    .map(|q| {
                        reduce(
                            per_segment.iter().map(|r| r[q].clone()).collect(),
                            k as usize,
                        )
                        .into_iter()
                        .map(|h| WireHit {
                            pk: h.pk,
                            score: h.score,
                            distance: h.distance,
                            segment: h.segment,
                            row: h.row,
                        })
                        .collect()
                    })
                    .collect();
                Ok(StreamResponse::Hits(hits))
            }
            QueryNodeRequest::QueryRows {
                collection,
                shard,
                segments,
                scope,
                limit,
            } => {
                let all = self.served.read().await;
                let s = served(&all, collection, shard)?;
                let pred = scope.compile(&s.info)?;
                let f = |seg: &dyn SegmentView, row: usize| pred.eval(seg.data(), row);
                let rs = scope.read_scope(&pred, &f);
                let mut rows = Vec::new();
                for id in &segments {
                    let Some(seg) = segment_of(s, *id)? else {
                        continue;
                    };
                    for i in 0..seg.num_rows() {
                        if seg.is_visible(i, rs.read_ts) && rs.filter.is_none_or(|f| f(seg, i)) {
                            rows.push((seg.pk(i).clone(), seg.id, i as u32));
                        }
                    }
                }
                rows.sort();
                if let Some(l) = limit {
                    rows.truncate(l as usize);
                }
                Ok(StreamResponse::Rows(rows))
            }
            QueryNodeRequest::Count {
                collection,
                shard,
                segments,
                scope,
            } => {
                let all = self.served.read().await;
                let s = served(&all, collection, shard)?;
                let pred = scope.compile(&s.info)?;
                let f = |seg: &dyn SegmentView, row: usize| pred.eval(seg.data(), row);
                let rs = scope.read_scope(&pred, &f);
                let mut n = 0u64;
                for id in &segments {
                    let Some(seg) = segment_of(s, *id)? else {
                        continue;
                    };
                    n += (0..seg.num_rows())
                        .filter(|&i| {
                            seg.is_visible(i, rs.read_ts) && rs.filter.is_none_or(|f| f(seg, i))
                        })
                        .count() as u64;
                }
                Ok(StreamResponse::Count(n))
            }
            QueryNodeRequest::Fetch {
                collection,
                shard,
                refs,
            } => {
                let all = self.served.read().await;
                let s = served(&all, collection, shard)?;
                let mut out = quiver_core::batch::Batch::empty(&s.info.schema);
                for (id, row) in refs {
                    let seg = s.segments.get(&id).ok_or_else(|| missing(id))?;
                    if row as usize >= seg.num_rows() {
                        return Err(ApiError::internal(format!("segment {id} has no row {row}")));
                    }
                    out.push_row(&seg.data().take(&[row as usize]), 0);
                }
                Ok(StreamResponse::Fetched(out))
            }
        }
    }
}

/// Searches one segment through its index: the rows a read may see (visible at the
/// snapshot, passing the filter) become the index's allowed set.
fn search_indexed(
    seg: &SealedSegment,
    index: &AnnIndex,
    req: &SearchRequest<'_>,
    params: &SearchParams,
) -> Vec<Vec<quiver_core::search::Hit>> {
    let allowed = Bitset::from_fn(seg.num_rows(), |i| {
        seg.is_visible(i, req.read_ts) && req.filter.is_none_or(|f| f(seg, i))
    });
    req.queries
        .iter()
        .map(|q| {
            index
                .search(q, req.k, params, Some(&allowed))
                .into_iter()
                .map(|(row, score)| quiver_core::search::Hit {
                    pk: seg.pk(row as usize).clone(),
                    score,
                    distance: req.metric.to_distance(score),
                    segment: seg.id,
                    row,
                })
                .collect()
        })
        .collect()
}

fn served(
    all: &BTreeMap<(CollectionId, u32), Served>,
    c: CollectionId,
    shard: u32,
) -> ApiResult<&Served> {
    all.get(&(c, shard)).ok_or_else(|| {
        ApiError::new(
            code::NOT_OPEN,
            format!("collection {c} shard {shard} is not served here"),
        )
    })
}
