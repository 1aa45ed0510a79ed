use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{MetaError, MetaStore};
use crate::rt;

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The standalone meta store: an embedded, crash-safe redb database. Every write is
/// one durable transaction. Calls run on the compute seam because redb blocks on fsync.
#[derive(Clone)]
pub struct RedbMetaStore {
    db: Arc<Database>,
}

impl std::fmt::Debug for RedbMetaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedbMetaStore")
    }
}

fn io(e: impl std::fmt::Display) -> MetaError {
    MetaError::Io(e.to_string())
}

/// What a failed open of the file at `path` means.
fn open_error(path: &str, e: redb::DatabaseError) -> MetaError {
    use redb::{DatabaseError, StorageError};
    match e {
        DatabaseError::DatabaseAlreadyOpen => MetaError::Locked { path: path.into() },
        // The file ends before the structures its header points at: it was cut short.
        DatabaseError::Storage(StorageError::Io(e))
            if e.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            MetaError::Damaged {
                path: path.into(),
                reason: format!("the file is truncated: it ends before its own data ({e})"),
            }
        }
        DatabaseError::Storage(StorageError::Io(e)) => MetaError::Io(format!("{path}: {e}")),
        e @ (DatabaseError::Storage(_)
        | DatabaseError::RepairAborted
        | DatabaseError::UpgradeRequired(_)) => MetaError::Damaged {
            path: path.into(),
            reason: e.to_string(),
        },
        e => MetaError::Io(format!("{path}: {e}")),
    }
}

impl RedbMetaStore {
    /// Opens (or creates) the database file at `path`, checking the whole file: a file
    /// changed outside redb is reported as [`MetaError::Damaged`] (after redb's own
    /// repair, which the check runs, failed), never trusted. An empty file is damage too
    /// (redb would make a new, empty database of it, and the catalog would be gone). A
    /// file another process holds is [`MetaError::Locked`]: it is the data directory's
    /// lock.
    pub fn open(path: &Path) -> Result<Self, MetaError> {
        let shown = path.display().to_string();
        if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            return Err(MetaError::Damaged {
                path: shown,
                reason: "the file is empty (truncated)".into(),
            });
        }
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .create(path)
            .map_err(|e| open_error(&shown, e))?;
        let tx = db.begin_write().map_err(io)?;
        tx.open_table(TABLE).map_err(io)?;
        tx.commit().map_err(io)?;
        Ok(RedbMetaStore { db: Arc::new(db) })
    }

    async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<R, MetaError> + Send + 'static,
    ) -> Result<R, MetaError> {
        let db = self.db.clone();
        rt::compute(move || f(&db)).await
    }
}

#[async_trait]
impl MetaStore for RedbMetaStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, MetaError> {
        let key = key.to_string();
        self.run(move |db| {
            let tx = db.begin_read().map_err(io)?;
            let t = tx.open_table(TABLE).map_err(io)?;
            Ok(t.get(key.as_str()).map_err(io)?.map(|v| v.value().to_vec()))
        })
        .await
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), MetaError> {
        let key = key.to_string();
        self.run(move |db| {
            let tx = db.begin_write().map_err(io)?;
            {
                let mut t = tx.open_table(TABLE).map_err(io)?;
                t.insert(key.as_str(), value.as_slice()).map_err(io)?;
            }
            tx.commit().map_err(io)
        })
        .await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, MetaError> {
        let key = key.to_string();
        let expected = expected.map(|e| e.to_vec());
        self.run(move |db| {
            let tx = db.begin_write().map_err(io)?;
            let swapped = {
                let mut t = tx.open_table(TABLE).map_err(io)?;
                let cur = t.get(key.as_str()).map_err(io)?.map(|v| v.value().to_vec());
                if cur != expected {
                    false
                } else {
                    match &new {
                        Some(v) => {
                            t.insert(key.as_str(), v.as_slice()).map_err(io)?;
                        }
                        None => {
                            t.remove(key.as_str()).map_err(io)?;
                        }
                    }
                    true
                }
            };
            if swapped {
                tx.commit().map_err(io)?;
            } else {
                tx.abort().map_err(io)?;
            }
            Ok(swapped)
        })
        .await
    }

    async fn range(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        let prefix = prefix.to_string();
        self.run(move |db| {
            let tx = db.begin_read().map_err(io)?;
            let t = tx.open_table(TABLE).map_err(io)?;
            let mut out = Vec::new();
            for item in t.range(prefix.as_str()..).map_err(io)? {
                let (k, v) = item.map_err(io)?;
                if !k.value().starts_with(prefix.as_str()) {
                    break;
                }
                out.push((k.value().to_string(), v.value().to_vec()));
            }
            Ok(out)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), MetaError> {
        let key = key.to_string();
        self.run(move |db| {
            let tx = db.begin_write().map_err(io)?;
            {
                let mut t = tx.open_table(TABLE).map_err(io)?;
                t.remove(key.as_str()).map_err(io)?;
            }
            tx.commit().map_err(io)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn satisfies_the_contract_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        {
            let s = RedbMetaStore::open(&path).unwrap();
            super::super::contract::check(&s).await;
        }
        let s = RedbMetaStore::open(&path).unwrap();
        assert_eq!(s.get("a/1").await.unwrap(), Some(b"w".to_vec()));
    }

    #[tokio::test]
    async fn a_second_open_is_locked_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        let _s = RedbMetaStore::open(&path).unwrap();
        let err = RedbMetaStore::open(&path).unwrap_err();
        assert!(matches!(err, MetaError::Locked { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_truncated_or_emptied_file_is_damage_not_a_new_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        {
            let s = RedbMetaStore::open(&path).unwrap();
            for i in 0..200 {
                s.put(&format!("k/{i}"), vec![7; 500]).await.unwrap();
            }
        }
        let whole = std::fs::read(&path).unwrap();
        let len = whole.len();
        // Many cut points: redb reads different structures first depending on where
        // the file ends, and each must be damage, not an I/O error.
        let mut cuts: Vec<usize> = (1..16).map(|i| len * i / 16).collect();
        cuts.extend([len - 1, 4096, 600, 100, 0]);
        for cut in cuts {
            use crate::rt::disk::{Disk, StdDisk};
            StdDisk.write_atomic(&path, &whole[..cut]).unwrap();
            let err = RedbMetaStore::open(&path).unwrap_err();
            assert!(
                matches!(err, MetaError::Damaged { .. }),
                "cut at {cut}: {err}"
            );
            assert!(err.to_string().contains("meta.redb"), "{err}");
        }
    }
}
