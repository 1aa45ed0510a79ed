//! Reading one segment file of a local WAL frame by frame: where its valid records end,
//! why, and whether anything valid lies beyond that point. Recovery (which cuts a torn
//! tail and refuses damage), `quiver inspect` and `quiver repair` all decide from this.

use super::super::record::{self, FrameError, HEADER_LEN};
use super::super::{Epoch, Offset, WalRecord};

/// What a segment file holds.
#[derive(Debug, Clone)]
pub(crate) struct SegmentScan {
    /// The valid records at its start, in offset order from the file's first offset.
    pub records: Vec<WalRecord>,
    /// Length of the valid prefix in bytes.
    pub valid_len: usize,
    /// The file's length.
    pub len: usize,
    /// Why the valid prefix ends before the end of the file, if it does.
    pub error: Option<FrameError>,
    /// Intact frames found after the invalid one whose offsets lie beyond it: how many,
    /// and the largest offset among them. None means the bad bytes run to the end of the
    /// file (a torn tail, if the file is the newest).
    pub beyond: Option<(u64, Offset)>,
}

impl SegmentScan {
    /// The offset the first invalid frame should have had.
    pub fn damaged_offset(&self, first: Offset) -> Offset {
        first + self.records.len() as u64
    }

    /// The newest epoch among the valid records.
    pub fn newest_epoch(&self) -> Epoch {
        self.records
            .iter()
            .map(|r| r.epoch)
            .max()
            .unwrap_or_default()
    }
}

/// Scans the bytes of the segment file whose first record is `first`.
pub(crate) fn scan(data: &[u8], first: Offset) -> SegmentScan {
    let (mut records, mut valid_len, mut error) = record::decode_all(data);
    if let Some(i) = records
        .iter()
        .enumerate()
        .position(|(i, r)| r.offset != first + i as u64)
    {
        // A frame from another position: damage at that point.
        let r = &records[i];
        error = Some(FrameError::Checksum {
            stored: r.offset as u32,
            computed: (first + i as u64) as u32,
        });
        records.truncate(i);
        valid_len = records.iter().map(|r| HEADER_LEN + r.payload.len()).sum();
    }
    let beyond = match error {
        Some(_) => frames_beyond(data, valid_len, first + records.len() as u64),
        None => None,
    };
    SegmentScan {
        records,
        valid_len,
        len: data.len(),
        error,
        beyond,
    }
}

/// Intact frames after byte `pos` (where the invalid frame that should have had offset
/// `expected` starts) with a later offset: their count and largest offset. Every position is tried, not only
/// the one the invalid frame's length field points at, since that field may be the
/// damaged byte. A torn tail is a prefix of one unacknowledged frame and holds none.
pub(crate) fn frames_beyond(data: &[u8], pos: usize, expected: Offset) -> Option<(u64, Offset)> {
    let magic = record::MAGIC.to_le_bytes();
    let mut found: Option<(u64, Offset)> = None;
    let mut at = pos + 1;
    while at + HEADER_LEN <= data.len() {
        if data[at..at + 2] == magic {
            if let Ok((r, n)) = record::decode(&data[at..]) {
                if r.offset > expected {
                    let (count, max) = found.unwrap_or((0, r.offset));
                    found = Some((count + 1, max.max(r.offset)));
                    at += n;
                    continue;
                }
            }
        }
        at += 1;
    }
    found
}

/// The intact frames after byte `pos` whose offsets run contiguously from `from`: what
/// can be salvaged of a damaged file past its damage when only records from `from` on
/// are still needed.
pub(crate) fn salvage_from(data: &[u8], pos: usize, from: Offset) -> Vec<WalRecord> {
    let magic = record::MAGIC.to_le_bytes();
    let mut out: Vec<WalRecord> = Vec::new();
    let mut at = pos;
    while at + HEADER_LEN <= data.len() {
        if data[at..at + 2] == magic {
            if let Ok((r, n)) = record::decode(&data[at..]) {
                let want = from + out.len() as u64;
                if r.offset == want {
                    out.push(r);
                    at += n;
                    continue;
                }
                if r.offset > want {
                    break;
                }
            }
        }
        at += 1;
    }
    out
}
