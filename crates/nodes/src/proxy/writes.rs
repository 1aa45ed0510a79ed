//! DML: insert, upsert and delete (rows routed to shards by primary-key hash, the
//! shards written at once), and flush.

use quiver_core::batch::{Batch, Pk};
use quiver_core::ids::PartitionId;
use quiver_core::shard::MutationAck;
use quiver_core::tso::Timestamp;

use super::context::{ok, Ctx};
use super::fanout;
use super::shards::Shards;
use super::{convert, shard_of, Proxy, MAX_REQUEST_BYTES};
use crate::coordinator::{CollectionInfo, DEFAULT_PARTITION};
use crate::error::{code, ApiError, ApiResult};
use crate::pb::milvus::*;
use crate::pb::schema::{self as ps, field_data::Field as FdField};

/// The rows of an Insert or Upsert request.
struct Rows<'a> {
    collection: &'a str,
    partition: &'a str,
    fields: Vec<ps::FieldData>,
    num_rows: u32,
    upsert: bool,
}

impl Proxy {
    pub(super) async fn do_insert(&self, ctx: &Ctx, r: InsertRequest) -> ApiResult<MutationResult> {
        let size = prost::Message::encoded_len(&r);
        if size > MAX_REQUEST_BYTES {
            return Err(ApiError::invalid(format!("request of {size} bytes exceeds the {MAX_REQUEST_BYTES}-byte limit; insert in smaller batches")));
        }
        let rows = Rows {
            collection: &r.collection_name,
            partition: &r.partition_name,
            fields: r.fields_data,
            num_rows: r.num_rows,
            upsert: false,
        };
        self.write_rows(&ctx.db, rows).await
    }

    pub(super) async fn do_upsert(&self, ctx: &Ctx, r: UpsertRequest) -> ApiResult<MutationResult> {
        let size = prost::Message::encoded_len(&r);
        if size > MAX_REQUEST_BYTES {
            return Err(ApiError::invalid(format!("request of {size} bytes exceeds the {MAX_REQUEST_BYTES}-byte limit; upsert in smaller batches")));
        }
        let rows = Rows {
            collection: &r.collection_name,
            partition: &r.partition_name,
            fields: r.fields_data,
            num_rows: r.num_rows,
            upsert: true,
        };
        self.write_rows(&ctx.db, rows).await
    }

    async fn write_rows(&self, db: &str, rows: Rows<'_>) -> ApiResult<MutationResult> {
        let info = self.coord.get(db, rows.collection).await?;
        let partition = if rows.partition.is_empty() {
            DEFAULT_PARTITION
        } else {
            rows.partition
        };
        let partition = info.partition(partition)?.id;
        let num_rows = if rows.num_rows > 0 {
            rows.num_rows as usize
        } else {
            rows.fields.first().map(field_rows).unwrap_or(0)
        };
        if num_rows == 0 {
            return Err(ApiError::invalid("no rows to insert"));
        }
        let upsert = rows.upsert;
        let mut auto_ids = Some(self.auto_ids(&info, num_rows, upsert).await?);
        let batch = convert::batch_from_fields(
            &info.schema,
            rows.fields,
            num_rows,
            |_| auto_ids.take().unwrap_or_default(),
            upsert,
        )?;
        if upsert {
            batch
                .check_unique_pks(&info.schema)
                .map_err(|e| ApiError::invalid(e.to_string()))?;
        }
        let pks = batch.pks(&info.schema);
        let ts = write_batch(&self.shards(&info), partition, &batch, &pks, upsert).await?;
        let n = num_rows as i64;
        ok(MutationResult {
            i_ds: Some(convert::ids(&pks, &info.schema)),
            succ_index: (0..num_rows as u32).collect(),
            insert_cnt: if upsert { 0 } else { n },
            upsert_cnt: if upsert { n } else { 0 },
            timestamp: ts.0,
            ..Default::default()
        })
    }

    /// Keys for `n` inserted rows of an auto-id collection: from the TSO, so unique,
    /// increasing, never reused. None for an upsert or a collection without auto-id.
    async fn auto_ids(&self, info: &CollectionInfo, n: usize, upsert: bool) -> ApiResult<Vec<i64>> {
        if !info.schema.primary_field().auto_id || upsert {
            return Ok(Vec::new());
        }
        let last = self.coord.alloc(n as u32).await?;
        Ok((0..n as u64)
            .map(|i| (last.0 - (n as u64 - 1) + i) as i64)
            .collect())
    }

    pub(super) async fn do_delete(&self, ctx: &Ctx, r: DeleteRequest) -> ApiResult<MutationResult> {
        let info = self.coord.get(&ctx.db, &r.collection_name).await?;
        if r.expr.trim().is_empty() {
            return Err(ApiError::new(
                code::MISSING_PARAMETER,
                "delete needs a filter expression",
            ));
        }
        let (pred, _) = Self::compile(&info.schema, &r.expr, r.expr_template_values)?;
        let shards = self.shards(&info);
        let pks: Vec<Pk> = match pred.primary_keys() {
            Some(pks) => pks,
            None => {
                let names: Vec<String> = if r.partition_name.is_empty() {
                    vec![]
                } else {
                    vec![r.partition_name.clone()]
                };
                let parts = Self::partitions_named(&info, &names)?;
                let scope = Self::scope(self.coord.now().await?, parts, pred.clone());
                matching_pks(&shards, &scope).await?
            }
        };
        let ts = delete_keys(&shards, &pks).await?;
        ok(MutationResult {
            i_ds: Some(convert::ids(&pks, &info.schema)),
            delete_cnt: pks.len() as i64,
            timestamp: ts.0,
            ..Default::default()
        })
    }

