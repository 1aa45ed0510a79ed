//! Checking a [`Batch`] against a collection schema before it reaches the WAL: which
//! columns, their types and shapes, nulls, value limits and unique primary keys.

use std::collections::HashSet;

use thiserror::Error;

use super::{Batch, ColumnData, FieldColumn};
use crate::schema::{CollectionSchema, DataType, FieldSchema};

/// What is wrong with a batch. Every variant names the field.
#[derive(Debug, Error, PartialEq)]
pub enum BatchError {
    #[error("field {0:?} is missing from the data")]
    MissingField(String),
    #[error("field {0:?} does not exist in the schema")]
    UnknownField(String),
    #[error("field {0:?} appears more than once")]
    DuplicateColumn(String),
    #[error("field {field:?} expects {expected} data, got {got}")]
    WrongType {
        field: String,
        expected: &'static str,
        got: &'static str,
    },
    #[error("field {field:?} expects vectors of dim {expected}, got dim {got}")]
    WrongDim {
        field: String,
        expected: u32,
        got: u32,
    },
    #[error("field {field:?} has {values} values, not a whole number of vectors of dim {dim}")]
    PartialVector {
        field: String,
        values: usize,
        dim: u32,
    },
    #[error("the length ({len}) of json field ({field}) exceeds max length ({max}) at row {row}")]
    JsonTooLong {
        field: String,
        row: usize,
        len: usize,
        max: usize,
    },
    #[error("field {field:?} has {got} rows, expected {expected}")]
    RowCountMismatch {
        field: String,
        expected: usize,
        got: usize,
    },
    #[error("field {field:?} row {row}: value is {len} bytes long, max_length is {max}")]
    TooLong {
        field: String,
        row: usize,
        len: usize,
        max: u32,
    },
    #[error("field {field:?} row {row}: null is not allowed")]
    NullNotAllowed { field: String, row: usize },
    #[error("field {field:?} row {row}: invalid JSON: {reason}")]
    InvalidJson {
        field: String,
        row: usize,
        reason: String,
    },
    #[error("field {field:?} row {row}: dynamic field data must be a JSON object")]
    DynamicNotObject { field: String, row: usize },
    #[error("field {field:?} row {row}: vector contains NaN or infinity")]
    NonFiniteVector { field: String, row: usize },
    #[error("duplicate primary keys are not allowed in the same batch: key {pk} of field {field:?} is in rows {first} and {second}")]
    DuplicatePrimaryKey {
        field: String,
        pk: String,
        first: usize,
        second: usize,
    },
}

impl Batch {
    /// Checks the batch against `schema`: every field present exactly once (in schema
    /// order), types, dims, lengths, nulls and JSON. Primary keys may repeat: an
    /// insert of a key that exists adds another entity with it (Milvus's documented
    /// rule); an upsert also calls [`Batch::check_unique_pks`].
    pub fn validate(&self, schema: &CollectionSchema) -> Result<(), BatchError> {
        self.check_columns(schema)?;
        for (col, field) in self.columns.iter().zip(&schema.fields) {
            self.check_shape(col, field)?;
            check_values(col, field)?;
        }
        Ok(())
    }

    /// Every schema field has exactly one column, in schema order.
    fn check_columns(&self, schema: &CollectionSchema) -> Result<(), BatchError> {
        let mut seen = HashSet::new();
        for col in &self.columns {
            let Some(field) = schema.field_by_id(col.field_id) else {
                return Err(BatchError::UnknownField(format!("#{}", col.field_id)));
            };
            if !seen.insert(col.field_id) {
                return Err(BatchError::DuplicateColumn(field.name.clone()));
            }
        }
        if self.columns.len() == schema.fields.len()
            && self
                .columns
                .iter()
                .zip(&schema.fields)
                .all(|(c, f)| c.field_id == f.id)
        {
            return Ok(());
        }
        for f in &schema.fields {
            if !seen.contains(&f.id) {
                return Err(BatchError::MissingField(f.name.clone()));
            }
        }
        // All present but out of order: callers build batches in schema order.
        Err(BatchError::MissingField(
            "(columns out of schema order)".into(),
        ))
    }

