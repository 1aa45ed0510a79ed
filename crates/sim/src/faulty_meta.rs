//! A meta store (our etcd) that fails and slows down on command. Most errors are
//! injected before the store is touched, so the failed call definitely did nothing;
//! an "ambiguous" error is returned after a write took effect, as etcd does when a
//! request times out after it committed. Latency is added to every call while a spike
//! is on.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use quiver_core::meta::{MemMetaStore, MetaError, MetaStore};
use quiver_core::rt::{self, Rng};

#[derive(Debug, Clone, Default)]
pub struct MetaFaults {
    pub error_probability: f64,
    /// Probability that a write succeeds but reports an error.
    pub ambiguous_probability: f64,
    pub latency: Duration,
}

#[derive(Debug)]
struct State {
    faults: MetaFaults,
    rng: Rng,
    errors: u64,
}

/// Clones share the data, the fault settings and the counters.
#[derive(Debug, Clone)]
pub struct FaultyMeta {
    inner: MemMetaStore,
    state: Arc<Mutex<State>>,
}

impl FaultyMeta {
    pub fn new(seed: u64) -> Self {
        FaultyMeta {
            inner: MemMetaStore::new(),
            state: Arc::new(Mutex::new(State {
                faults: MetaFaults::default(),
                rng: Rng::seed_from_u64(seed),
                errors: 0,
            })),
        }
    }

    pub fn set_faults(&self, f: MetaFaults) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).faults = f;
    }

    pub fn errors_injected(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).errors
    }

    /// Whether this write, once done, reports an error anyway.
    fn ambiguous(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let p = s.faults.ambiguous_probability;
        let hit = p > 0.0 && s.rng.gen_bool(p);
        if hit {
            s.errors += 1;
        }
        hit
    }

    fn after<T>(&self, r: Result<T, MetaError>) -> Result<T, MetaError> {
        match r {
            Ok(_) if self.ambiguous() => Err(MetaError::Unavailable(
                "injected meta store timeout after the write committed".into(),
            )),
            r => r,
        }
    }

    async fn before(&self) -> Result<(), MetaError> {
        let (latency, fail) = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let p = s.faults.error_probability;
            let fail = p > 0.0 && s.rng.gen_bool(p);
            if fail {
                s.errors += 1;
            }
            (s.faults.latency, fail)
        };
        if !latency.is_zero() {
            rt::sleep(latency).await;
        }
        if fail {
            return Err(MetaError::Unavailable("injected meta store error".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl MetaStore for FaultyMeta {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, MetaError> {
        self.before().await?;
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), MetaError> {
        self.before().await?;
        let r = self.inner.put(key, value).await;
        self.after(r)
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, MetaError> {
        self.before().await?;
        let r = self.inner.compare_and_swap(key, expected, new).await;
        self.after(r)
    }
    async fn range(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        self.before().await?;
        self.inner.range(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), MetaError> {
        self.before().await?;
        let r = self.inner.delete(key).await;
        self.after(r)
    }
}
