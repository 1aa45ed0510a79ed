//! Grouping search (`group_by_field`, `group_size`, `strict_group_size`): at most
//! `limit` groups per query, each of up to `group_size` hits sharing one value of a
//! scalar field, groups ordered by their best hit and each group's hits together.
//! A grouped search asks the shards in rounds, for more candidates each round, until
//! every query has its groups or the shards run out.

use std::collections::{BTreeMap, HashMap};

use quiver_core::batch::{Batch, ColumnData};
use quiver_core::schema::{CollectionSchema, DataType, FieldSchema};
use quiver_core::search::{reduce, Hit};

use super::fanout;
use super::params::{parse_usize, MAX_TOPK};
use super::shards::{Shards, VectorQuery};
use crate::error::{code, ApiError, ApiResult};
use crate::rpc::WireScope;

/// Most hits one group may hold.
pub const MAX_GROUP_SIZE: usize = 1024;

/// A grouping search as the client asked for it.
pub struct GroupBy<'a> {
    pub field: &'a FieldSchema,
    pub size: usize,
    pub strict: bool,
}

/// A group's value: one of the scalar kinds a group-by field may have, or null.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupKey {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
}

impl<'a> GroupBy<'a> {
    /// Reads the grouping parameters from the search's key-values (where pymilvus
    /// puts them) or its `params` JSON; `None` when the search is not grouped.
    pub fn parse(
        schema: &'a CollectionSchema,
        kvs: &BTreeMap<String, String>,
        inner: &serde_json::Map<String, serde_json::Value>,
        groups_wanted: usize,
    ) -> ApiResult<Option<GroupBy<'a>>> {
        let text = |key: &str| -> Option<String> {
            kvs.get(key)
                .cloned()
                .filter(|v| !v.trim().is_empty())
                .or_else(|| {
                    inner.get(key).map(|v| match v.as_str() {
                        Some(s) => s.to_string(),
                        None => v.to_string(),
                    })
                })
        };
        let Some(name) = text("group_by_field") else {
            return Ok(None);
        };
        let field = schema.field(&name).ok_or_else(|| {
            ApiError::new(
                code::FIELD_NOT_FOUND,
                format!("failed to get field schema: group by field {name} not found"),
            )
        })?;
        match field.data_type {
            DataType::Bool
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::VarChar { .. } => {}
            _ => {
                return Err(ApiError::invalid(format!(
                    "group by field {name} has type {:?}; only Bool, Int8/16/32/64 and VarChar \
                     fields can group a search",
                    field.data_type
                )))
            }
        }
        let mut sizes = BTreeMap::new();
        if let Some(v) = text("group_size") {
            sizes.insert("group_size".to_string(), v);
        }
        let size = parse_usize(&sizes, "group_size")?.unwrap_or(1);
        if size == 0 || size > MAX_GROUP_SIZE {
            return Err(ApiError::invalid(format!(
                "group_size [{size}] is invalid, it should be in range [1, {MAX_GROUP_SIZE}]"
            )));
        }
        if groups_wanted.saturating_mul(size) > MAX_TOPK {
            return Err(ApiError::invalid(format!(
                "(limit+offset) * group_size = {} exceeds the limit of {MAX_TOPK} hits",
                groups_wanted.saturating_mul(size)
            )));
        }
        let strict = match text("strict_group_size") {
            None => false,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(ApiError::invalid(format!(
                        "strict_group_size={v:?} is not a boolean"
                    )))
                }
            },
        };
        Ok(Some(GroupBy {
            field,
            size,
            strict,
        }))
    }

    /// How many candidates per query to ask the shards for first.
    pub fn first_candidates(&self, groups_wanted: usize) -> usize {
        (groups_wanted * self.size * 4).clamp(1, MAX_TOPK)
    }
}

/// The group value of row `i` of the group-by field's column in `batch`.
pub fn key_of(schema: &CollectionSchema, field: &FieldSchema, batch: &Batch, i: usize) -> GroupKey {
    let pos = schema
        .position(field.id)
        .expect("group-by field is in the schema");
    let col = &batch.columns[pos];
    if col.valid.as_ref().is_some_and(|v| !v[i]) {
        return GroupKey::Null;
    }
    match &col.data {
        ColumnData::Bool(v) => GroupKey::Bool(v[i]),
        ColumnData::Int8(v) => GroupKey::Int(v[i] as i64),
        ColumnData::Int16(v) => GroupKey::Int(v[i] as i64),
        ColumnData::Int32(v) => GroupKey::Int(v[i] as i64),
        ColumnData::Int64(v) => GroupKey::Int(v[i]),
        ColumnData::VarChar(v) => GroupKey::Str(v[i].clone()),
        // `parse` admits only the kinds above.
        other => unreachable!("group-by over a {other:?} column"),
    }
}

/// The outcome of grouping one query's candidates.
pub struct Grouped {
    /// Indices into the candidates, in output order: groups by their best hit, each
    /// group's hits together in score order.
    pub hits: Vec<usize>,
    /// Whether more candidates could change the answer: fewer groups than wanted, or
    /// (strict) a group not yet full, while the candidates did not run out.
    pub wants_more: bool,
}

