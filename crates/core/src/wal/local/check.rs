//! Offline checks and repairs of one local WAL directory, for `quiver inspect` and
//! `quiver repair` on a stopped server. A check reads and never writes. A repair only
//! acts on damage the check reports (a torn tail is not damage: the next open cuts it),
//! and says exactly which records it gave up.

use std::path::{Path, PathBuf};

use super::super::record::{self, FrameError};
use super::super::{Offset, WalError, WalRecord};
use super::scan::{self, SegmentScan};
use super::{decode_epoch, parse_segment_name, segment_name, EPOCH_FILE};
use crate::rt::disk::Disk;

/// Where a log is damaged and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalDamage {
    pub file: PathBuf,
    /// Where in the file the damage starts.
    pub byte: u64,
    /// The record that should have been there (none for the epoch file).
    pub record: Option<Offset>,
    pub problem: FrameError,
    /// Intact records found past the damage (count, largest offset): they cannot be
    /// replayed across the hole.
    pub intact_beyond: Option<(u64, Offset)>,
}

impl std::fmt::Display for WalDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if !matches!(self.problem, FrameError::Missing { .. }) {
            write!(f, " byte {}", self.byte)?;
        }
        if let Some(r) = self.record {
            write!(f, " (record {r})")?;
        }
        write!(f, ": {}", self.problem)?;
        if let Some((n, max)) = self.intact_beyond {
            write!(f, "; {n} intact records follow, up to record {max}")?;
        }
        Ok(())
    }
}

/// What a check of one log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalCheck {
    /// The oldest record kept.
    pub first: Offset,
    /// The end of the readable records (the first damaged one, if any).
    pub next: Offset,
    pub segment_files: usize,
    /// Bytes of an unfinished last write that the next open cuts off (never
    /// acknowledged under the `always` fsync policy).
    pub torn_tail_bytes: u64,
    pub damage: Option<WalDamage>,
}

/// What a repair did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalRepair {
    /// The damage it acted on, in order.
    pub damage: Vec<WalDamage>,
    /// Records given up, as `[from, to]` (to is the largest offset known to have been
    /// in the log; more may have been in the damaged bytes).
    pub lost: Vec<(Offset, Offset)>,
    pub removed_files: Vec<String>,
    pub written_files: Vec<String>,
    /// Files cut short: (name, new length in bytes).
    pub cut_files: Vec<(String, u64)>,
    /// The log was re-based at this checkpoint because files holding records from it
    /// on were missing: those records are lost, and how many there were is unknown.
    pub rebased_at: Option<Offset>,
}

