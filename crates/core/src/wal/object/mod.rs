//! A log on object storage: the seed's Woodpecker "zero-disk" mode. No local disk is
//! involved; any streaming node that can reach the store can take the log over.
//!
//! - A log is a sequence of block objects `<prefix>/<block number, 20 digits>`, each a
//!   batch of framed records ([`block`]), each written with a conditional create
//!   (`PutMode::Create`, S3's `If-None-Match: *`): two writers can never both write
//!   block N, and no block is ever rewritten.
//! - **Fencing**: a new owner lists the log and writes a fence object at the next block
//!   number. The old owner's next put there fails, it reads what took its place, sees
//!   the newer epoch and stops. A record is acknowledged only after its block's put
//!   succeeded, so everything acknowledged lies below the fence and the new owner, which
//!   reads up to its fence, sees it.
//! - **Group commit**: appends arriving while a block is in flight wait and go into the
//!   next block together (bounded by bytes, records and an optional linger), written by
//!   one flusher task, one block at a time, in order.
//! - **Uncertain puts**: a put that reports failure may still have taken effect (S3 on a
//!   timeout). The writer reads the block back: its own bytes mean success; nothing or
//!   an error leaves the outcome unknown, the append fails as an I/O error and the log
//!   reloads its position from the store before its next write.
//! - **Recovery** reads blocks from the checkpoint forward; a missing block between two
//!   present ones, a block out of chain or one that fails its checksum is damage, never
//!   skipped. Recent records stay in memory for tail reads.
//! - **Truncation** deletes data blocks wholly below the checkpoint, lowest first, never
//!   the last block (it says where the log ends and who holds it) and never a fence. A
//!   conditional create cannot tell a freed number from a never-used one, so a fence
//!   must outlive every writer it fenced: a stale writer's next number is always the
//!   fence that stopped it (it wrote every block before it). A claim checks that its
//!   fence landed at the end of the log, not in a number freed below it. Fences are a
//!   header each and one is written per change of owner.

mod block;
mod check;
mod read;
mod store;
#[cfg(test)]
mod tests;
mod write;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::path::Path;
use object_store::ObjectStore;
use tokio::sync::oneshot;

use super::{Epoch, Offset, Wal, WalError, WalRecord, MAX_RECORD_BYTES};
pub use block::{decode as decode_block, encode_data, encode_fence, Header, Kind, HEADER_LEN};
pub use check::check_object_wal;
pub use store::{list_logs, remove_log};
use store::{Blocks, Put};

/// How an object-storage log batches its writes.
#[derive(Debug, Clone)]
pub struct ObjectWalOptions {
    /// A block closes at this many bytes of records (one record may exceed it alone).
    pub max_block_bytes: usize,
    /// A block closes at this many records.
    pub max_block_records: usize,
    /// How long the flusher waits for more appends before writing a block. Zero writes
    /// at once; batching then comes only from appends that arrive during a put.
    pub linger: Duration,
    /// Recent records kept in memory for tail reads.
    pub tail_bytes: usize,
}

impl Default for ObjectWalOptions {
    fn default() -> Self {
        ObjectWalOptions {
            max_block_bytes: 4 << 20,
            max_block_records: 10_000,
            linger: Duration::ZERO,
            tail_bytes: 8 << 20,
        }
    }
}

/// One log on object storage. Clones share the log.
#[derive(Clone)]
pub struct ObjectWal {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ObjectWal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObjectWal({})", self.inner.blocks.prefix())
    }
}

struct Inner {
    blocks: Blocks,
    opts: ObjectWalOptions,
    state: Mutex<State>,
    /// Held across every write to the store (blocks, fences, deletions) and every
    /// reload, so they happen one at a time and block numbers are taken in order.
    io: tokio::sync::Mutex<()>,
}

struct Pending {
    epoch: Epoch,
    payload: Bytes,
    done: oneshot::Sender<Result<Offset, WalError>>,
}

