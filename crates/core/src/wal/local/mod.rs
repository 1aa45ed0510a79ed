//! The local-file WAL backend for standalone: segmented files under one directory per
//! pchannel, written through the disk seam so the simulator can crash it.
//!
//! Files: `<first offset, 20 digits>.wal` hold frames (see [`super::record`]);
//! `EPOCH` holds the fencing epoch (version byte, u64, CRC-32).
//!
//! Recovery on open reads every segment in order. A torn tail — an incomplete or
//! corrupt frame with nothing valid after it, in the newest segment — is cut off, with a
//! warning: a crash mid-append leaves one (never acknowledged under the `Always`
//! policy), but so does a file cut short after the fact, which nothing can tell apart
//! (its records may have been acknowledged). Corruption
//! anywhere else (a bad frame followed by valid ones, a damaged older segment, a gap in
//! offsets) is refused with [`WalError::Corrupt`]: cutting there would silently drop
//! acknowledged records.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::record::{self, FrameError, HEADER_LEN};
use super::{Epoch, Offset, Wal, WalError, WalRecord, MAX_RECORD_BYTES};

mod check;
mod scan;

use crate::rt::{self, disk::Disk, disk::DiskFile};
pub use check::{
    check_local_wal, check_local_wal_from, repair_local_wal, WalCheck, WalDamage, WalRepair,
};

/// When appends are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fsync before every acknowledgement: nothing acknowledged is lost on power loss.
    Always,
    /// fsync at most once per interval: acknowledged appends of the last interval may
    /// be lost on power loss (never on a process crash).
    Interval(Duration),
    /// Leave it to the operating system.
    Never,
}

#[derive(Debug, Clone)]
pub struct LocalWalOptions {
    /// A new segment file starts once the active one reaches this size.
    pub segment_bytes: u64,
    pub fsync: FsyncPolicy,
}

impl Default for LocalWalOptions {
    fn default() -> Self {
        LocalWalOptions {
            segment_bytes: 64 << 20,
            fsync: FsyncPolicy::Always,
        }
    }
}

const EPOCH_FILE: &str = "EPOCH";
const EPOCH_VERSION: u8 = 1;

#[derive(Debug)]
struct Inner {
    /// First offsets of the segment files, ascending; the last one is active.
    segments: Vec<Offset>,
    active: Box<dyn DiskFile>,
    active_len: u64,
    next: Offset,
    epoch: Epoch,
    /// Set after a failed write or sync: the tail is in an unknown state until reopen.
    broken: bool,
    dirty: bool,
    last_sync: rt::Instant,
}

/// A segmented, checksummed log in a local directory.
#[derive(Debug)]
pub struct LocalWal {
    dir: PathBuf,
    disk: Arc<dyn Disk>,
    opts: LocalWalOptions,
    inner: tokio::sync::Mutex<Inner>,
}

fn segment_name(first: Offset) -> String {
    format!("{first:020}.wal")
}

fn parse_segment_name(name: &str) -> Option<Offset> {
    let stem = name.strip_suffix(".wal")?;
    if stem.len() != 20 {
        return None;
    }
    stem.parse().ok()
}

fn encode_epoch(epoch: Epoch) -> Vec<u8> {
    let mut v = vec![EPOCH_VERSION];
    v.extend_from_slice(&epoch.0.to_le_bytes());
    let c = crc32fast::hash(&v);
    v.extend_from_slice(&c.to_le_bytes());
    v
}

fn decode_epoch(b: &[u8]) -> Result<Epoch, FrameError> {
    if b.len() != 13 {
        return Err(FrameError::Incomplete {
            needed: 13,
            have: b.len(),
        });
    }
    if b[0] != EPOCH_VERSION {
        return Err(FrameError::UnknownVersion(b[0]));
    }
    let stored = u32::from_le_bytes(b[9..13].try_into().expect("4 bytes"));
    let computed = crc32fast::hash(&b[..9]);
    if stored != computed {
        return Err(FrameError::Checksum { stored, computed });
    }
    Ok(Epoch(u64::from_le_bytes(
        b[1..9].try_into().expect("8 bytes"),
    )))
}

fn corrupt(dir: &Path, file: &str, source: FrameError) -> WalError {
    WalError::Corrupt {
        location: format!("{}", dir.join(file).display()),
        source,
    }
}

/// Damage inside a segment file: names the file, the byte and the record.
fn corrupt_at(dir: &Path, file: &str, byte: usize, record: Offset, source: FrameError) -> WalError {
    WalError::Corrupt {
        location: format!(
            "{} at byte {byte} (record {record})",
            dir.join(file).display()
        ),
        source,
    }
}