fn segments_of(disk: &dyn Disk, dir: &Path) -> Result<(Vec<String>, Vec<Offset>), WalError> {
    let names = match disk.list(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let mut segs: Vec<Offset> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
    segs.sort_unstable();
    Ok((names, segs))
}

fn read_segment(disk: &dyn Disk, dir: &Path, first: Offset) -> Result<Vec<u8>, WalError> {
    Ok(disk
        .open(&dir.join(segment_name(first)), false)?
        .read_all()?)
}

fn damage(dir: &Path, first: Offset, s: &SegmentScan, problem: FrameError) -> WalDamage {
    WalDamage {
        file: dir.join(segment_name(first)),
        byte: s.valid_len as u64,
        record: Some(s.damaged_offset(first)),
        problem,
        intact_beyond: s.beyond,
    }
}

/// Checks the log in `dir` without changing it; stops at the first damage.
pub fn check_local_wal(disk: &dyn Disk, dir: &Path) -> Result<WalCheck, WalError> {
    let (names, segs) = segments_of(disk, dir)?;
    let mut out = WalCheck {
        first: segs.first().copied().unwrap_or(0),
        next: segs.first().copied().unwrap_or(0),
        segment_files: segs.len(),
        torn_tail_bytes: 0,
        damage: None,
    };
    if names.iter().any(|n| n == EPOCH_FILE) {
        let bytes = disk.open(&dir.join(EPOCH_FILE), false)?.read_all()?;
        if let Err(problem) = decode_epoch(&bytes) {
            out.damage = Some(WalDamage {
                file: dir.join(EPOCH_FILE),
                byte: 0,
                record: None,
                problem,
                intact_beyond: None,
            });
            return Ok(out);
        }
    }
    for (i, &first) in segs.iter().enumerate() {
        if i > 0 && first != out.next {
            let problem = FrameError::Gap {
                expected: out.next,
                found: first,
            };
            out.damage = Some(WalDamage {
                file: dir.join(segment_name(first)),
                byte: 0,
                record: Some(out.next),
                problem,
                intact_beyond: None,
            });
            return Ok(out);
        }
        let s = scan::scan(&read_segment(disk, dir, first)?, first);
        out.next = s.damaged_offset(first);
        if let Some(problem) = s.error.clone() {
            if i + 1 < segs.len() || s.beyond.is_some() {
                out.damage = Some(damage(dir, first, &s, problem));
                return Ok(out);
            }
            out.torn_tail_bytes = (s.len - s.valid_len) as u64;
        }
    }
    Ok(out)
}

/// Checks the log in `dir` as [`check_local_wal`] does, and also that it covers the
/// shard's flush checkpoint: replay starts there, so a log that ends before it or
/// starts after it has lost a file (see [`FrameError::Missing`]). A log that was never
/// written (no files) is fine only while the checkpoint is 0.
pub fn check_local_wal_from(
    disk: &dyn Disk,
    dir: &Path,
    checkpoint: Offset,
) -> Result<WalCheck, WalError> {
    let mut out = check_local_wal(disk, dir)?;
    if out.damage.is_none() {
        out.damage = checkpoint_gap(&out, dir, checkpoint);
    }
    Ok(out)
}

/// The damage of a log (checked as `check`) that does not hold record `checkpoint`.
fn checkpoint_gap(check: &WalCheck, dir: &Path, checkpoint: Offset) -> Option<WalDamage> {
    if check.first <= checkpoint && checkpoint <= check.next {
        return None;
    }
    Some(WalDamage {
        file: dir.to_path_buf(),
        byte: 0,
        record: Some(checkpoint),
        problem: FrameError::Missing {
            needed: checkpoint,
            first: check.first,
            next: check.next,
        },
        intact_beyond: (check.first > checkpoint && check.next > check.first)
            .then(|| (check.next - check.first, check.next - 1)),
    })
}

/// Repairs the log in `dir` so that it opens again, giving up as little as it can:
/// damage to records before `checkpoint` (already flushed into segments) costs
/// nothing; damage at or after it cuts the log there, losing every later record.
/// Returns `None` if the log was not damaged.
pub fn repair_local_wal(
    disk: &dyn Disk,
    dir: &Path,
    checkpoint: Offset,
) -> Result<Option<WalRepair>, WalError> {
    let mut done = WalRepair::default();
    // Each round removes the first damage; a log has finitely many files.
    for _ in 0..=segments_of(disk, dir)?.1.len() + 1 {
        let Some(d) = check_local_wal(disk, dir)?.damage else {
            break;
        };
        if d.record.is_none() {
            // The epoch file: on open the fence is at least the newest record's epoch,
            // and the next owner claims a newer one; nothing is lost.
            disk.remove(&d.file)?;
            done.removed_files.push(EPOCH_FILE.to_string());
        } else {
            repair_segment(disk, dir, checkpoint, &d, &mut done)?;
        }
        done.damage.push(d);
    }
    if let Some(d) = checkpoint_gap(&check_local_wal(disk, dir)?, dir, checkpoint) {
        rebase(disk, dir, checkpoint, &d, &mut done)?;
        done.damage.push(d);
    }
    Ok((!done.damage.is_empty()).then_some(done))
}

/// Re-bases a log that does not cover `checkpoint` (damage `d`) at it: every file goes
/// (their records are either flushed, or after a hole and cannot be replayed) and an
/// empty file starting at the checkpoint takes their place.
fn rebase(
    disk: &dyn Disk,
    dir: &Path,
    checkpoint: Offset,
    d: &WalDamage,
    done: &mut WalRepair,
) -> Result<(), WalError> {
    if let Some((_, last)) = d.intact_beyond {
        // Intact, but after the hole: replaying them would skip the missing ones.
        done.lost.push((checkpoint, last));
    }
    disk.create_dir_all(dir)?;
    for first in segments_of(disk, dir)?.1 {
        remove_segment(disk, dir, first, done)?;
    }
    write_segment(disk, dir, checkpoint, &[], done)?;
    done.rebased_at = Some(checkpoint);
    Ok(())
}

/// The largest offset readable in the segments starting at `segs`, past the damage.
fn last_known(disk: &dyn Disk, dir: &Path, segs: &[Offset], d: &WalDamage) -> Offset {
    let mut last = d.record.unwrap_or(0);
    if let Some((_, max)) = d.intact_beyond {
        last = last.max(max);
    }
    for &first in segs {
        if let Ok(data) = read_segment(disk, dir, first) {
            let s = scan::scan(&data, first);
            if let Some(r) = s.records.last() {
                last = last.max(r.offset);
            }
            if let Some((_, max)) = s.beyond {
                last = last.max(max);
            }
        }
    }
    last
}

fn remove_segment(
    disk: &dyn Disk,
    dir: &Path,
    first: Offset,
    done: &mut WalRepair,
) -> Result<(), WalError> {
    let name = segment_name(first);
    disk.remove(&dir.join(&name))?;
    done.removed_files.push(name);
    Ok(())
}

/// Repairs the first damage of a segment file (`d`): see [`repair_local_wal`].
fn repair_segment(
    disk: &dyn Disk,
    dir: &Path,
    checkpoint: Offset,
    d: &WalDamage,
    done: &mut WalRepair,
) -> Result<(), WalError> {
    let (_, segs) = segments_of(disk, dir)?;
    let at = d.record.unwrap_or(0);
    let gap = matches!(d.problem, FrameError::Gap { .. });
    let idx = segs
        .iter()
        .position(|&f| dir.join(segment_name(f)) == d.file)
        .unwrap_or(0);
    // A gap: the file named starts after the hole, nothing of it is before the damage.
    let (older, damaged, later) = if gap {
        (&segs[..idx], None, &segs[idx..])
    } else {
        (&segs[..idx], Some(segs[idx]), &segs[idx + 1..])
    };
    if at >= checkpoint {
        cut_at_damage(disk, dir, d, damaged, later, done)
    } else {
        skip_flushed_damage(disk, dir, checkpoint, d, (older, damaged, later), done)
    }
}

/// Damage at or after the checkpoint: the log ends at the damage. Later records cannot
/// be replayed across the hole and are given up (reported).
fn cut_at_damage(
    disk: &dyn Disk,
    dir: &Path,
    d: &WalDamage,
    damaged: Option<Offset>,
    later: &[Offset],
    done: &mut WalRepair,
) -> Result<(), WalError> {
    let at = d.record.unwrap_or(0);
    if let Some(f) = damaged {
        let mut file = disk.open(&dir.join(segment_name(f)), false)?;
        file.truncate(d.byte)?;
        file.sync()?;
        done.cut_files.push((segment_name(f), d.byte));
        // Bad bytes after a file's last record, with the next file intact: only them.
        if later.first() == Some(&at) && d.intact_beyond.is_none() {
            return Ok(());
        }
    }
    done.lost
        .push((at, last_known(disk, dir, later, d).max(at)));
    for &l in later {
        remove_segment(disk, dir, l, done)?;
    }
    Ok(())
}

/// Damage before the checkpoint: those records are flushed into segments and not
/// needed. The log is rebuilt to start at the checkpoint (or at a later file that
/// starts at or before it), keeping every record from the checkpoint on that is intact
/// and contiguous.
fn skip_flushed_damage(
    disk: &dyn Disk,
    dir: &Path,
    checkpoint: Offset,
    d: &WalDamage,
    (older, damaged, later): (&[Offset], Option<Offset>, &[Offset]),
    done: &mut WalRepair,
) -> Result<(), WalError> {
    let stale = older.iter().copied().chain(damaged);
    if later.first().is_some_and(|&l| l <= checkpoint) {
        for f in stale {
            remove_segment(disk, dir, f, done)?;
        }
        return Ok(());
    }
    let salvaged = match damaged {
        Some(f) => scan::salvage_from(&read_segment(disk, dir, f)?, d.byte as usize, checkpoint),
        None => Vec::new(),
    };
    write_segment(disk, dir, checkpoint, &salvaged, done)?;
    let end = checkpoint + salvaged.len() as u64;
    let last = last_known(disk, dir, later, d);
    if later.first().is_some_and(|&l| l != end)
        || (later.is_empty() && last >= end && d.intact_beyond.is_some())
    {
        done.lost.push((end, last.max(end)));
        for &l in later {
            remove_segment(disk, dir, l, done)?;
        }
    }
    for f in stale {
        remove_segment(disk, dir, f, done)?;
    }
    Ok(())
}

/// Writes `records` (contiguous from `first`) as a new segment file.
fn write_segment(
    disk: &dyn Disk,
    dir: &Path,
    first: Offset,
    records: &[WalRecord],
    done: &mut WalRepair,
) -> Result<(), WalError> {
    let mut buf = Vec::new();
    for r in records {
        record::encode(r.offset, r.epoch, &r.payload, &mut buf);
    }
    let name = segment_name(first);
    let mut file = disk.open(&dir.join(&name), true)?;
    file.truncate(0)?;
    file.append(&buf)?;
    file.sync()?;
    disk.sync_dir(dir)?;
    done.written_files.push(name);
    Ok(())
}
