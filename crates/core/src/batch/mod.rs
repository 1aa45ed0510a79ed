//! Columnar batches of rows, the unit an insert carries from the proxy to a segment,
//! and their validation against a schema. Nulls are kept dense: a null row holds the
//! type's default value in `data` and `false` in `valid`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::FieldId;
use crate::schema::{CollectionSchema, DataType};

mod validate;

pub use validate::BatchError;

/// The values of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ColumnData {
    Bool(Vec<bool>),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float(Vec<f32>),
    Double(Vec<f64>),
    VarChar(Vec<String>),
    /// JSON documents as UTF-8 text, one per row.
    Json(Vec<String>),
    /// Row-major vectors: `data.len() == rows * dim`.
    FloatVector {
        dim: u32,
        data: Vec<f32>,
    },
}

macro_rules! each_column {
    ($self:expr, $v:ident => $e:expr, $dim:ident, $data:ident => $fv:expr) => {
        match $self {
            ColumnData::Bool($v) => $e,
            ColumnData::Int8($v) => $e,
            ColumnData::Int16($v) => $e,
            ColumnData::Int32($v) => $e,
            ColumnData::Int64($v) => $e,
            ColumnData::Float($v) => $e,
            ColumnData::Double($v) => $e,
            ColumnData::VarChar($v) => $e,
            ColumnData::Json($v) => $e,
            ColumnData::FloatVector {
                dim: $dim,
                data: $data,
            } => $fv,
        }
    };
}

impl ColumnData {
    /// An empty column of the given type.
    pub fn empty(dt: &DataType) -> Self {
        match dt {
            DataType::Bool => ColumnData::Bool(vec![]),
            DataType::Int8 => ColumnData::Int8(vec![]),
            DataType::Int16 => ColumnData::Int16(vec![]),
            DataType::Int32 => ColumnData::Int32(vec![]),
            DataType::Int64 => ColumnData::Int64(vec![]),
            DataType::Float => ColumnData::Float(vec![]),
            DataType::Double => ColumnData::Double(vec![]),
            DataType::VarChar { .. } => ColumnData::VarChar(vec![]),
            DataType::Json => ColumnData::Json(vec![]),
            DataType::FloatVector { dim } => ColumnData::FloatVector {
                dim: *dim,
                data: vec![],
            },
        }
    }

    /// Number of rows (for vectors, `data.len() / dim`, rounded down).
    pub fn len(&self) -> usize {
        each_column!(self, v => v.len(), dim, data => if *dim == 0 { 0 } else { data.len() / *dim as usize })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            ColumnData::Bool(_) => "Bool",
            ColumnData::Int8(_) => "Int8",
            ColumnData::Int16(_) => "Int16",
            ColumnData::Int32(_) => "Int32",
            ColumnData::Int64(_) => "Int64",
            ColumnData::Float(_) => "Float",
            ColumnData::Double(_) => "Double",
            ColumnData::VarChar(_) => "VarChar",
            ColumnData::Json(_) => "JSON",
            ColumnData::FloatVector { .. } => "FloatVector",
        }
    }

    /// Whether this column can hold values of `dt` (ignoring parameters such as dim).
    pub fn matches_type(&self, dt: &DataType) -> bool {
        matches!(
            (self, dt),
            (ColumnData::Bool(_), DataType::Bool)
                | (ColumnData::Int8(_), DataType::Int8)
                | (ColumnData::Int16(_), DataType::Int16)
                | (ColumnData::Int32(_), DataType::Int32)
                | (ColumnData::Int64(_), DataType::Int64)
                | (ColumnData::Float(_), DataType::Float)
                | (ColumnData::Double(_), DataType::Double)
                | (ColumnData::VarChar(_), DataType::VarChar { .. })
                | (ColumnData::Json(_), DataType::Json)
                | (ColumnData::FloatVector { .. }, DataType::FloatVector { .. })
        )
    }

    /// Appends all rows of `other` (same variant; panics otherwise, which callers
    /// rule out by validating against the schema first).
    pub fn extend_from(&mut self, other: &ColumnData) {
        match (self, other) {
            (ColumnData::Bool(a), ColumnData::Bool(b)) => a.extend_from_slice(b),
            (ColumnData::Int8(a), ColumnData::Int8(b)) => a.extend_from_slice(b),
            (ColumnData::Int16(a), ColumnData::Int16(b)) => a.extend_from_slice(b),
            (ColumnData::Int32(a), ColumnData::Int32(b)) => a.extend_from_slice(b),
            (ColumnData::Int64(a), ColumnData::Int64(b)) => a.extend_from_slice(b),
            (ColumnData::Float(a), ColumnData::Float(b)) => a.extend_from_slice(b),
            (ColumnData::Double(a), ColumnData::Double(b)) => a.extend_from_slice(b),
            (ColumnData::VarChar(a), ColumnData::VarChar(b)) => a.extend_from_slice(b),
            (ColumnData::Json(a), ColumnData::Json(b)) => a.extend_from_slice(b),
            (ColumnData::FloatVector { data: a, .. }, ColumnData::FloatVector { data: b, .. }) => {
                a.extend_from_slice(b)
            }
            (a, b) => panic!(
                "column type mismatch: {} vs {}",
                a.type_name(),
                b.type_name()
            ),
        }
    }

    /// The rows at `indices`, in that order.
    pub fn take(&self, indices: &[usize]) -> ColumnData {
        fn pick<T: Clone>(v: &[T], idx: &[usize]) -> Vec<T> {
            idx.iter().map(|&i| v[i].clone()).collect()
        }
        match self {
            ColumnData::Bool(v) => ColumnData::Bool(pick(v, indices)),
            ColumnData::Int8(v) => ColumnData::Int8(pick(v, indices)),
            ColumnData::Int16(v) => ColumnData::Int16(pick(v, indices)),
            ColumnData::Int32(v) => ColumnData::Int32(pick(v, indices)),
            ColumnData::Int64(v) => ColumnData::Int64(pick(v, indices)),
            ColumnData::Float(v) => ColumnData::Float(pick(v, indices)),
            ColumnData::Double(v) => ColumnData::Double(pick(v, indices)),
            ColumnData::VarChar(v) => ColumnData::VarChar(pick(v, indices)),
            ColumnData::Json(v) => ColumnData::Json(pick(v, indices)),
            ColumnData::FloatVector { dim, data } => {
                let d = *dim as usize;
                let mut out = Vec::with_capacity(indices.len() * d);
                for &i in indices {
                    out.extend_from_slice(&data[i * d..(i + 1) * d]);
                }
                ColumnData::FloatVector {
                    dim: *dim,
                    data: out,
                }
            }
        }
    }

    /// Row `i` of a vector column.
    pub fn vector(&self, i: usize) -> Option<&[f32]> {
        match self {
            ColumnData::FloatVector { dim, data } => {
                let d = *dim as usize;
                data.get(i * d..(i + 1) * d)
            }
            _ => None,
        }
    }
}

