//! Aliases: other names for a collection of the same database.

use quiver_core::segment::format::{self, ObjectKind};

use super::catalog::*;
use super::Coordinator;
use crate::error::{code, ApiError, ApiResult};

impl Coordinator {
    /// Points `alias` at collection `collection` (a collection's own name, not an
    /// alias); with `replace`, the alias must exist (AlterAlias), otherwise it must not
    /// name another collection (CreateAlias).
    pub async fn set_alias(
        &self,
        db: &str,
        alias: &str,
        collection: &str,
        replace: bool,
    ) -> ApiResult<()> {
        let mut cat = self.catalog.write().await;
        cat.database(db)?;
        let target = cat
            .collections
            .get(&(db.to_string(), collection.to_string()))
            .ok_or_else(|| ApiError::collection_not_found(db, collection))?
            .id;
        let k = (db.to_string(), alias.to_string());
        if cat.collections.contains_key(&k) {
            return Err(ApiError::new(
                code::ALIAS_NAME_CONFLICT,
                format!("alias [{alias}] conflicts with an existing collection name"),
            ));
        }
        match (cat.aliases.get(&k), replace) {
            (None, true) => return Err(alias_not_found(db, alias)),
            (Some(&id), false) if id == target => return Ok(()),
            (Some(_), false) => {
                return Err(ApiError::new(
                    code::ALIAS_ALREADY_EXISTS,
                    format!("alias [{alias}] exists and already aliased to another collection"),
                ))
            }
            _ => {}
        }
        let entry = AliasEntry {
            db: db.to_string(),
            alias: alias.to_string(),
            collection: target,
        };
        self.meta
            .put(
                &alias_key(db, alias),
                format::encode(ObjectKind::CatalogEntry, &entry),
            )
            .await?;
        cat.aliases.insert(k, target);
        Ok(())
    }

    /// Removes an alias; removing one that does not exist succeeds.
    pub async fn drop_alias(&self, db: &str, alias: &str) -> ApiResult<()> {
        let mut cat = self.catalog.write().await;
        cat.database(db)?;
        let k = (db.to_string(), alias.to_string());
        if cat.aliases.contains_key(&k) {
            self.meta.delete(&alias_key(db, alias)).await?;
            cat.aliases.remove(&k);
        }
        Ok(())
    }

    /// The collection an alias names.
    pub async fn describe_alias(&self, db: &str, alias: &str) -> ApiResult<String> {
        let cat = self.catalog.read().await;
        cat.database(db)?;
        cat.aliases
            .get(&(db.to_string(), alias.to_string()))
            .and_then(|id| cat.by_id(db, *id))
            .map(|c| c.name().to_string())
            .ok_or_else(|| alias_not_found(db, alias))
    }

    /// Aliases in `db`, of `collection` only when it is given; sorted.
    pub async fn list_aliases(&self, db: &str, collection: Option<&str>) -> ApiResult<Vec<String>> {
        let cat = self.catalog.read().await;
        cat.database(db)?;
        match collection {
            Some(name) => {
                let k = cat.resolve(db, name)?;
                Ok(cat.aliases_of(db, cat.collections[&k].id))
            }
            None => Ok(cat
                .aliases
                .keys()
                .filter(|(d, _)| d == db)
                .map(|(_, a)| a.clone())
                .collect()),
        }
    }
}
