//! The meta store: a small, strongly consistent key-value store for collections,
//! segments, channel assignments, the TSO window and checkpoints. etcd in a cluster;
//! [`RedbMetaStore`] (durable, embedded) in standalone; [`MemMetaStore`] in tests and
//! simulations.

mod mem;
mod redb_store;

use async_trait::async_trait;
use thiserror::Error;

use crate::error_kind::ErrorKind;

pub use mem::MemMetaStore;
pub use redb_store::RedbMetaStore;

#[derive(Debug, Error)]
pub enum MetaError {
    #[error("meta store unavailable: {0}")]
    Unavailable(String),
    #[error("meta store I/O error: {0}")]
    Io(String),
    #[error("corrupt meta value at {key:?}: {reason}")]
    Corrupt { key: String, reason: String },
    /// The store's file itself is damaged (standalone): nothing in it can be trusted.
    #[error("meta store {path} is damaged: {reason}")]
    Damaged { path: String, reason: String },
    /// Another process holds the store's file (standalone: a running server).
    #[error("meta store {path} is in use by another process (is a server running on this data directory?)")]
    Locked { path: String },
}

impl MetaError {
    /// An unavailable store or an I/O error may pass ([`ErrorKind::Retriable`]); a
    /// corrupt value will not ([`ErrorKind::Internal`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            MetaError::Unavailable(_) | MetaError::Io(_) => ErrorKind::Retriable,
            MetaError::Corrupt { .. } | MetaError::Damaged { .. } => ErrorKind::Internal,
            MetaError::Locked { .. } => ErrorKind::Retriable,
        }
    }
}

/// A strongly consistent key-value store. Keys are `/`-separated strings; `range`
/// returns entries in key order.
#[async_trait]
pub trait MetaStore: Send + Sync + std::fmt::Debug {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, MetaError>;
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), MetaError>;
    /// Sets `key` to `new` (deleting it when `None`) only if its current value equals
    /// `expected` (`None` = absent). Returns whether the swap happened.
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, MetaError>;
    /// All entries whose key starts with `prefix`, in key order.
    async fn range(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError>;
    async fn delete(&self, key: &str) -> Result<(), MetaError>;
}

#[cfg(test)]
pub(crate) mod contract {
    //! The behaviour every implementation must share.
    use super::*;

    pub async fn check(store: &dyn MetaStore) {
        assert_eq!(store.get("a/1").await.unwrap(), None);
        store.put("a/1", b"x".to_vec()).await.unwrap();
        store.put("a/2", b"y".to_vec()).await.unwrap();
        store.put("b/1", b"z".to_vec()).await.unwrap();
        assert_eq!(store.get("a/1").await.unwrap(), Some(b"x".to_vec()));
        let r = store.range("a/").await.unwrap();
        assert_eq!(
            r,
            vec![("a/1".into(), b"x".to_vec()), ("a/2".into(), b"y".to_vec())]
        );
        assert!(!store
            .compare_and_swap("a/1", Some(b"nope"), Some(b"w".to_vec()))
            .await
            .unwrap());
        assert!(store
            .compare_and_swap("a/1", Some(b"x"), Some(b"w".to_vec()))
            .await
            .unwrap());
        assert_eq!(store.get("a/1").await.unwrap(), Some(b"w".to_vec()));
        assert!(store
            .compare_and_swap("c", None, Some(b"new".to_vec()))
            .await
            .unwrap());
        assert!(!store
            .compare_and_swap("c", None, Some(b"again".to_vec()))
            .await
            .unwrap());
        assert!(store
            .compare_and_swap("c", Some(b"new"), None)
            .await
            .unwrap());
        assert_eq!(store.get("c").await.unwrap(), None);
        store.delete("a/2").await.unwrap();
        store.delete("never").await.unwrap();
        assert_eq!(store.range("a/").await.unwrap().len(), 1);
    }
}
