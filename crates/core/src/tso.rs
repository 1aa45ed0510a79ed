//! Hybrid timestamps and their allocator.
//!
//! A timestamp is Milvus's hybrid format: physical milliseconds shifted left by 18 bits,
//! plus an 18-bit logical counter. The allocator never hands out a timestamp whose
//! physical part is at or beyond the window it has durably reserved in the meta store,
//! so after a restart (or a failover to another allocator reading the same key) it
//! starts above everything ever handed out, even if the wall clock went backwards.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error_kind::ErrorKind;
use crate::meta::{MetaError, MetaStore};
use crate::rt;

pub const LOGICAL_BITS: u32 = 18;
const LOGICAL_MASK: u64 = (1 << LOGICAL_BITS) - 1;

/// A hybrid timestamp.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    pub fn compose(physical_ms: u64, logical: u64) -> Self {
        Timestamp((physical_ms << LOGICAL_BITS) | (logical & LOGICAL_MASK))
    }
    pub fn physical_ms(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }
    pub fn logical(self) -> u64 {
        self.0 & LOGICAL_MASK
    }
    /// The timestamp `ms` milliseconds earlier (saturating), used for Bounded reads.
    pub fn minus_ms(self, ms: u64) -> Self {
        Timestamp::compose(self.physical_ms().saturating_sub(ms), 0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.physical_ms(), self.logical())
    }
}

#[derive(Debug, Error)]
pub enum TsoError {
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error("another allocator moved the TSO window at {0:?}; this one is fenced out")]
    Fenced(String),
    #[error("cannot allocate {0} timestamps at once (max {max})", max = LOGICAL_MASK)]
    TooMany(u32),
    #[error("timestamp oracle unavailable: {0}")]
    Unavailable(String),
}

impl TsoError {
    /// The meta store's kind for its failures; a fenced allocator has lost its window
    /// to another ([`ErrorKind::NotOwner`]); an unavailable oracle may come back
    /// ([`ErrorKind::Retriable`]); too many at once is the caller's mistake.
    pub fn kind(&self) -> ErrorKind {
        match self {
            TsoError::Meta(m) => m.kind(),
            TsoError::Fenced(_) => ErrorKind::NotOwner,
            TsoError::TooMany(_) => ErrorKind::InvalidInput,
            TsoError::Unavailable(_) => ErrorKind::Retriable,
        }
    }
}

/// Where timestamps come from: the allocator itself in the coordinator's process, or
/// a client of the coordinator elsewhere.
#[async_trait::async_trait]
pub trait TimestampOracle: Send + Sync {
    /// Allocates `count` consecutive timestamps; returns the last.
    async fn alloc(&self, count: u32) -> Result<Timestamp, TsoError>;

    async fn next(&self) -> Result<Timestamp, TsoError> {
        self.alloc(1).await
    }
}

#[async_trait::async_trait]
impl TimestampOracle for TsoAllocator {
    async fn alloc(&self, count: u32) -> Result<Timestamp, TsoError> {
        TsoAllocator::alloc(self, count).await
    }
}

/// The wall clock the allocator reads; replaceable in tests.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

struct State {
    physical: u64,
    logical: u64,
    /// Exclusive upper bound on physical ms we may hand out (durably reserved).
    window_end: u64,
    /// The window value as last written, for compare-and-swap.
    stored: Option<Vec<u8>>,
    /// Window writes whose outcome is unknown since the last known one (the meta
    /// store failed after the request left): any of them may have committed.
    pending: Vec<Vec<u8>>,
}

/// Allocates strictly increasing timestamps, persisting a reservation window.
pub struct TsoAllocator {
    meta: Arc<dyn MetaStore>,
    key: String,
    window_ms: u64,
    clock: Clock,
    state: tokio::sync::Mutex<State>,
}

impl fmt::Debug for TsoAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsoAllocator")
            .field("key", &self.key)
            .finish()
    }
}

fn decode_window(key: &str, v: &[u8]) -> Result<u64, MetaError> {
    let arr: [u8; 8] = v.try_into().map_err(|_| MetaError::Corrupt {
        key: key.to_string(),
        reason: format!("TSO window must be 8 bytes, got {}", v.len()),
    })?;
    Ok(u64::from_le_bytes(arr))
}

