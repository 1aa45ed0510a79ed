//! Creating and dropping collections.

use quiver_core::ids::{CollectionId, PartitionId};
use quiver_core::schema::CollectionSchema;

use super::catalog::*;
use super::{key, Coordinator};
use crate::error::{code, ApiError, ApiResult};

impl Coordinator {
    /// Creates a collection; creating one that exists with the same schema succeeds
    /// (as in Milvus), with a different schema fails.
    pub async fn create(
        &self,
        db: &str,
        schema: CollectionSchema,
        shards: u32,
        consistency_level: i32,
        properties: Vec<(String, String)>,
    ) -> ApiResult<CollectionInfo> {
        let mut cat = self.catalog.write().await;
        cat.database(db)?;
        let k = (db.to_string(), schema.name.clone());
        if cat.aliases.contains_key(&k) {
            return Err(ApiError::new(
                code::ALIAS_NAME_CONFLICT,
                format!(
                    "collection name [{}] conflicts with an existing alias, please choose a unique name",
                    schema.name
                ),
            ));
        }
        if let Some(existing) = cat.collections.get(&k) {
            if existing.schema == schema {
                return Ok(existing.clone());
            }
            return Err(ApiError::new(
                code::NOT_READY,
                format!(
                    "create duplicate collection with different parameters, collection: {}",
                    schema.name
                ),
            ));
        }
        let ts = self.tso.next().await?;
        let shards = shards.clamp(1, 16);
        let pchannels = choose_pchannels(cat.collections.values(), self.pchannels, shards);
        let info = CollectionInfo {
            id: CollectionId(ts.0 as i64),
            db: db.to_string(),
            shards,
            pchannels,
            consistency_level,
            properties,
            partitions: vec![PartitionInfo {
                id: PartitionId(ts.0 as i64 + 1),
                name: DEFAULT_PARTITION.to_string(),
                created_ts: ts.0,
            }],
            indexes: Vec::new(),
            load: Load::NotLoaded,
            created_ts: ts.0,
            schema,
        };
        self.persist(&info).await?;
        cat.collections.insert(k, info.clone());
        Ok(info)
    }

    /// Removes a collection from the catalog; returns it if it existed.
    pub async fn drop_collection(&self, db: &str, name: &str) -> ApiResult<Option<CollectionInfo>> {
        let mut cat = self.catalog.write().await;
        cat.database(db)?;
        let Some(info) = cat
            .collections
            .get(&(db.to_string(), name.to_string()))
            .cloned()
        else {
            if cat
                .aliases
                .contains_key(&(db.to_string(), name.to_string()))
            {
                return Err(ApiError::invalid(format!(
                    "cannot drop the collection via alias = {name}"
                )));
            }
            return Ok(None);
        };
        let aliases = cat.aliases_of(db, info.id);
        if !aliases.is_empty() {
            return Err(ApiError::invalid(format!(
                "unable to drop the collection [{name}] because it has aliases {aliases:?}, \
                 please remove aliases before dropping the collection"
            )));
        }
        self.meta.delete(&key(db, name)).await?;
        cat.collections.remove(&(db.to_string(), name.to_string()));
        for v in info.vchannels() {
            self.queries.remove(&v.0).await?;
        }
        Ok(Some(info))
    }
}
