//! `quiver repair`: for one collection, reports what is damaged and what each repair
//! would give up, and only with an explicit flag does it: `--truncate-wal` rebuilds a
//! damaged WAL (damage before the flush checkpoint costs nothing; damage after it cuts
//! the log there and every later record is lost), `--drop-damaged-segments` removes
//! segments with missing or damaged objects from the manifest (their rows are lost). A
//! damaged manifest cannot be repaired here: restore `meta.redb` from a backup, or drop
//! the collection.

use std::fmt::Write as _;

use quiver_core::shard::check as shard_check;
use quiver_core::wal::{repair_local_wal, FrameError};

use super::inspect::{inspect_collection, ManifestState, ShardReport};
use super::{DataDir, OpsError};
use crate::coordinator::CollectionInfo;

/// Which repairs to carry out (none: only report).
#[derive(Debug, Clone, Copy, Default)]
pub struct RepairOptions {
    pub truncate_wal: bool,
    pub drop_damaged_segments: bool,
}

/// What a repair did (or, without flags, would do).
#[derive(Debug, Default)]
pub struct RepairReport {
    /// The lines to show the operator.
    pub text: String,
    /// Whether damage is left (not repaired, or not repairable).
    pub damage_left: bool,
}

/// Repairs collection `name` of database `db` as `opts` allow.
pub async fn repair(
    dir: &DataDir,
    db: &str,
    name: &str,
    opts: RepairOptions,
) -> Result<RepairReport, OpsError> {
    let info = find(dir, db, name).await?;
    let report = inspect_collection(dir, info).await?;
    let mut out = RepairReport::default();
    let _ = writeln!(out.text, "{report}");
    if !report.is_damaged() {
        let _ = writeln!(out.text, "nothing to repair in collection {name}");
        return Ok(out);
    }
    for shard in &report.shards {
        repair_wal(dir, shard, opts, &mut out)?;
        repair_segments(dir, &report.info, shard, opts, &mut out).await?;
        if let ManifestState::Damaged(e) = &shard.manifest {
            out.damage_left = true;
            let _ = writeln!(
                out.text,
                "shard {}: the manifest is damaged ({e}); it cannot be repaired here: \
                 restore meta.redb from a backup, or drop the collection",
                shard.shard
            );
        }
    }
    if out.damage_left && !(opts.truncate_wal || opts.drop_damaged_segments) {
        let _ = writeln!(
            out.text,
            "nothing was changed: pass the flag of a repair above to carry it out"
        );
    }
    Ok(out)
}

async fn find(dir: &DataDir, db: &str, name: &str) -> Result<CollectionInfo, OpsError> {
    dir.collections()
        .await?
        .into_iter()
        .find(|c| c.db == db && c.name() == name)
        .ok_or_else(|| OpsError::Failed(format!("no collection {name} in database {db}")))
}

/// Why `--truncate-wal` cannot mend the shard's log here, if it cannot.
fn not_offered(dir: &DataDir, shard: &ShardReport) -> Option<String> {
    if shard.checkpoint().is_none() {
        return Some(
            "the WAL cannot be repaired while the manifest is damaged (its checkpoint is \
             unknown)"
                .into(),
        );
    }
    if dir.uses_object_wal() {
        return Some(
            "its WAL is an object-storage log; `--truncate-wal` repairs only local WAL \
             files. Restore the named block from a backup of the object store, or drop the \
             collection"
                .into(),
        );
    }
    if !shard.log_sharers.is_empty() {
        return Some(format!(
            "its WAL {} is shared with {} other shard(s) ({}); `--truncate-wal` would cut \
             their unflushed writes too, so it is not offered: drop the collections of \
             those shards, or restore the log from a backup",
            shard.log,
            shard.log_sharers.len(),
            shard.log_sharers.join(", ")
        ));
    }
    None
}