impl TsoAllocator {
    /// Opens the allocator whose window lives at `key`, with the real wall clock.
    pub async fn open(meta: Arc<dyn MetaStore>, key: &str) -> Result<Self, TsoError> {
        Self::open_with_clock(meta, key, 3_000, Arc::new(rt::wall_clock_ms)).await
    }

    /// Opens with an explicit reservation window and clock.
    pub async fn open_with_clock(
        meta: Arc<dyn MetaStore>,
        key: &str,
        window_ms: u64,
        clock: Clock,
    ) -> Result<Self, TsoError> {
        let stored = meta.get(key).await?;
        let mut saved = match &stored {
            Some(v) => decode_window(key, v)?,
            None => 0,
        };
        let mut clock = clock;
        if crate::mutation::active("tso-reset") {
            // Planted bug: forget every timestamp handed out before and count from zero.
            saved = 0;
            let start = rt::now();
            clock = Arc::new(move || rt::now().duration_since(start).as_millis() as u64);
        }
        Ok(TsoAllocator {
            meta,
            key: key.to_string(),
            window_ms: window_ms.max(1),
            clock,
            state: tokio::sync::Mutex::new(State {
                // Everything handed out before had physical < saved; start at saved.
                physical: saved,
                logical: 0,
                window_end: saved,
                stored,
                pending: Vec::new(),
            }),
        })
    }

    /// Allocates `count` consecutive timestamps and returns the last one; the first is
    /// `last - (count - 1)`. Every call returns a value above every earlier one.
    pub async fn alloc(&self, count: u32) -> Result<Timestamp, TsoError> {
        if count == 0 || u64::from(count) > LOGICAL_MASK {
            return Err(TsoError::TooMany(count));
        }
        let mut s = self.state.lock().await;
        let now = (self.clock)();
        let (mut physical, mut logical) = if now > s.physical {
            (now, 0)
        } else {
            (s.physical, s.logical + 1)
        };
        if logical + u64::from(count) - 1 > LOGICAL_MASK {
            physical += 1;
            logical = 0;
        }
        if physical >= s.window_end {
            let new_end = physical + self.window_ms;
            let new_val = new_end.to_le_bytes().to_vec();
            let ok = match self
                .meta
                .compare_and_swap(&self.key, s.stored.as_deref(), Some(new_val.clone()))
                .await
            {
                Ok(ok) => ok,
                Err(e) => {
                    s.pending.push(new_val);
                    return Err(e.into());
                }
            };
            if !ok {
                // Our earlier write whose answer was lost may have committed: then
                // the stored window is ours, and so is this one to move from.
                let current = self.meta.get(&self.key).await?;
                match current {
                    Some(cur) if s.pending.contains(&cur) => {
                        s.window_end = decode_window(&self.key, &cur)?;
                        s.stored = Some(cur);
                        s.pending.clear();
                        drop(s);
                        return Box::pin(self.alloc(count)).await;
                    }
                    _ => return Err(TsoError::Fenced(self.key.clone())),
                }
            }
            s.pending.clear();
            s.window_end = new_end;
            s.stored = Some(new_val);
        }
        let last_logical = logical + u64::from(count) - 1;
        // Timestamps order every mutation and read: one handed out twice (or going
        // back) would let a read miss an acknowledged write or see one twice. And
        // none may reach the reserved window's end, or a restart could repeat it.
        crate::invariant_cheap!(
            Timestamp::compose(physical, logical) > Timestamp::compose(s.physical, s.logical),
            "TSO went back: {} after {}",
            Timestamp::compose(physical, logical),
            Timestamp::compose(s.physical, s.logical)
        );
        crate::invariant_cheap!(
            physical < s.window_end,
            "TSO handed out {physical} ms beyond its reserved window {}",
            s.window_end
        );
        s.physical = physical;
        s.logical = last_logical;
        Ok(Timestamp::compose(physical, last_logical))
    }