/// One column of a batch, tied to a schema field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldColumn {
    pub field_id: FieldId,
    pub data: ColumnData,
    /// Per-row validity for nullable fields; `None` means every row is valid.
    pub valid: Option<Vec<bool>>,
}

impl FieldColumn {
    pub fn new(field_id: FieldId, data: ColumnData) -> Self {
        FieldColumn {
            field_id,
            data,
            valid: None,
        }
    }

    pub fn is_valid(&self, row: usize) -> bool {
        self.valid.as_ref().is_none_or(|v| v[row])
    }
}

/// A primary key value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Pk {
    Int(i64),
    Str(String),
}

impl fmt::Display for Pk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pk::Int(v) => write!(f, "{v}"),
            Pk::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl Pk {
    /// Stable 64-bit hash (used for bloom filters and shard routing; must never change
    /// across releases because it is persisted).
    pub fn stable_hash(&self) -> u64 {
        match self {
            Pk::Int(v) => xxhash_rust::xxh3::xxh3_64(&v.to_le_bytes()),
            Pk::Str(s) => xxhash_rust::xxh3::xxh3_64(s.as_bytes()),
        }
    }
}

/// A set of rows in columnar form, one column per schema field (`$meta` included when
/// the collection has dynamic fields), in schema order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub num_rows: usize,
    pub columns: Vec<FieldColumn>,
}

impl Batch {
    /// A batch with no rows and one empty column per schema field.
    pub fn empty(schema: &CollectionSchema) -> Batch {
        Batch {
            num_rows: 0,
            columns: schema
                .fields
                .iter()
                .map(|f| FieldColumn {
                    field_id: f.id,
                    data: ColumnData::empty(&f.data_type),
                    valid: f.nullable.then(Vec::new),
                })
                .collect(),
        }
    }

    /// Appends row `i` of `src` (a batch of the same schema).
    pub fn push_row(&mut self, src: &Batch, i: usize) {
        for (c, s) in self.columns.iter_mut().zip(&src.columns) {
            c.data.extend_from(&s.data.take(&[i]));
            if let Some(v) = &mut c.valid {
                v.push(s.valid.as_ref().is_none_or(|sv| sv[i]));
            }
        }
        self.num_rows += 1;
    }

    /// The primary keys, in row order. The batch must have been validated.
    pub fn pks(&self, schema: &CollectionSchema) -> Vec<Pk> {
        let pos = schema
            .position(schema.primary_field().id)
            .expect("primary key field");
        pk_column(&self.columns[pos].data)
    }

    /// The rows at `indices`.
    pub fn take(&self, indices: &[usize]) -> Batch {
        Batch {
            num_rows: indices.len(),
            columns: self
                .columns
                .iter()
                .map(|c| FieldColumn {
                    field_id: c.field_id,
                    data: c.data.take(indices),
                    valid: c
                        .valid
                        .as_ref()
                        .map(|v| indices.iter().map(|&i| v[i]).collect()),
                })
                .collect(),
        }
    }
}

/// Primary keys held in a column (Int64 or VarChar).
pub fn pk_column(data: &ColumnData) -> Vec<Pk> {
    match data {
        ColumnData::Int64(v) => v.iter().map(|&x| Pk::Int(x)).collect(),
        ColumnData::VarChar(v) => v.iter().map(|s| Pk::Str(s.clone())).collect(),
        other => panic!("{} cannot hold primary keys", other.type_name()),
    }
}

#[cfg(test)]
pub(crate) mod tests;