/// The fencing epoch stored in `dir` (0 if none was ever stored).
fn read_epoch(disk: &dyn Disk, dir: &Path, names: &[String]) -> Result<Epoch, WalError> {
    if !names.iter().any(|n| n == EPOCH_FILE) {
        return Ok(Epoch(0));
    }
    let bytes = disk.open(&dir.join(EPOCH_FILE), false)?.read_all()?;
    decode_epoch(&bytes).map_err(|e| corrupt(dir, EPOCH_FILE, e))
}

/// Checks the segment file starting at offset `first` and cuts a torn tail off the
/// last one. Returns how many records it holds and the newest epoch among them.
fn recover_segment(
    disk: &dyn Disk,
    dir: &Path,
    first: Offset,
    is_last: bool,
) -> Result<(u64, Epoch), WalError> {
    let name = segment_name(first);
    let path = dir.join(&name);
    let mut file = disk.open(&path, false)?;
    let data = file.read_all()?;
    let found = scan::scan(&data, first);
    if let Some(e) = found.error.clone() {
        if !is_last || found.beyond.is_some() {
            let record = found.damaged_offset(first);
            return Err(corrupt_at(dir, &name, found.valid_len, record, e));
        }
        let dropped = data.len() - found.valid_len;
        // A crash mid-append (never acknowledged under `Always`) and a file cut short
        // after the fact (acknowledged records lost) look the same: say so.
        tracing::warn!(
            file = %path.display(),
            kept_bytes = found.valid_len,
            dropped_bytes = dropped,
            error = %e,
            "cutting a torn tail of {dropped} bytes off WAL file {}: an unfinished last \
             write, unless the file was cut short after the fact (then records in it may \
             have been acknowledged)",
            path.display()
        );
        file.truncate(found.valid_len as u64)?;
        file.sync()?;
    }
    Ok((found.records.len() as u64, found.newest_epoch()))
}

/// Opens the segment file appends go to (creating the first one in an empty log):
/// the file, its length and the next offset.
fn open_active(
    disk: &dyn Disk,
    dir: &Path,
    segments: &mut Vec<Offset>,
    next: Option<Offset>,
) -> Result<(Box<dyn DiskFile>, u64, Offset), WalError> {
    if let (Some(&first), Some(next)) = (segments.last(), next) {
        let f = disk.open(&dir.join(segment_name(first)), false)?;
        let len = f.len()?;
        return Ok((f, len, next));
    }
    let f = disk.open(&dir.join(segment_name(0)), true)?;
    disk.sync_dir(dir)?;
    segments.push(0);
    Ok((f, 0, 0))
}

