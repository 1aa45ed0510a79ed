//! Reading a log from an offset, and truncating it below one.

use super::{Inner, WalError, WalRecord};
use crate::wal::{FrameError, Offset};

/// Why a read found the log other than this writer last listed it. Each is judged
/// again after a fresh listing (another writer may have truncated or moved the log
/// meanwhile); only what persists is reported.
enum Stale {
    /// `from` is below the log's first record.
    Before,
    /// `from` is past the log's end.
    Past,
    /// A block inside the listed log is gone.
    Gone(u64),
    /// Block `seq` does not start where the one before it ended.
    Chain {
        seq: u64,
        want: Offset,
        found: Offset,
    },
}

impl Inner {
    /// Up to `max` records from `from`: from the tail buffer when it reaches back that
    /// far, else block by block from the one holding `from`, each checked to start
    /// where the one before it ended.
    pub(super) async fn read_from(
        &self,
        from: Offset,
        max: usize,
    ) -> Result<Vec<WalRecord>, WalError> {
        let mut stale = Stale::Before;
        for _ in 0..3 {
            match self.read_once(from, max).await? {
                Ok(records) => return Ok(records),
                Err(s) => stale = s,
            }
            let _io = self.io.lock().await;
            self.reload().await?;
        }
        let (first, next) = {
            let st = self.lock();
            (st.first_offset, st.next_offset)
        };
        Err(match stale {
            Stale::Before => WalError::Truncated {
                requested: from,
                first,
            },
            Stale::Past => WalError::Corrupt {
                location: self.blocks.prefix().to_string(),
                source: FrameError::Missing {
                    needed: from,
                    first,
                    next,
                },
            },
            Stale::Gone(seq) => self.blocks.missing(seq),
            Stale::Chain { seq, want, found } => WalError::Corrupt {
                location: self.blocks.path(seq).to_string(),
                source: FrameError::Gap {
                    expected: want,
                    found,
                },
            },
        })
    }

    /// One attempt of [`Inner::read_from`] against the log as last listed.
    async fn read_once(
        &self,
        from: Offset,
        max: usize,
    ) -> Result<Result<Vec<WalRecord>, Stale>, WalError> {
        let (next, next_seq) = {
            let st = self.lock();
            if from < st.first_offset {
                return Ok(Err(Stale::Before));
            }
            if from > st.next_offset {
                // The log ends before the record asked for: a lost tail, unless
                // another writer's blocks are not listed yet.
                return Ok(Err(Stale::Past));
            }
            if let Some(front) = st.tail.front() {
                if front.offset <= from {
                    let skip = (from - front.offset) as usize;
                    return Ok(Ok(st.tail.iter().skip(skip).take(max).cloned().collect()));
                }
            }
            (st.next_offset, st.next_seq)
        };
        if from == next || max == 0 {
            return Ok(Ok(Vec::new()));
        }
        let mut seq = match self.block_holding(from).await? {
            Ok(seq) => seq,
            Err(gone) => return Ok(Err(Stale::Gone(gone))),
        };
        let mut out = Vec::new();
        let mut expected: Option<Offset> = None;
        while seq < next_seq && out.len() < max {
            let Some((h, records)) = self.blocks.read_if_present(seq).await? else {
                return Ok(Err(Stale::Gone(seq)));
            };
            if let Some(want) = expected.filter(|&w| w != h.first_offset) {
                let found = h.first_offset;
                return Ok(Err(Stale::Chain { seq, want, found }));
            }
            expected = Some(h.end_offset());
            out.extend(records.into_iter().filter(|r| r.offset >= from));
            seq += 1;
        }
        out.truncate(max);
        Ok(Ok(out))
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
    /// headers, cached as they are read); `Err(seq)` if a block it looked at is gone.
    async fn block_holding(&self, offset: Offset) -> Result<Result<u64, u64>, WalError> {
        let (mut lo, mut hi) = {
            let st = self.lock();
            (st.first_seq, st.next_seq)
        };
        // Invariant: header(lo).first_offset <= offset, and every block at or past
        // `hi` starts after it.
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let Some(h) = self.header_of(mid).await? else {
                return Ok(Err(mid));
            };
            if h.first_offset <= offset {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(Ok(lo))
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