    /// The column's type, vector dim, row count and nulls fit the field.
    fn check_shape(&self, col: &FieldColumn, field: &FieldSchema) -> Result<(), BatchError> {
        let name = &field.name;
        if !col.data.matches_type(&field.data_type) {
            return Err(BatchError::WrongType {
                field: name.clone(),
                expected: field.data_type.name(),
                got: col.data.type_name(),
            });
        }
        self.check_dim(col, field)?;
        if col.data.len() != self.num_rows {
            return Err(BatchError::RowCountMismatch {
                field: name.clone(),
                expected: self.num_rows,
                got: col.data.len(),
            });
        }
        let Some(valid) = &col.valid else {
            return Ok(());
        };
        if valid.len() != self.num_rows {
            return Err(BatchError::RowCountMismatch {
                field: name.clone(),
                expected: self.num_rows,
                got: valid.len(),
            });
        }
        if !field.nullable {
            if let Some(row) = valid.iter().position(|v| !v) {
                return Err(BatchError::NullNotAllowed {
                    field: name.clone(),
                    row,
                });
            }
        }
        Ok(())
    }

    /// A vector column has the field's dim and whole vectors only.
    fn check_dim(&self, col: &FieldColumn, field: &FieldSchema) -> Result<(), BatchError> {
        let (DataType::FloatVector { dim }, ColumnData::FloatVector { dim: got, data }) =
            (&field.data_type, &col.data)
        else {
            return Ok(());
        };
        if dim != got {
            return Err(BatchError::WrongDim {
                field: field.name.clone(),
                expected: *dim,
                got: *got,
            });
        }
        if !data.len().is_multiple_of(*dim as usize) {
            return Err(BatchError::PartialVector {
                field: field.name.clone(),
                values: data.len(),
                dim: *dim,
            });
        }
        Ok(())
    }

    /// No primary key appears twice. An upsert needs it: it deletes every entity of
    /// its keys and inserts one per key, so two rows of one key in one upsert would
    /// leave both alive (Milvus refuses them the same way).
    pub fn check_unique_pks(&self, schema: &CollectionSchema) -> Result<(), BatchError> {
        let pk_field = schema.primary_field();
        let pks = self.pks(schema);
        let mut first_seen = std::collections::HashMap::with_capacity(pks.len());
        for (row, pk) in pks.iter().enumerate() {
            if let Some(first) = first_seen.insert(pk, row) {
                return Err(BatchError::DuplicatePrimaryKey {
                    field: pk_field.name.clone(),
                    pk: pk.to_string(),
                    first,
                    second: row,
                });
            }
        }
        Ok(())
    }
}

/// The column's values fit the field: strings within max_length, JSON that parses
/// (an object for the dynamic field), finite vectors.
fn check_values(col: &FieldColumn, field: &FieldSchema) -> Result<(), BatchError> {
    let name = &field.name;
    match &col.data {
        ColumnData::VarChar(v) => {
            let DataType::VarChar { max_length } = field.data_type else {
                return Ok(());
            };
            match v
                .iter()
                .enumerate()
                .find(|(_, s)| s.len() > max_length as usize)
            {
                Some((row, s)) => Err(BatchError::TooLong {
                    field: name.clone(),
                    row,
                    len: s.len(),
                    max: max_length,
                }),
                None => Ok(()),
            }
        }
        ColumnData::Json(v) => check_json(col, v, field),
        ColumnData::FloatVector { dim, data } => match data.iter().position(|x| !x.is_finite()) {
            Some(i) => Err(BatchError::NonFiniteVector {
                field: name.clone(),
                row: i / *dim as usize,
            }),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Milvus's default `common.JSONMaxLength`: the largest JSON value, in bytes.
pub const MAX_JSON_BYTES: usize = 64 << 10;

/// Every non-null JSON value fits [`MAX_JSON_BYTES`], parses, and is an object in the
/// dynamic field.
fn check_json(col: &FieldColumn, docs: &[String], field: &FieldSchema) -> Result<(), BatchError> {
    for (row, s) in docs.iter().enumerate() {
        if !col.is_valid(row) {
            continue;
        }
        if s.len() > MAX_JSON_BYTES {
            return Err(BatchError::JsonTooLong {
                field: field.name.clone(),
                row,
                len: s.len(),
                max: MAX_JSON_BYTES,
            });
        }
        match serde_json::from_str::<serde_json::Value>(s) {
            Err(e) => {
                return Err(BatchError::InvalidJson {
                    field: field.name.clone(),
                    row,
                    reason: e.to_string(),
                })
            }
            Ok(j) if field.is_dynamic && !j.is_object() => {
                return Err(BatchError::DynamicNotObject {
                    field: field.name.clone(),
                    row,
                })
            }
            Ok(_) => {}
        }
    }
    Ok(())
}