    pub(super) async fn do_flush(&self, ctx: &Ctx, r: FlushRequest) -> ApiResult<FlushResponse> {
        let mut resp = FlushResponse {
            db_name: ctx.db.clone(),
            ..Default::default()
        };
        for name in &r.collection_names {
            let info = self.coord.get(&ctx.db, name).await?;
            let shards = self.shards(&info);
            let mut segs = Vec::new();
            // One shard after another: a flush is heavy, and rare.
            for i in 0..shards.len() {
                segs.extend(shards.flush(i).await?.into_iter().map(|s| s.0));
            }
            let ts = self.coord.now().await?;
            resp.coll_flush_ts.insert(name.clone(), ts.0);
            resp.coll_seg_i_ds
                .insert(name.clone(), ps::LongArray { data: segs.clone() });
            resp.flush_coll_seg_i_ds
                .insert(name.clone(), ps::LongArray { data: segs });
        }
        ok(resp)
    }

    pub(super) async fn do_get_flush_state(
        &self,
        ctx: &Ctx,
        r: GetFlushStateRequest,
    ) -> ApiResult<GetFlushStateResponse> {
        // Flush returns only after the manifest is committed, so anything a client
        // flushed is flushed by the time it can ask.
        if !r.collection_name.is_empty() {
            self.coord.get(&ctx.db, &r.collection_name).await?;
        }
        ok(GetFlushStateResponse {
            flushed: true,
            ..Default::default()
        })
    }
}

/// Writes each shard's rows of `batch` (whose keys are `pks`), every shard at once;
/// the latest acknowledgement's timestamp, or the lowest failing shard's error (a
/// failed write may or may not have happened; the client decides).
async fn write_batch(
    shards: &Shards<'_>,
    partition: PartitionId,
    batch: &Batch,
    pks: &[Pk],
    upsert: bool,
) -> ApiResult<Timestamp> {
    quiver_core::invariant_cheap!(pks.len() == batch.num_rows, "one key per row");
    let mut per_shard: Vec<Vec<usize>> = vec![Vec::new(); shards.len()];
    for (i, pk) in pks.iter().enumerate() {
        per_shard[shard_of(pk, shards.len())].push(i);
    }
    let parts: Vec<(usize, Batch)> = per_shard
        .into_iter()
        .enumerate()
        .filter(|(_, rows)| !rows.is_empty())
        .map(|(shard, rows)| (shard, batch.take(&rows)))
        .collect();
    let acks = fanout::all(&parts, |(shard, b)| {
        shards.write(*shard, partition, b, upsert)
    })
    .await?;
    Ok(latest(&acks))
}

/// Deletes `pks` from their shards, every shard at once; like [`write_batch`].
async fn delete_keys(shards: &Shards<'_>, pks: &[Pk]) -> ApiResult<Timestamp> {
    let mut per_shard: Vec<Vec<Pk>> = vec![Vec::new(); shards.len()];
    for pk in pks {
        per_shard[shard_of(pk, shards.len())].push(pk.clone());
    }
    let parts: Vec<(usize, Vec<Pk>)> = per_shard
        .into_iter()
        .enumerate()
        .filter(|(_, keys)| !keys.is_empty())
        .collect();
    let acks = fanout::all(&parts, |(shard, keys)| shards.delete(*shard, keys)).await?;
    Ok(latest(&acks))
}

fn latest(acks: &[MutationAck]) -> Timestamp {
    acks.iter()
        .map(|a| a.ts)
        .fold(Timestamp::ZERO, Timestamp::max)
}

/// The keys of the rows matching `scope` (a delete by filter), shard by shard.
async fn matching_pks(shards: &Shards<'_>, scope: &crate::rpc::WireScope) -> ApiResult<Vec<Pk>> {
    let per_shard = fanout::all(0..shards.len(), |i| shards.query_rows(i, scope, None)).await?;
    let mut out = Vec::new();
    for rows in per_shard {
        let mut pks: Vec<Pk> = rows.into_iter().map(|(pk, _, _)| pk).collect();
        pks.dedup();
        out.extend(pks);
    }
    Ok(out)
}

/// Rows in a wire column (to infer `num_rows` when a client leaves it 0).
fn field_rows(fd: &ps::FieldData) -> usize {
    use ps::scalar_field::Data as Sd;
    use ps::vector_field::Data as Vd;
    match &fd.field {
        Some(FdField::Scalars(s)) => match &s.data {
            Some(Sd::BoolData(v)) => v.data.len(),
            Some(Sd::IntData(v)) => v.data.len(),
            Some(Sd::LongData(v)) => v.data.len(),
            Some(Sd::FloatData(v)) => v.data.len(),
            Some(Sd::DoubleData(v)) => v.data.len(),
            Some(Sd::StringData(v)) => v.data.len(),
            Some(Sd::JsonData(v)) => v.data.len(),
            _ => 0,
        },
        Some(FdField::Vectors(v)) => match &v.data {
            Some(Vd::FloatVector(f)) if v.dim > 0 => f.data.len() / v.dim as usize,
            _ => 0,
        },
        _ => 0,
    }
    .max(fd.valid_data.len())
}
