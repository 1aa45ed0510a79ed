use std::collections::VecDeque;

use async_trait::async_trait;
use bytes::Bytes;

use super::{Epoch, FrameError, Offset, Wal, WalError, WalRecord, MAX_RECORD_BYTES};

#[derive(Debug, Default)]
struct Inner {
    records: VecDeque<WalRecord>,
    first: Offset,
    epoch: Epoch,
}

impl Inner {
    /// Moves the fence to `epoch`, which the caller checked is not older: the epoch
    /// only rises, or an owner fenced out could write again.
    fn raise_epoch(&mut self, epoch: Epoch) {
        crate::invariant_cheap!(
            epoch >= self.epoch,
            "WAL epoch went back: {} -> {}",
            self.epoch.0,
            epoch.0
        );
        self.epoch = epoch;
    }
}

/// An in-memory log for tests and simulations of an external log service.
#[derive(Debug, Default)]
pub struct MemWal {
    inner: tokio::sync::Mutex<Inner>,
}

impl MemWal {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Wal for MemWal {
    async fn fence(&self, epoch: Epoch) -> Result<(), WalError> {
        let mut s = self.inner.lock().await;
        if epoch < s.epoch {
            return Err(WalError::Fenced {
                attempted: epoch.0,
                current: s.epoch.0,
            });
        }
        s.raise_epoch(epoch);
        Ok(())
    }

    async fn append(&self, epoch: Epoch, payload: Bytes) -> Result<Offset, WalError> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(WalError::TooLarge {
                size: payload.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        let mut s = self.inner.lock().await;
        if epoch < s.epoch {
            return Err(WalError::Fenced {
                attempted: epoch.0,
                current: s.epoch.0,
            });
        }
        s.raise_epoch(epoch);
        let offset = s.first + s.records.len() as u64;
        s.records.push_back(WalRecord {
            offset,
            epoch,
            payload,
        });
        Ok(offset)
    }

    async fn read_from(&self, from: Offset, max: usize) -> Result<Vec<WalRecord>, WalError> {
        let s = self.inner.lock().await;
        if from < s.first {
            return Err(WalError::Truncated {
                requested: from,
                first: s.first,
            });
        }
        let next = s.first + s.records.len() as u64;
        if from > next {
            return Err(WalError::Corrupt {
                location: self.location(),
                source: FrameError::Missing {
                    needed: from,
                    first: s.first,
                    next,
                },
            });
        }
        Ok(s.records
            .iter()
            .skip((from - s.first) as usize)
            .take(max)
            .cloned()
            .collect())
    }

    async fn truncate_before(&self, offset: Offset) -> Result<(), WalError> {
        let mut s = self.inner.lock().await;
        while s.first < offset && !s.records.is_empty() {
            s.records.pop_front();
            s.first += 1;
        }
        Ok(())
    }

    async fn next_offset(&self) -> Offset {
        let s = self.inner.lock().await;
        s.first + s.records.len() as u64
    }

    async fn first_offset(&self) -> Offset {
        self.inner.lock().await.first
    }

    async fn epoch(&self) -> Epoch {
        self.inner.lock().await.epoch
    }

    fn location(&self) -> String {
        "the in-memory WAL".to_string()
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn satisfies_the_contract() {
        super::super::contract::check(&super::MemWal::new()).await;
    }
}