/// Groups `hits` (best first) whose keys are `keys`, keeping `groups_wanted` groups of
/// up to `g.size` hits; `exhausted` says the shards had no more candidates.
pub fn group(
    g: &GroupBy<'_>,
    hits: &[Hit],
    keys: &[GroupKey],
    groups_wanted: usize,
    exhausted: bool,
) -> Grouped {
    debug_assert_eq!(hits.len(), keys.len());
    let mut order: Vec<GroupKey> = Vec::new();
    let mut members: HashMap<&GroupKey, Vec<usize>> = HashMap::new();
    for (i, key) in keys.iter().enumerate() {
        match members.get_mut(key) {
            Some(m) if m.len() < g.size => m.push(i),
            Some(_) => {}
            None if order.len() < groups_wanted => {
                order.push(key.clone());
                members.insert(key, vec![i]);
            }
            None => {}
        }
    }
    let full = order
        .iter()
        .all(|k| members.get(k).is_some_and(|m| m.len() == g.size));
    let wants_more = !exhausted && (order.len() < groups_wanted || (g.strict && !full));
    let hits = order
        .iter()
        .flat_map(|k| members.get(k).cloned().unwrap_or_default())
        .collect();
    Grouped { hits, wants_more }
}

/// Most candidate rows (all queries together) one round of a grouped search fetches.
const GROUP_ROW_BUDGET: usize = 1 << 18;

/// A grouped search: asks for more candidates (up to the top-k limit) until every
/// query has its groups, or the shards run out; returns each query's hits after
/// skipping `offset` groups, and their rows.
pub(super) async fn grouped_search(
    shards: &Shards<'_>,
    vq: &mut VectorQuery<'_>,
    scope: &WireScope,
    g: &GroupBy<'_>,
    groups_wanted: usize,
    offset: usize,
) -> ApiResult<(Vec<Vec<Hit>>, Option<Batch>)> {
    // Each round fetches whole rows for every candidate of every query: bounded.
    let nq = vq.queries.len().max(1);
    let cap = (GROUP_ROW_BUDGET / nq).min(MAX_TOPK);
    if cap < groups_wanted * g.size {
        return Err(ApiError::invalid(format!(
            "a grouped search of {nq} queries x {} hits exceeds the {GROUP_ROW_BUDGET}-row \
             budget; split it into smaller requests",
            groups_wanted * g.size
        )));
    }
    vq.k = vq.k.min(cap);
    loop {
        let round = group_round(shards, vq, scope, g, groups_wanted).await?;
        if round.wants_more && vq.k < cap {
            vq.k = (vq.k * 4).min(cap);
            continue;
        }
        return Ok(round.skip_groups(&shards.info.schema, offset));
    }
}

/// One round of a grouped search: the candidates, their rows, and each query's groups.
struct Round {
    candidates: Vec<Vec<Hit>>,
    rows: Batch,
    /// Per query: its first row in `rows`, its picked candidates, every candidate's key.
    per_query: Vec<(usize, Vec<usize>, Vec<GroupKey>)>,
    wants_more: bool,
}

async fn group_round(
    shards: &Shards<'_>,
    vq: &VectorQuery<'_>,
    scope: &WireScope,
    g: &GroupBy<'_>,
    groups_wanted: usize,
) -> ApiResult<Round> {
    let schema = &shards.info.schema;
    let per_shard = fanout::search(shards, vq, scope).await?;
    let candidates: Vec<Vec<Hit>> = (0..vq.queries.len())
        .map(|q| reduce(per_shard.iter().map(|r| r[q].clone()).collect(), vq.k))
        .collect();
    let refs: Vec<fanout::RowRef> = candidates
        .iter()
        .flatten()
        .map(|h| ((h.segment.0 >> 40) as usize, h.segment, h.row))
        .collect();
    let rows = fanout::fetch_rows(schema, shards, &refs).await?;
    if rows.num_rows != refs.len() {
        return Err(ApiError::new(
            code::UNAVAILABLE,
            "rows moved while the grouped search fetched them; retry it",
        ));
    }
    let mut first = 0;
    let mut wants_more = false;
    let mut per_query = Vec::with_capacity(candidates.len());
    for hits in &candidates {
        let keys: Vec<GroupKey> = (first..first + hits.len())
            .map(|i| key_of(schema, g.field, &rows, i))
            .collect();
        let exhausted = hits.len() < vq.k;
        let grouped = group(g, hits, &keys, groups_wanted, exhausted);
        wants_more |= grouped.wants_more;
        per_query.push((first, grouped.hits, keys));
        first += hits.len();
    }
    Ok(Round {
        candidates,
        rows,
        per_query,
        wants_more,
    })
}

impl Round {
    /// Each query's picked hits after skipping `offset` whole groups, and their rows.
    fn skip_groups(
        self,
        schema: &CollectionSchema,
        offset: usize,
    ) -> (Vec<Vec<Hit>>, Option<Batch>) {
        let mut out_rows = Batch::empty(schema);
        let mut out = Vec::with_capacity(self.per_query.len());
        for ((first, picked, keys), hits) in self.per_query.into_iter().zip(&self.candidates) {
            // A group's hits are contiguous, so a new key starts the next group.
            let (mut group_no, mut prev) = (0, None);
            let mut kept = Vec::new();
            for i in picked {
                if prev != Some(&keys[i]) {
                    group_no += 1;
                    prev = Some(&keys[i]);
                }
                if group_no > offset {
                    out_rows.push_row(&self.rows, first + i);
                    kept.push(hits[i].clone());
                }
            }
            out.push(kept);
        }
        (out, Some(out_rows))
    }
}

#[cfg(test)]
mod tests;
