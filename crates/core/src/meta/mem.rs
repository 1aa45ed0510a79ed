use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{MetaError, MetaStore};

/// An in-memory meta store. Clones share the same map, so a simulation can keep it
/// alive across node restarts the way an external etcd would be.
#[derive(Debug, Default, Clone)]
pub struct MemMetaStore {
    map: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl MemMetaStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl MetaStore for MemMetaStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, MetaError> {
        Ok(self.lock().get(key).cloned())
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), MetaError> {
        self.lock().insert(key.to_string(), value);
        Ok(())
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, MetaError> {
        let mut m = self.lock();
        if m.get(key).map(|v| v.as_slice()) != expected {
            return Ok(false);
        }
        match new {
            Some(v) => m.insert(key.to_string(), v),
            None => m.remove(key),
        };
        Ok(true)
    }
    async fn range(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        Ok(self
            .lock()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    async fn delete(&self, key: &str) -> Result<(), MetaError> {
        self.lock().remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn satisfies_the_contract() {
        super::super::contract::check(&super::MemMetaStore::new()).await;
    }
}
