//! Grouping search (`group_by_field`, `group_size`, `strict_group_size`): at most
//! `limit` groups per query, each of up to `group_size` hits sharing one value of a
//! scalar field, groups ordered by their best hit and each group's hits together.

use std::collections::{BTreeMap, HashMap};

use quiver_core::batch::{Batch, ColumnData};
use quiver_core::schema::{CollectionSchema, DataType, FieldSchema};
use quiver_core::search::Hit;

use super::params::{parse_usize, MAX_TOPK};
use crate::error::{code, ApiError, ApiResult};

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

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_core::batch::Pk;
    use quiver_core::ids::SegmentId;

    fn hits(n: usize) -> Vec<Hit> {
        (0..n)
            .map(|i| Hit {
                pk: Pk::Int(i as i64),
                score: i as f32,
                distance: i as f32,
                segment: SegmentId(1),
                row: i as u32,
            })
            .collect()
    }

    fn schema() -> CollectionSchema {
        CollectionSchema::new(
            "g",
            vec![
                FieldSchema::new("id", DataType::Int64).primary(false),
                FieldSchema::new("doc", DataType::Int64),
                FieldSchema::new("v", DataType::FloatVector { dim: 2 }),
            ],
            false,
        )
        .unwrap()
    }

    #[test]
    fn groups_keep_their_best_hits_together_in_best_first_order() {
        let s = schema();
        let g = GroupBy {
            field: s.field("doc").unwrap(),
            size: 2,
            strict: false,
        };
        let keys: Vec<GroupKey> = [1, 2, 1, 1, 3, 2, 4]
            .iter()
            .map(|k| GroupKey::Int(*k))
            .collect();
        let out = group(&g, &hits(7), &keys, 2, false);
        // Group 1 (hits 0, 2; hit 3 overflows), then group 2 (hits 1, 5); 3 and 4 are
        // groups beyond the limit.
        assert_eq!(out.hits, vec![0, 2, 1, 5]);
        assert!(!out.wants_more);
        let out = group(&g, &hits(7), &keys, 5, false);
        assert_eq!(out.hits, vec![0, 2, 1, 5, 4, 6]);
        assert!(
            out.wants_more,
            "too few groups and the shards may have more"
        );
        assert!(!group(&g, &hits(7), &keys, 5, true).wants_more);
    }

    #[test]
    fn strict_groups_ask_for_more_until_full() {
        let s = schema();
        let g = GroupBy {
            field: s.field("doc").unwrap(),
            size: 2,
            strict: true,
        };
        let keys = vec![GroupKey::Int(1), GroupKey::Null, GroupKey::Int(1)];
        let out = group(&g, &hits(3), &keys, 2, false);
        assert_eq!(out.hits, vec![0, 2, 1]);
        assert!(out.wants_more, "the null group holds one hit of two");
    }

    #[test]
    fn parameters_are_validated() {
        let s = schema();
        let kv = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let none = serde_json::Map::new();
        assert!(GroupBy::parse(&s, &kv(&[]), &none, 10).unwrap().is_none());
        let g = GroupBy::parse(
            &s,
            &kv(&[("group_by_field", "doc"), ("group_size", "3")]),
            &none,
            10,
        )
        .unwrap()
        .unwrap();
        assert_eq!((g.size, g.strict), (3, false));
        let err = |pairs: &[(&str, &str)]| GroupBy::parse(&s, &kv(pairs), &none, 10).err().unwrap();
        assert_eq!(
            err(&[("group_by_field", "nope")]).code,
            code::FIELD_NOT_FOUND
        );
        assert!(err(&[("group_by_field", "v")]).reason.contains("only Bool"));
        assert!(err(&[("group_by_field", "doc"), ("group_size", "0")])
            .reason
            .contains("group_size"));
        assert!(err(&[("group_by_field", "doc"), ("group_size", "2000")])
            .reason
            .contains("group_size"));
        assert!(
            err(&[("group_by_field", "doc"), ("strict_group_size", "maybe")])
                .reason
                .contains("boolean")
        );
    }
}
