//! Object storage seam. Roles hold an `Arc<dyn ObjectStore>` from the `object_store`
//! crate: a local folder in standalone, S3-compatible storage in a cluster, and in
//! simulation `InMemory` behind [`FaultyStore`], which injects errors and latency.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

use crate::rt::{self, Rng};

/// What [`FaultyStore`] injects; all probabilities are per request.
#[derive(Debug, Clone, Default)]
pub struct FaultConfig {
    /// Probability that a request fails (before touching the store).
    pub error_probability: f64,
    /// Probability that a request is delayed by a latency spike.
    pub spike_probability: f64,
    /// The spike's length.
    pub spike: Duration,
    /// Latency added to every request.
    pub base_latency: Duration,
    /// Probability that a put takes effect and then reports failure, as an S3 put can
    /// when its response is lost or times out.
    pub lost_ack_probability: f64,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct FaultStats {
    pub requests: u64,
    pub errors_injected: u64,
    pub spikes_injected: u64,
    pub lost_acks_injected: u64,
}

struct FaultState {
    config: FaultConfig,
    rng: Rng,
    stats: FaultStats,
}

/// Wraps a store and injects faults; the configuration can change at run time (a
/// simulation opens and closes "brownouts"). Clones share configuration and stats.
#[derive(Clone)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    state: Arc<Mutex<FaultState>>,
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>, seed: u64) -> Self {
        FaultyStore {
            inner,
            state: Arc::new(Mutex::new(FaultState {
                config: FaultConfig::default(),
                rng: Rng::seed_from_u64(seed),
                stats: FaultStats::default(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_config(&self, config: FaultConfig) {
        self.lock().config = config;
    }

    pub fn stats(&self) -> FaultStats {
        self.lock().stats
    }

    /// Decides this request's fate: its delay and whether it fails.
    fn draw(&self) -> (Duration, bool) {
        let mut s = self.lock();
        s.stats.requests += 1;
        let mut delay = s.config.base_latency;
        let (sp, ep) = (s.config.spike_probability, s.config.error_probability);
        if sp > 0.0 && s.rng.gen_bool(sp) {
            delay += s.config.spike;
            s.stats.spikes_injected += 1;
        }
        let fail = (ep > 0.0 && s.rng.gen_bool(ep)) || rt::buggify("objstore.request_error");
        if fail {
            s.stats.errors_injected += 1;
        }
        (delay, fail)
    }

    /// Whether a put that took effect reports failure.
    fn lose_ack(&self) -> bool {
        let mut s = self.lock();
        let p = s.config.lost_ack_probability;
        let lose = (p > 0.0 && s.rng.gen_bool(p)) || rt::buggify("objstore.lost_put_ack");
        if lose {
            s.stats.lost_acks_injected += 1;
        }
        lose
    }

    async fn before(&self, op: &str, path: &Path) -> Result<()> {
        let (delay, fail) = self.draw();
        if !delay.is_zero() {
            rt::sleep(delay).await;
        }
        if fail {
            return Err(object_store::Error::Generic {
                store: "FaultyStore",
                source: format!("injected fault on {op} {path}").into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.before("put", location).await?;
        let result = self.inner.put_opts(location, payload, opts).await;
        if result.is_ok() && self.lose_ack() {
            return Err(object_store::Error::Generic {
                store: "FaultyStore",
                source: format!("injected lost acknowledgement of put {location}").into(),
            });
        }
        result
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.before("put_multipart", location).await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.before("get", location).await?;
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let this = self.clone();
        let inner = self.inner.clone();
        // Faults apply per location before it reaches the inner store.
        let checked = locations
            .then(move |loc| {
                let this = this.clone();
                async move {
                    let loc = loc?;
                    this.before("delete", &loc).await?;
                    Ok(loc)
                }
            })
            .boxed();
        inner.delete_stream(checked)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let (_, fail) = self.draw();
        if fail {
            let err = object_store::Error::Generic {
                store: "FaultyStore",
                source: "injected fault on list".into(),
            };
            return futures::stream::once(async move { Err(err) }).boxed();
        }
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.before("list", prefix.unwrap_or(&Path::from("")))
            .await?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.before("copy", from).await?;
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn injects_errors_at_the_configured_rate_and_passes_through_otherwise() {
        let s = FaultyStore::new(Arc::new(InMemory::new()), 1);
        let p = Path::from("a/b");
        s.put(&p, PutPayload::from_static(b"x")).await.unwrap();
        assert_eq!(
            s.get(&p).await.unwrap().bytes().await.unwrap().as_ref(),
            b"x"
        );
        s.set_config(FaultConfig {
            error_probability: 0.5,
            ..FaultConfig::default()
        });
        let mut errs = 0;
        for _ in 0..200 {
            if s.get(&p).await.is_err() {
                errs += 1;
            }
        }
        assert!((60..140).contains(&errs), "{errs}");
        assert_eq!(s.stats().errors_injected, errs);
    }
}