    /// One timestamp.
    pub async fn next(&self) -> Result<Timestamp, TsoError> {
        self.alloc(1).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::MemMetaStore;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Debug, Clone)]
    enum Op {
        Alloc(u32),
        ClockJump(i64),
        Restart,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (1u32..2000).prop_map(Op::Alloc),
            2 => (-5000i64..5000).prop_map(Op::ClockJump),
            1 => Just(Op::Restart),
        ]
    }

    use crate::rt::block_on;

    proptest! {
        #[test]
        fn strictly_increasing_across_restarts_and_clock_jumps(
            ops in proptest::collection::vec(op(), 1..200),
            window in 1u64..5000,
        ) {
            block_on(async move {
                let meta: Arc<dyn MetaStore> = Arc::new(MemMetaStore::new());
                let now = Arc::new(AtomicU64::new(1_700_000_000_000));
                let clock: Clock = { let n = now.clone(); Arc::new(move || n.load(Ordering::SeqCst)) };
                let mut tso = TsoAllocator::open_with_clock(meta.clone(), "tso", window, clock.clone()).await.unwrap();
                let mut last = Timestamp::ZERO;
                for op in ops {
                    match op {
                        Op::Alloc(n) => {
                            let ts = tso.alloc(n).await.unwrap();
                            let first = Timestamp(ts.0 - (n as u64 - 1));
                            prop_assert!(first > last, "{first} !> {last}");
                            prop_assert_eq!(ts.physical_ms(), first.physical_ms());
                            last = ts;
                        }
                        Op::ClockJump(d) => {
                            let cur = now.load(Ordering::SeqCst) as i64;
                            now.store((cur + d).max(0) as u64, Ordering::SeqCst);
                        }
                        Op::Restart => {
                            tso = TsoAllocator::open_with_clock(meta.clone(), "tso", window, clock.clone()).await.unwrap();
                        }
                    }
                }
                Ok(())
            })?;
        }
    }

    #[tokio::test]
    async fn a_second_allocator_fences_the_first() {
        let meta: Arc<dyn MetaStore> = Arc::new(MemMetaStore::new());
        let clock: Clock = Arc::new(|| 1000);
        let a = TsoAllocator::open_with_clock(meta.clone(), "tso", 10, clock.clone())
            .await
            .unwrap();
        a.next().await.unwrap();
        let b = TsoAllocator::open_with_clock(meta.clone(), "tso", 10, clock.clone())
            .await
            .unwrap();
        let tb = b.next().await.unwrap();
        assert!(tb.physical_ms() >= 1010);
        // a's window ends at 1010; once it needs a new window its CAS fails.
        let mut fenced = false;
        for _ in 0..50 {
            match a.alloc(200_000).await {
                Ok(_) => {}
                Err(TsoError::Fenced(_)) => {
                    fenced = true;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(fenced);
    }

    /// A meta store whose next compare-and-swap commits and then reports an error.
    #[derive(Debug)]
    struct LostAnswer {
        inner: MemMetaStore,
        armed: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl MetaStore for LostAnswer {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, MetaError> {
            self.inner.get(key).await
        }
        async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), MetaError> {
            self.inner.put(key, value).await
        }
        async fn compare_and_swap(
            &self,
            key: &str,
            expected: Option<&[u8]>,
            new: Option<Vec<u8>>,
        ) -> Result<bool, MetaError> {
            let r = self.inner.compare_and_swap(key, expected, new).await;
            if self.armed.swap(false, Ordering::SeqCst) {
                return Err(MetaError::Unavailable("timeout after commit".into()));
            }
            r
        }
        async fn range(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
            self.inner.range(prefix).await
        }
        async fn delete(&self, key: &str) -> Result<(), MetaError> {
            self.inner.delete(key).await
        }
    }

    #[test]
    fn window_write_with_lost_answer_is_adopted() {
        crate::rt::block_on(async {
            let meta = Arc::new(LostAnswer {
                inner: MemMetaStore::new(),
                armed: std::sync::atomic::AtomicBool::new(false),
            });
            let now = Arc::new(AtomicU64::new(1000));
            let n = now.clone();
            let clock: Clock = Arc::new(move || n.load(Ordering::SeqCst));
            let a = TsoAllocator::open_with_clock(meta.clone(), "tso", 10, clock)
                .await
                .unwrap();
            let t1 = a.next().await.unwrap();
            // The next window write commits but its answer is lost.
            now.store(2000, Ordering::SeqCst);
            meta.armed.store(true, Ordering::SeqCst);
            assert!(a.next().await.is_err());
            // The allocator recognises its own write and carries on, rising.
            let t2 = a.next().await.unwrap();
            assert!(t2 > t1);
            now.store(3000, Ordering::SeqCst);
            assert!(a.next().await.unwrap() > t2);
        });
    }

    #[test]
    fn compose_roundtrips() {
        let t = Timestamp::compose(123_456, 789);
        assert_eq!(t.physical_ms(), 123_456);
        assert_eq!(t.logical(), 789);
    }
}
