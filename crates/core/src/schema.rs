//! Collection schemas: Milvus's data types, fields and their validation.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ids::{FieldId, FIRST_USER_FIELD_ID};

/// Largest vector dimension accepted (Milvus's default limit).
pub const MAX_DIM: u32 = 32_768;
/// Largest `max_length` of a VarChar field.
pub const MAX_VARCHAR_LENGTH: u32 = 65_535;
/// Name of the hidden JSON column holding dynamic fields.
pub const DYNAMIC_FIELD_NAME: &str = "$meta";

/// The data types Quiver stores, with their parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataType {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Float,
    Double,
    VarChar { max_length: u32 },
    Json,
    FloatVector { dim: u32 },
}

impl DataType {
    /// The `schema.DataType` enum value on the Milvus wire.
    pub fn milvus_code(&self) -> i32 {
        match self {
            DataType::Bool => 1,
            DataType::Int8 => 2,
            DataType::Int16 => 3,
            DataType::Int32 => 4,
            DataType::Int64 => 5,
            DataType::Float => 10,
            DataType::Double => 11,
            DataType::VarChar { .. } => 21,
            DataType::Json => 23,
            DataType::FloatVector { .. } => 101,
        }
    }

    /// A short name for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            DataType::Bool => "Bool",
            DataType::Int8 => "Int8",
            DataType::Int16 => "Int16",
            DataType::Int32 => "Int32",
            DataType::Int64 => "Int64",
            DataType::Float => "Float",
            DataType::Double => "Double",
            DataType::VarChar { .. } => "VarChar",
            DataType::Json => "JSON",
            DataType::FloatVector { .. } => "FloatVector",
        }
    }

    pub fn is_vector(&self) -> bool {
        matches!(self, DataType::FloatVector { .. })
    }
}

/// One field of a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldSchema {
    pub id: FieldId,
    pub name: String,
    pub data_type: DataType,
    pub description: String,
    pub is_primary_key: bool,
    pub auto_id: bool,
    pub nullable: bool,
    /// The hidden `$meta` column of a collection with dynamic fields.
    pub is_dynamic: bool,
}

impl FieldSchema {
    pub fn new(name: impl Into<String>, data_type: DataType) -> Self {
        FieldSchema {
            id: FieldId(0),
            name: name.into(),
            data_type,
            description: String::new(),
            is_primary_key: false,
            auto_id: false,
            nullable: false,
            is_dynamic: false,
        }
    }

    pub fn primary(mut self, auto_id: bool) -> Self {
        self.is_primary_key = true;
        self.auto_id = auto_id;
        self
    }

    pub fn nullable(mut self) -> Self {
        self.nullable = true;
        self
    }
}

/// A collection's schema. Field ids are assigned by [`CollectionSchema::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionSchema {
    pub name: String,
    pub description: String,
    /// User fields, then `$meta` when dynamic fields are enabled.
    pub fields: Vec<FieldSchema>,
    pub enable_dynamic_field: bool,
}

/// Why a schema is not acceptable.
#[derive(Debug, Error, PartialEq)]
pub enum SchemaError {
    #[error("invalid name {0:?}: names start with a letter or '_' and contain only letters, digits and '_' (at most 255 characters)")]
    InvalidName(String),
    #[error("duplicate field name {0:?}")]
    DuplicateField(String),
    #[error("the schema has no primary key field")]
    NoPrimaryKey,
    #[error("the schema has more than one primary key field ({0:?} and {1:?})")]
    MultiplePrimaryKeys(String, String),
    #[error("primary key field {0:?} must be Int64 or VarChar, not {1}")]
    BadPrimaryKeyType(String, &'static str),
    #[error("primary key field {0:?} cannot be nullable")]
    NullablePrimaryKey(String),
    #[error("auto_id is only supported on an Int64 primary key (field {0:?})")]
    BadAutoId(String),
    #[error("the schema has no vector field")]
    NoVectorField,
    #[error("field {0:?}: dim must be between 1 and {MAX_DIM}, got {1}")]
    BadDim(String, u32),
    #[error("field {0:?}: max_length must be between 1 and {MAX_VARCHAR_LENGTH}, got {1}")]
    BadMaxLength(String, u32),
    #[error("field {0:?}: vector fields cannot be nullable")]
    NullableVector(String),
    #[error("field name {0:?} is reserved")]
    ReservedName(String),
}

/// Checks Milvus's naming rule for collections, fields, partitions and indexes.
pub fn validate_name(name: &str) -> Result<(), SchemaError> {
    let mut chars = name.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            name.len() <= 255 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(SchemaError::InvalidName(name.to_string()))
    }
}