fn repair_wal(
    dir: &DataDir,
    shard: &ShardReport,
    opts: RepairOptions,
    out: &mut RepairReport,
) -> Result<(), OpsError> {
    let Some(d) = &shard.wal.damage else {
        return Ok(());
    };
    let s = shard.shard;
    let checkpoint = match not_offered(dir, shard) {
        Some(why) => {
            out.damage_left = true;
            let _ = writeln!(out.text, "shard {s}: {why}");
            return Ok(());
        }
        // A shared log keeps what every vchannel on it still needs.
        None => shard
            .checkpoint()
            .map(|c| shard.log_floor.map_or(c, |f| f.min(c)))
            .unwrap_or_default(),
    };
    if !opts.truncate_wal {
        out.damage_left = true;
        let at = d.record.unwrap_or(0);
        let cost = if matches!(d.problem, FrameError::Missing { .. }) {
            format!(
                "re-bases the log at the flush checkpoint {checkpoint}: the records after it \
                 that were in the missing WAL file(s) are lost (how many is unknown)"
            )
        } else if d.record.is_none() || at < checkpoint {
            "loses nothing (the damage is before the flush checkpoint; those records are in segments)".to_string()
        } else {
            format!("loses every record from {at} on (the log is cut at the damage)")
        };
        let _ = writeln!(out.text, "shard {s}: `--truncate-wal` {cost}");
        return Ok(());
    }
    let wal_dir = dir.wal_dir(&shard.log);
    let done = repair_local_wal(&*dir.disk, &wal_dir, checkpoint)
        .map_err(|e| OpsError::Failed(format!("repairing the WAL {}: {e}", shard.log)))?;
    let Some(done) = done else {
        return Ok(());
    };
    let _ = writeln!(out.text, "shard {s}: WAL repaired in {}", wal_dir.display());
    for (from, to) in &done.lost {
        let _ = writeln!(
            out.text,
            "  LOST: WAL records {from}..={to} (acknowledged writes after the damage; \
             record {from} itself was unreadable)"
        );
    }
    if let Some(at) = done.rebased_at {
        let _ = writeln!(
            out.text,
            "  LOST: every WAL record from {at} on that was in the missing file(s) \
             (acknowledged writes after the flush checkpoint; how many is unknown); the \
             log now starts at record {at}"
        );
    }
    if done.lost.is_empty() && done.rebased_at.is_none() {
        let _ = writeln!(
            out.text,
            "  nothing lost (the damaged records were already flushed into segments)"
        );
    }
    for (name, len) in &done.cut_files {
        let _ = writeln!(out.text, "  cut {name} at byte {len}");
    }
    for (what, names) in [
        ("removed", &done.removed_files),
        ("written", &done.written_files),
    ] {
        if !names.is_empty() {
            let _ = writeln!(out.text, "  {what}: {}", names.join(", "));
        }
    }
    Ok(())
}

async fn repair_segments(
    dir: &DataDir,
    info: &CollectionInfo,
    shard: &ShardReport,
    opts: RepairOptions,
    out: &mut RepairReport,
) -> Result<(), OpsError> {
    if shard.damaged_segments.is_empty() {
        return Ok(());
    }
    let s = shard.shard;
    let rows: u64 = shard.damaged_segments.iter().map(|d| d.rows).sum();
    let ids: Vec<_> = shard.damaged_segments.iter().map(|d| d.segment).collect();
    let shown = ids
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if !opts.drop_damaged_segments {
        out.damage_left = true;
        let _ = writeln!(
            out.text,
            "shard {s}: `--drop-damaged-segments` loses segment(s) {shown} ({rows} rows)"
        );
        return Ok(());
    }
    let vchannel = &info.vchannels()[s as usize];
    let failed = |e: &dyn std::fmt::Display| {
        OpsError::Failed(format!("rewriting the manifest of {vchannel}: {e}"))
    };
    let (manifest, raw) = shard_check::read_manifest(&*dir.meta, info.id, vchannel)
        .await
        .map_err(|e| failed(&e))?
        .ok_or_else(|| failed(&"it is gone"))?;
    shard_check::drop_segments(&*dir.meta, info.id, vchannel, (&manifest, &raw), &ids)
        .await
        .map_err(|e| failed(&e))?;
    let _ = writeln!(
        out.text,
        "shard {s}: dropped damaged segment(s) {shown} from the manifest"
    );
    let _ = writeln!(
        out.text,
        "  LOST: {rows} rows (every row of those segments)"
    );
    Ok(())
}