/// What the writer knows of its log.
#[derive(Default)]
struct State {
    /// False until the position was read from the store, and again after a write whose
    /// outcome is unknown: the next operation reloads first.
    loaded: bool,
    /// The epoch of the log's last block: the epoch holding the log.
    epoch: Epoch,
    /// Whether this process wrote the fence (or a block) for `epoch`.
    claimed: bool,
    first_seq: u64,
    next_seq: u64,
    first_offset: Offset,
    next_offset: Offset,
    headers: BTreeMap<u64, Header>,
    tail: VecDeque<WalRecord>,
    tail_bytes: usize,
    pending: VecDeque<Pending>,
    flushing: bool,
}

fn io_error(msg: impl Into<String>) -> WalError {
    WalError::Io(std::io::Error::other(msg.into()))
}

impl ObjectWal {
    /// Opens the log under `prefix` (creating nothing: an empty log is no objects) and
    /// reads where it ends.
    pub async fn open(
        store: Arc<dyn ObjectStore>,
        prefix: Path,
        opts: ObjectWalOptions,
    ) -> Result<Self, WalError> {
        let wal = ObjectWal {
            inner: Arc::new(Inner {
                blocks: Blocks::new(store, prefix),
                opts,
                state: Mutex::new(State::default()),
                io: tokio::sync::Mutex::new(()),
            }),
        };
        let _io = wal.inner.io.lock().await;
        wal.inner.reload().await?;
        drop(_io);
        Ok(wal)
    }
}