impl CollectionSchema {
    /// Validates user fields and assigns field ids from 100; appends `$meta` when
    /// dynamic fields are enabled.
    pub fn new(
        name: impl Into<String>,
        user_fields: Vec<FieldSchema>,
        enable_dynamic_field: bool,
    ) -> Result<Self, SchemaError> {
        let name = name.into();
        validate_name(&name)?;
        let mut fields = Vec::with_capacity(user_fields.len() + 1);
        let mut pk: Option<String> = None;
        let mut has_vector = false;
        for (i, mut f) in user_fields.into_iter().enumerate() {
            if f.name == DYNAMIC_FIELD_NAME || f.is_dynamic {
                return Err(SchemaError::ReservedName(f.name));
            }
            validate_name(&f.name)?;
            if fields.iter().any(|g: &FieldSchema| g.name == f.name) {
                return Err(SchemaError::DuplicateField(f.name));
            }
            match f.data_type {
                DataType::FloatVector { dim } => {
                    if dim == 0 || dim > MAX_DIM {
                        return Err(SchemaError::BadDim(f.name, dim));
                    }
                    if f.nullable {
                        return Err(SchemaError::NullableVector(f.name));
                    }
                    has_vector = true;
                }
                DataType::VarChar { max_length }
                    if max_length == 0 || max_length > MAX_VARCHAR_LENGTH =>
                {
                    return Err(SchemaError::BadMaxLength(f.name, max_length));
                }
                _ => {}
            }
            if f.is_primary_key {
                if let Some(p) = &pk {
                    return Err(SchemaError::MultiplePrimaryKeys(p.clone(), f.name));
                }
                if !matches!(f.data_type, DataType::Int64 | DataType::VarChar { .. }) {
                    return Err(SchemaError::BadPrimaryKeyType(f.name, f.data_type.name()));
                }
                if f.nullable {
                    return Err(SchemaError::NullablePrimaryKey(f.name));
                }
                if f.auto_id && f.data_type != DataType::Int64 {
                    return Err(SchemaError::BadAutoId(f.name));
                }
                pk = Some(f.name.clone());
            } else {
                f.auto_id = false;
            }
            f.id = FieldId(FIRST_USER_FIELD_ID + i as i64);
            fields.push(f);
        }
        if pk.is_none() {
            return Err(SchemaError::NoPrimaryKey);
        }
        if !has_vector {
            return Err(SchemaError::NoVectorField);
        }
        if enable_dynamic_field {
            let mut meta = FieldSchema::new(DYNAMIC_FIELD_NAME, DataType::Json);
            meta.is_dynamic = true;
            meta.id = FieldId(FIRST_USER_FIELD_ID + fields.len() as i64);
            fields.push(meta);
        }
        Ok(CollectionSchema {
            name,
            description: String::new(),
            fields,
            enable_dynamic_field,
        })
    }

    pub fn primary_field(&self) -> &FieldSchema {
        self.fields
            .iter()
            .find(|f| f.is_primary_key)
            .expect("validated schemas have a primary key")
    }

    pub fn field(&self, name: &str) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn field_by_id(&self, id: FieldId) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| f.id == id)
    }

    pub fn dynamic_field(&self) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| f.is_dynamic)
    }

    pub fn vector_fields(&self) -> impl Iterator<Item = &FieldSchema> {
        self.fields.iter().filter(|f| f.data_type.is_vector())
    }

    /// Position of a field in [`CollectionSchema::fields`] (and so in a batch).
    pub fn position(&self, id: FieldId) -> Option<usize> {
        self.fields.iter().position(|f| f.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn demo() -> CollectionSchema {
        CollectionSchema::new(
            "demo",
            vec![
                FieldSchema::new("id", DataType::Int64).primary(false),
                FieldSchema::new("vec", DataType::FloatVector { dim: 4 }),
            ],
            true,
        )
        .unwrap()
    }

    #[test]
    fn assigns_field_ids_from_100_and_adds_meta() {
        let s = demo();
        assert_eq!(s.fields[0].id, FieldId(100));
        assert_eq!(s.fields[1].id, FieldId(101));
        assert_eq!(s.fields[2].name, DYNAMIC_FIELD_NAME);
        assert!(s.fields[2].is_dynamic);
    }

    #[test]
    fn rejects_bad_schemas_with_a_reason() {
        let v = || FieldSchema::new("v", DataType::FloatVector { dim: 4 });
        assert_eq!(
            CollectionSchema::new("c", vec![v()], false),
            Err(SchemaError::NoPrimaryKey)
        );
        assert_eq!(
            CollectionSchema::new(
                "c",
                vec![FieldSchema::new("id", DataType::Float).primary(false), v()],
                false
            ),
            Err(SchemaError::BadPrimaryKeyType("id".into(), "Float"))
        );
        assert_eq!(
            CollectionSchema::new(
                "c",
                vec![
                    FieldSchema::new("id", DataType::Int64).primary(false),
                    FieldSchema::new("v", DataType::FloatVector { dim: 0 })
                ],
                false
            ),
            Err(SchemaError::BadDim("v".into(), 0))
        );
        assert!(matches!(
            CollectionSchema::new("1bad", vec![], false),
            Err(SchemaError::InvalidName(_))
        ));
        assert!(matches!(
            CollectionSchema::new(
                "c",
                vec![
                    FieldSchema::new("id", DataType::Int64).primary(false),
                    v(),
                    v()
                ],
                false
            ),
            Err(SchemaError::DuplicateField(_))
        ));
    }
}