impl LocalWal {
    /// Opens the log in `dir`, recovering from a crash if needed.
    pub fn open(
        disk: Arc<dyn Disk>,
        dir: impl Into<PathBuf>,
        opts: LocalWalOptions,
    ) -> Result<Self, WalError> {
        let dir = dir.into();
        disk.create_dir_all(&dir)?;
        let names = disk.list(&dir)?;
        let mut epoch = read_epoch(&*disk, &dir, &names)?;
        let mut segments: Vec<Offset> =
            names.iter().filter_map(|n| parse_segment_name(n)).collect();
        segments.sort_unstable();

        let mut next: Option<Offset> = None;
        for (i, &first) in segments.iter().enumerate() {
            if let Some(expected) = next {
                if first != expected {
                    return Err(corrupt(
                        &dir,
                        &segment_name(first),
                        FrameError::Gap {
                            expected,
                            found: first,
                        },
                    ));
                }
            }
            let is_last = i + 1 == segments.len();
            let (count, newest) = recover_segment(&*disk, &dir, first, is_last)?;
            epoch = epoch.max(newest);
            next = Some(first + count);
        }
        let (active, active_len, next) = open_active(&*disk, &dir, &mut segments, next)?;
        Ok(LocalWal {
            dir,
            disk,
            opts,
            inner: tokio::sync::Mutex::new(Inner {
                segments,
                active,
                active_len,
                next,
                epoch,
                broken: false,
                dirty: false,
                last_sync: rt::now(),
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn persist_epoch(&self, s: &mut Inner, epoch: Epoch) -> Result<(), WalError> {
        if epoch < s.epoch {
            return Err(WalError::Fenced {
                attempted: epoch.0,
                current: s.epoch.0,
            });
        }
        if epoch > s.epoch {
            self.disk
                .write_atomic(&self.dir.join(EPOCH_FILE), &encode_epoch(epoch))?;
            s.epoch = epoch;
        }
        // The stored epoch only rises: once it went back, an owner fenced out could
        // write again.
        crate::invariant_cheap!(
            s.epoch >= epoch,
            "WAL epoch {} is below the one just admitted, {}",
            s.epoch.0,
            epoch.0
        );
        Ok(())
    }

    fn rotate(&self, s: &mut Inner) -> Result<(), WalError> {
        if s.dirty {
            s.active.sync()?;
            s.dirty = false;
        }
        let f = self.disk.open(&self.dir.join(segment_name(s.next)), true)?;
        self.disk.sync_dir(&self.dir)?;
        s.active = f;
        s.active_len = 0;
        s.segments.push(s.next);
        Ok(())
    }

    fn write_frame(&self, s: &mut Inner, frame: &[u8]) -> Result<(), WalError> {
        if rt::buggify("wal.local.append_io_error") {
            return Err(std::io::Error::other("buggify: injected WAL write error").into());
        }
        if s.active_len >= self.opts.segment_bytes {
            self.rotate(s)?;
        }
        s.active.append(frame)?;
        s.active_len += frame.len() as u64;
        s.dirty = true;
        let sync_now = match self.opts.fsync {
            FsyncPolicy::Always => true,
            FsyncPolicy::Interval(d) => rt::now().duration_since(s.last_sync) >= d,
            FsyncPolicy::Never => false,
        };
        if sync_now {
            s.active.sync()?;
            s.dirty = false;
            s.last_sync = rt::now();
        }
        Ok(())
    }
}

#[async_trait]
impl Wal for LocalWal {
    async fn fence(&self, epoch: Epoch) -> Result<(), WalError> {
        let mut s = self.inner.lock().await;
        if s.broken {
            return Err(WalError::Broken);
        }
        self.persist_epoch(&mut s, epoch)
    }

    async fn append(&self, epoch: Epoch, payload: Bytes) -> Result<Offset, WalError> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(WalError::TooLarge {
                size: payload.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        let mut s = self.inner.lock().await;
        if s.broken {
            return Err(WalError::Broken);
        }
        self.persist_epoch(&mut s, epoch)?;
        let offset = s.next;
        let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
        record::encode(offset, epoch, &payload, &mut frame);
        if let Err(e) = self.write_frame(&mut s, &frame) {
            // The tail may hold part of this frame; nothing more may be appended after
            // it until recovery has cut it.
            s.broken = true;
            return Err(e);
        }
        s.next += 1;
        Ok(offset)
    }

    async fn read_from(&self, from: Offset, max: usize) -> Result<Vec<WalRecord>, WalError> {
        let s = self.inner.lock().await;
        let first = s.segments[0];
        if from < first {
            return Err(WalError::Truncated {
                requested: from,
                first,
            });
        }
        if from > s.next {
            // The log's end is durable (the newest file's name and records carry it,
            // and a flush syncs the log before committing its checkpoint), so it is
            // never before a position a reader was given: a file was lost.
            return Err(WalError::Corrupt {
                location: self.location(),
                source: FrameError::Missing {
                    needed: from,
                    first,
                    next: s.next,
                },
            });
        }
        let start = s.segments.partition_point(|&f| f <= from).saturating_sub(1);
        let mut out = Vec::new();
        for &seg in &s.segments[start..] {
            if out.len() >= max {
                break;
            }
            let data = self
                .disk
                .open(&self.dir.join(segment_name(seg)), false)?
                .read_all()?;
            let (records, _, _) = record::decode_all(&data);
            out.extend(
                records
                    .into_iter()
                    .filter(|r| r.offset >= from && r.offset < s.next)
                    .take(max - out.len()),
            );
        }
        Ok(out)
    }

    async fn truncate_before(&self, offset: Offset) -> Result<(), WalError> {
        let mut s = self.inner.lock().await;
        // Drop whole segments whose successor starts at or before `offset`; the active
        // segment always stays.
        while s.segments.len() > 1 && s.segments[1] <= offset {
            let first = s.segments[0];
            self.disk.remove(&self.dir.join(segment_name(first)))?;
            s.segments.remove(0);
        }
        Ok(())
    }

    async fn next_offset(&self) -> Offset {
        self.inner.lock().await.next
    }

    async fn first_offset(&self) -> Offset {
        self.inner.lock().await.segments[0]
    }

    async fn epoch(&self) -> Epoch {
        self.inner.lock().await.epoch
    }

    async fn sync(&self) -> Result<(), WalError> {
        let mut s = self.inner.lock().await;
        if s.broken {
            return Err(WalError::Broken);
        }
        if s.dirty {
            if let Err(e) = s.active.sync() {
                s.broken = true;
                return Err(e.into());
            }
            s.dirty = false;
            s.last_sync = rt::now();
        }
        Ok(())
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
    }
}

#[cfg(test)]
mod tests;
