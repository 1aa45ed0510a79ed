//! Databases: namespaces of collections (`default` always exists and is never stored).

use quiver_core::segment::format::{self, ObjectKind};

use super::catalog::*;
use super::Coordinator;
use crate::error::{code, ApiError, ApiResult};

impl Coordinator {
    pub async fn databases(&self) -> ApiResult<Vec<DatabaseInfo>> {
        Ok(self
            .catalog
            .read()
            .await
            .databases
            .values()
            .cloned()
            .collect())
    }

    pub async fn database(&self, name: &str) -> ApiResult<DatabaseInfo> {
        let db = name;
        self.catalog.read().await.database(db).cloned()
    }

    /// Creates a database; one of that name must not exist.
    pub async fn create_database(
        &self,
        name: &str,
        properties: Vec<(String, String)>,
    ) -> ApiResult<DatabaseInfo> {
        let mut cat = self.catalog.write().await;
        if cat.databases.contains_key(name) {
            return Err(ApiError::new(
                code::UNEXPECTED,
                format!("database already exist: {name}"),
            ));
        }
        if cat.databases.len() >= MAX_DATABASES {
            return Err(ApiError::new(
                code::DATABASE_LIMIT,
                format!("exceeded the limit number of database[limit={MAX_DATABASES}]"),
            ));
        }
        let ts = self.tso.next().await?;
        let db = DatabaseInfo {
            id: ts.0 as i64,
            name: name.to_string(),
            created_ts: ts.0,
            properties,
        };
        self.persist_database(&db).await?;
        cat.databases.insert(db.name.clone(), db.clone());
        Ok(db)
    }

    /// Drops an empty database; dropping one that does not exist succeeds.
    pub async fn drop_database(&self, name: &str) -> ApiResult<()> {
        if name == DEFAULT_DB {
            return Err(ApiError::invalid("can not drop default database"));
        }
        let mut cat = self.catalog.write().await;
        if !cat.databases.contains_key(name) {
            return Ok(());
        }
        if cat.collections.keys().any(|(db, _)| db == name) {
            return Err(ApiError::new(
                code::UNEXPECTED,
                format!(
                    "database:{name} not empty, must drop all collections before drop database"
                ),
            ));
        }
        self.meta
            .delete(&format!("{DATABASE_PREFIX}{name}"))
            .await?;
        cat.databases.remove(name);
        Ok(())
    }

    /// Sets `set` and removes `delete` among a database's properties.
    pub async fn alter_database(
        &self,
        name: &str,
        set: Vec<(String, String)>,
        delete: Vec<String>,
    ) -> ApiResult<DatabaseInfo> {
        // The default database is stored only once it has properties.
        let mut cat = self.catalog.write().await;
        let mut db = cat.database(name)?.clone();
        db.properties.retain(|(k, _)| !delete.contains(k));
        for (k, v) in set {
            match db.properties.iter_mut().find(|(x, _)| *x == k) {
                Some(p) => p.1 = v,
                None => db.properties.push((k, v)),
            }
        }
        self.persist_database(&db).await?;
        cat.databases.insert(db.name.clone(), db.clone());
        Ok(db)
    }

    async fn persist_database(&self, db: &DatabaseInfo) -> ApiResult<()> {
        self.meta
            .put(
                &format!("{DATABASE_PREFIX}{}", db.name),
                format::encode(ObjectKind::CatalogEntry, db),
            )
            .await?;
        Ok(())
    }
}
