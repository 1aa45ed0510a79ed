//! Group commit: appends queue up, one flusher task writes them as blocks, one block
//! at a time, and acknowledges each append once its block's put succeeded.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::block::encode_data;
use super::store::Put;
use super::{io_error, Inner, Pending, State};
use crate::wal::{Epoch, Offset, WalError, WalRecord};

/// Queues one record and makes sure a flusher runs; the receiver gets its offset once
/// the record's block is durable.
pub(super) fn enqueue(
    inner: &Arc<Inner>,
    epoch: Epoch,
    payload: Bytes,
) -> oneshot::Receiver<Result<Offset, WalError>> {
    let (done, rx) = oneshot::channel();
    let mut st = inner.lock();
    st.pending.push_back(Pending {
        epoch,
        payload,
        done,
    });
    if !st.flushing {
        st.flushing = true;
        let inner = inner.clone();
        crate::rt::spawn(async move { flush(inner).await });
    }
    rx
}

/// Clears `flushing` and fails what is still queued if the flusher ends without
/// draining the queue (a panic): appends never wait for a flusher that is gone.
struct FlusherGuard<'a>(&'a Inner);

impl Drop for FlusherGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        if !st.flushing {
            return;
        }
        st.flushing = false;
        for p in st.pending.drain(..) {
            let _ = p.done.send(Err(io_error("the WAL's flusher stopped")));
        }
    }
}

/// Writes blocks until nothing is pending.
async fn flush(inner: Arc<Inner>) {
    let _guard = FlusherGuard(&inner);
    loop {
        if !inner.opts.linger.is_zero() {
            crate::rt::sleep(inner.opts.linger).await;
        }
        let _io = inner.io.lock().await;
        // Reload before cutting the batch, so the batch is judged against the epoch
        // that actually holds the log.
        if let Err(e) = ensure_loaded_locked(&inner).await {
            // Nothing queued can be placed: fail it all and stop (the next append
            // starts a flusher again, which retries the load).
            let mut st = inner.lock();
            st.flushing = false;
            fail(st.pending.drain(..).collect(), |_| clone_error(&e));
            return;
        }
        let batch = take_batch(&inner);
        if batch.is_empty() {
            return;
        }
        write_batch(&inner, batch).await;
        drop(_io);
        // The appenders just answered usually append again at once: let them queue
        // before the next block is cut, or blocks alternate between full and nearly
        // empty and throughput halves.
        for _ in 0..4 {
            crate::rt::yield_now().await;
        }
    }
}

async fn ensure_loaded_locked(inner: &Inner) -> Result<(), WalError> {
    if inner.lock().loaded {
        return Ok(());
    }
    inner.reload().await
}

/// Takes the next block's records: those under the epoch holding the log, up to the
/// block limits. Others are refused here (older: fenced; newer: the claim they relied
/// on did not stick); an empty result stops the flusher (decided under the same lock
/// `enqueue` starts one under).
fn take_batch(inner: &Inner) -> Vec<Pending> {
    let mut st = inner.lock();
    let (mut batch, mut bytes) = (Vec::new(), 0usize);
    let max_records = inner.opts.max_block_records.max(1);
    while let Some(p) = st.pending.front() {
        let full = batch.len() >= max_records
            || (!batch.is_empty() && bytes + p.payload.len() > inner.opts.max_block_bytes);
        if full {
            break;
        }
        let p = st.pending.pop_front().expect("front exists");
        if p.epoch != st.epoch || !st.loaded {
            let current = st.epoch.0;
            let _ = p.done.send(Err(if p.epoch < st.epoch {
                WalError::Fenced {
                    attempted: p.epoch.0,
                    current,
                }
            } else {
                io_error(format!(
                    "the log is not held under epoch {} (held by {current}); reopen",
                    p.epoch.0
                ))
            }));
            continue;
        }
        bytes += p.payload.len();
        batch.push(p);
    }
    if batch.is_empty() && st.pending.is_empty() {
        st.flushing = false;
    }
    batch
}

fn fail(batch: Vec<Pending>, err: impl Fn(&Pending) -> WalError) {
    for p in batch {
        let e = err(&p);
        let _ = p.done.send(Err(e));
    }
}

fn clone_error(e: &WalError) -> WalError {
    match e {
        WalError::Fenced { attempted, current } => WalError::Fenced {
            attempted: *attempted,
            current: *current,
        },
        WalError::Corrupt { location, source } => WalError::Corrupt {
            location: location.clone(),
            source: source.clone(),
        },
        other => io_error(other.to_string()),
    }
}

/// Writes one block and answers its appends. Caller holds `io`.
async fn write_batch(inner: &Inner, mut batch: Vec<Pending>) {
    let (seq, first, epoch) = {
        let st = inner.lock();
        (st.next_seq, st.next_offset, st.epoch)
    };
    crate::invariant_cheap!(
        batch.iter().all(|p| p.epoch == epoch),
        "a block mixes epochs: the log is held by {}",
        epoch.0
    );
    let payloads: Vec<Bytes> = batch.iter().map(|p| p.payload.clone()).collect();
    let bytes = encode_data(epoch, first, &payloads);
    if crate::mutation::active("wal-ack-before-put") {
        // The planted bug: acknowledge first, write after.
        for (i, p) in batch.drain(..).enumerate() {
            let _ = p.done.send(Ok(first + i as u64));
        }
    }
    match inner.blocks.put(seq, bytes).await {
        Put::Written(h) => {
            let mut st = inner.lock();
            st.headers.insert(seq, h);
            st.next_seq = seq + 1;
            st.next_offset = h.end_offset();
            remember(&mut st, inner.opts.tail_bytes, epoch, first, &payloads);
            drop(st);
            for (i, p) in batch.into_iter().enumerate() {
                let _ = p.done.send(Ok(first + i as u64));
            }
        }
        Put::Taken(h) => {
            let mut st = inner.lock();
            st.loaded = false;
            if h.epoch > epoch {
                (st.epoch, st.claimed) = (h.epoch, false);
            }
            drop(st);
            let prefix = inner.blocks.prefix().clone();
            fail(batch, |p| {
                if h.epoch > p.epoch {
                    WalError::Fenced {
                        attempted: p.epoch.0,
                        current: h.epoch.0,
                    }
                } else {
                    io_error(format!(
                        "{prefix}: block {seq} was written by another writer under epoch {}",
                        h.epoch.0
                    ))
                }
            });
        }
        Put::Unknown(e) => {
            inner.lock().loaded = false;
            fail(batch, |_| clone_error(&e));
        }
    }
}

/// Keeps the block's records in the tail buffer, dropping the oldest past its size.
fn remember(st: &mut State, cap: usize, epoch: Epoch, first: Offset, payloads: &[Bytes]) {
    for (i, p) in payloads.iter().enumerate() {
        st.tail_bytes += p.len();
        st.tail.push_back(WalRecord {
            offset: first + i as u64,
            epoch,
            payload: p.clone(),
        });
    }
    while st.tail_bytes > cap {
        let Some(r) = st.tail.pop_front() else { break };
        st.tail_bytes -= r.payload.len();
    }
}
