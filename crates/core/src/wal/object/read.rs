//! Reading a log from an offset, and truncating it below one.

use super::{Inner, WalError, WalRecord};
use crate::wal::{FrameError, Offset};

impl Inner {
    /// Up to `max` records from `from`: from the tail buffer when it reaches back that
    /// far, else block by block from the one holding `from`, each checked to start
    /// where the one before it ended.
    pub(super) async fn read_from(
        &self,
        from: Offset,
        max: usize,
    ) -> Result<Vec<WalRecord>, WalError> {
        let (first, next, next_seq) = {
            let st = self.lock();
            if from < st.first_offset {
                return Err(WalError::Truncated {
                    requested: from,
                    first: st.first_offset,
                });
            }
            if let Some(front) = st.tail.front() {
                if front.offset <= from {
                    let skip = (from - front.offset) as usize;
                    return Ok(st.tail.iter().skip(skip).take(max).cloned().collect());
                }
            }
            (st.first_offset, st.next_offset, st.next_seq)
        };
        if from >= next || max == 0 {
            return Ok(Vec::new());
        }
        debug_assert!(from >= first);
        let mut seq = self.block_holding(from).await?;
        let mut out = Vec::new();
        let mut expected: Option<Offset> = None;
        while seq < next_seq && out.len() < max {
            let Some((h, records)) = self.blocks.read_if_present(seq).await? else {
                return Err(self.vanished(seq, from).await);
            };
            if let Some(want) = expected {
                if h.first_offset != want {
                    return Err(WalError::Corrupt {
                        location: self.blocks.path(seq).to_string(),
                        source: FrameError::Gap {
                            expected: want,
                            found: h.first_offset,
                        },
                    });
                }
            }
            expected = Some(h.end_offset());
            out.extend(records.into_iter().filter(|r| r.offset >= from));
            seq += 1;
        }
        out.truncate(max);
        Ok(out)
    }

    /// Why block `seq`, inside the log when it was last listed, is gone: truncated
    /// meanwhile (by a newer owner, after its own checkpoint: the reader is behind, and
    /// [`WalError::Truncated`] says so) or lost (damage).
    async fn vanished(&self, seq: u64, from: Offset) -> WalError {
        let _io = self.io.lock().await;
        if let Err(e) = self.reload().await {
            return e;
        }
        let st = self.lock();
        if seq < st.first_seq {
            return WalError::Truncated {
                requested: from,
                first: st.first_offset,
            };
        }
        self.blocks.missing(seq)
    }

    /// The header of block `seq` (cached); `None` if the block is gone.
    async fn header_of(&self, seq: u64) -> Result<Option<super::Header>, WalError> {
        if let Some(h) = self.lock().headers.get(&seq) {
            return Ok(Some(*h));
        }
        let Some(h) = self.blocks.header_if_present(seq).await? else {
            return Ok(None);
        };
        self.lock().headers.insert(seq, h);
        Ok(Some(h))
    }

    /// The last block whose first offset is at most `offset` (binary search over
    /// headers, cached as they are read).
    async fn block_holding(&self, offset: Offset) -> Result<u64, WalError> {
        let (mut lo, mut hi) = {
            let st = self.lock();
            (st.first_seq, st.next_seq)
        };
        // Invariant: header(lo).first_offset <= offset, and every block at or past
        // `hi` starts after it.
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let Some(h) = self.header_of(mid).await? else {
                return Err(self.vanished(mid, offset).await);
            };
            if h.first_offset <= offset {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Deletes data blocks whose records all lie below `offset`, lowest first, never
    /// the last block and never a fence (see the module's notes). Caller holds `io`.
    pub(super) async fn truncate_before(&self, offset: Offset) -> Result<(), WalError> {
        loop {
            let (seq, next_seq) = {
                let st = self.lock();
                (st.first_seq, st.next_seq)
            };
            if seq + 1 >= next_seq {
                return Ok(());
            }
            // A block gone from under this writer was truncated by a newer owner:
            // this writer's view is stale, and the log is shorter already.
            let (Some(after), Some(this)) =
                (self.header_of(seq + 1).await?, self.header_of(seq).await?)
            else {
                self.lock().loaded = false;
                return Ok(());
            };
            if after.first_offset > offset {
                return Ok(());
            }
            if this.kind == super::Kind::Data {
                self.blocks.delete(seq).await?;
            }
            let mut st = self.lock();
            st.headers.remove(&seq);
            (st.first_seq, st.first_offset) = (seq + 1, after.first_offset);
        }
    }
}