impl ObjectWal {
    /// How many blocks (data and fences) the log holds from its first live one.
    pub fn live_blocks(&self) -> usize {
        let st = self.inner.lock();
        (st.next_seq - st.first_seq) as usize
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the log's position from the store. Caller holds `io`.
    async fn reload(&self) -> Result<(), WalError> {
        let found = self.blocks.scan().await?;
        let mut st = self.lock();
        st.headers.clear();
        st.tail.clear();
        st.tail_bytes = 0;
        match found {
            None => {
                (st.first_seq, st.next_seq, st.first_offset, st.next_offset) = (0, 0, 0, 0);
                st.claimed = st.claimed && st.epoch == Epoch(0);
                st.epoch = Epoch(0);
            }
            Some(f) => {
                st.claimed = st.claimed && st.epoch == f.last.epoch;
                st.epoch = f.last.epoch;
                (st.first_seq, st.next_seq) = (f.first_seq, f.last_seq + 1);
                (st.first_offset, st.next_offset) = (f.first.first_offset, f.last.end_offset());
                st.headers.insert(f.first_seq, f.first);
                st.headers.insert(f.last_seq, f.last);
            }
        }
        st.loaded = true;
        Ok(())
    }

    async fn ensure_loaded(&self) -> Result<(), WalError> {
        if self.lock().loaded {
            return Ok(());
        }
        let _io = self.io.lock().await;
        if !self.lock().loaded {
            self.reload().await?;
        }
        Ok(())
    }

    /// Claims the log for `epoch`: lists it and writes a fence at the next block
    /// number, again after every lost race for that number. Caller holds `io`.
    async fn claim(&self, epoch: Epoch) -> Result<(), WalError> {
        for _ in 0..64 {
            self.reload().await?;
            let (seq, next, current) = {
                let st = self.lock();
                (st.next_seq, st.next_offset, st.epoch)
            };
            if current > epoch {
                return Err(WalError::Fenced {
                    attempted: epoch.0,
                    current: current.0,
                });
            }
            if crate::mutation::active("wal-no-fence") {
                let mut st = self.lock();
                (st.epoch, st.claimed) = (epoch, true);
                return Ok(());
            }
            match self.blocks.put(seq, encode_fence(epoch, next)).await {
                Put::Written(h) => {
                    if !self.landed_last(seq, epoch).await? {
                        continue;
                    }
                    let mut st = self.lock();
                    st.headers.insert(seq, h);
                    (st.next_seq, st.epoch, st.claimed) = (seq + 1, epoch, true);
                    return Ok(());
                }
                Put::Taken(_) => continue,
                Put::Unknown(e) => {
                    self.lock().loaded = false;
                    return Err(e);
                }
            }
        }
        Err(io_error(format!(
            "{}: could not place a fence after 64 lost races",
            self.blocks.prefix()
        )))
    }

    /// Whether the fence just written at `seq` is the log's last block. A claim that
    /// paused between listing and writing may find its number freed by truncation far
    /// below the log's end: that fence is void (and harmless: fences below the first
    /// data block are ignored). A newer epoch at the end means the claim lost.
    async fn landed_last(&self, seq: u64, epoch: Epoch) -> Result<bool, WalError> {
        let last = self.blocks.last_seq().await?.unwrap_or(seq);
        if last <= seq {
            return Ok(true);
        }
        let h = self.blocks.header(last).await?;
        if h.epoch > epoch {
            return Err(WalError::Fenced {
                attempted: epoch.0,
                current: h.epoch.0,
            });
        }
        Ok(false)
    }

    /// For the epoch this process already holds: checks that no newer owner has
    /// fenced the log since, by looking for a block at the next number. Caller holds
    /// `io`, so no block of ours is in flight there.
    async fn probe(&self, epoch: Epoch) -> Result<(), WalError> {
        let seq = self.lock().next_seq;
        if !self.blocks.exists(seq).await? {
            return Ok(());
        }
        self.reload().await?;
        let current = self.lock().epoch;
        if current > epoch {
            return Err(WalError::Fenced {
                attempted: epoch.0,
                current: current.0,
            });
        }
        Err(io_error(format!(
            "{}: block {seq} appeared under epoch {} while this writer held it",
            self.blocks.prefix(),
            current.0
        )))
    }
}

#[async_trait]
impl Wal for ObjectWal {
    async fn fence(&self, epoch: Epoch) -> Result<(), WalError> {
        let inner = &self.inner;
        let _io = inner.io.lock().await;
        let (loaded, current, claimed) = {
            let st = inner.lock();
            (st.loaded, st.epoch, st.claimed)
        };
        if loaded && current > epoch {
            return Err(WalError::Fenced {
                attempted: epoch.0,
                current: current.0,
            });
        }
        if loaded && current == epoch && claimed {
            return inner.probe(epoch).await;
        }
        inner.claim(epoch).await
    }

    async fn append(&self, epoch: Epoch, payload: Bytes) -> Result<Offset, WalError> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(WalError::TooLarge {
                size: payload.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        let (current, claimed) = {
            let st = self.inner.lock();
            (st.epoch, st.claimed && st.loaded)
        };
        if epoch < current {
            return Err(WalError::Fenced {
                attempted: epoch.0,
                current: current.0,
            });
        }
        if epoch > current || !claimed {
            self.fence(epoch).await?;
        }
        let rx = write::enqueue(&self.inner, epoch, payload);
        rx.await
            .unwrap_or_else(|_| Err(io_error("the WAL's flusher stopped before writing")))
    }

    async fn read_from(&self, from: Offset, max: usize) -> Result<Vec<WalRecord>, WalError> {
        self.inner.ensure_loaded().await?;
        self.inner.read_from(from, max).await
    }

    async fn truncate_before(&self, offset: Offset) -> Result<(), WalError> {
        self.inner.ensure_loaded().await?;
        let _io = self.inner.io.lock().await;
        self.inner.truncate_before(offset).await
    }

    async fn next_offset(&self) -> Offset {
        self.inner.lock().next_offset
    }

    async fn first_offset(&self) -> Offset {
        self.inner.lock().first_offset
    }

    async fn epoch(&self) -> Epoch {
        self.inner.lock().epoch
    }

    fn location(&self) -> String {
        format!("the WAL at {}", self.inner.blocks.prefix())
    }
}
