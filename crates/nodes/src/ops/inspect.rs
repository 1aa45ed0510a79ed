//! `quiver inspect`: checks every shard of every collection — its WAL (every frame's
//! checksum, offsets without gaps), its manifest, and every segment object the
//! manifest names (present and decodable) — and reports what is damaged and where.

use std::fmt;

use quiver_core::shard::check::{self as shard_check, SegmentDamage};
use quiver_core::shard::{Manifest, ShardError};
use quiver_core::wal::object::check_object_wal;
use quiver_core::wal::pchannel::recorded_checkpoints;
use quiver_core::wal::{check_local_wal, check_local_wal_from, WalCheck};

use super::{DataDir, OpsError};
use crate::coordinator::{CollectionInfo, ShardLog};
use crate::streaming::OBJECT_WAL_ROOT;

/// What the manifest of a shard is.
#[derive(Debug)]
pub enum ManifestState {
    /// The shard never flushed.
    None,
    Ok(Manifest),
    Damaged(String),
}

/// One shard's checks.
#[derive(Debug)]
pub struct ShardReport {
    pub shard: u32,
    pub vchannel: String,
    /// The log the shard writes to (its pchannel's, or its own from before pchannels).
    pub log: String,
    /// The lowest checkpoint any vchannel recorded in a shared log: what a repair of
    /// the log must keep (`None` for a shard's own log).
    pub log_floor: Option<u64>,
    /// The other vchannels with a checkpoint in the same shared log: a repair that
    /// cuts the log would cost them their unflushed records too.
    pub log_sharers: Vec<String>,
    pub wal: WalCheck,
    pub manifest: ManifestState,
    pub damaged_segments: Vec<SegmentDamage>,
}

impl ShardReport {
    pub fn is_damaged(&self) -> bool {
        self.wal.damage.is_some()
            || matches!(self.manifest, ManifestState::Damaged(_))
            || !self.damaged_segments.is_empty()
    }

    /// The manifest's flush checkpoint (WAL records before it are in segments).
    pub fn checkpoint(&self) -> Option<u64> {
        checkpoint_of(&self.manifest)
    }
}

/// The flush checkpoint of a manifest (unknown if it is damaged).
fn checkpoint_of(manifest: &ManifestState) -> Option<u64> {
    match manifest {
        ManifestState::Ok(m) => Some(m.checkpoint),
        ManifestState::None => Some(0),
        ManifestState::Damaged(_) => None,
    }
}

/// One collection's checks.
#[derive(Debug)]
pub struct CollectionReport {
    pub info: CollectionInfo,
    pub shards: Vec<ShardReport>,
}

impl CollectionReport {
    pub fn is_damaged(&self) -> bool {
        self.shards.iter().any(ShardReport::is_damaged)
    }
}

/// Everything `quiver inspect` found.
#[derive(Debug)]
pub struct Inspection {
    pub data_dir: String,
    pub collections: Vec<CollectionReport>,
}

impl Inspection {
    pub fn is_damaged(&self) -> bool {
        self.collections.iter().any(CollectionReport::is_damaged)
    }
}

/// Checks every collection of the data directory.
pub async fn inspect(dir: &DataDir) -> Result<Inspection, OpsError> {
    let mut collections = Vec::new();
    for info in dir.collections().await? {
        collections.push(inspect_collection(dir, info).await?);
    }
    Ok(Inspection {
        data_dir: dir.path.display().to_string(),
        collections,
    })
}

/// Checks every shard of one collection. A transient store error fails the check
/// (it is not damage).
pub(super) async fn inspect_collection(
    dir: &DataDir,
    info: CollectionInfo,
) -> Result<CollectionReport, OpsError> {
    let mut shards = Vec::new();
    for (i, vchannel) in info.vchannels().iter().enumerate() {
        let (manifest, damaged_segments) =
            match shard_check::read_manifest(&*dir.meta, info.id, vchannel).await {
                Ok(None) => (ManifestState::None, Vec::new()),
                Ok(Some((m, _))) => {
                    let damaged = shard_check::check_segments(&dir.store, &info.schema, &m)
                        .await
                        .map_err(|e| transient(&vchannel.0, e))?;
                    (ManifestState::Ok(m), damaged)
                }
                Err(e) if e.is_damage() => (ManifestState::Damaged(e.to_string()), Vec::new()),
                Err(e) => return Err(transient(&vchannel.0, e)),
            };
        // The shard's log: its pchannel's (shared), or its own from before pchannels.
        let ShardLog {
            name: log,
            dedicated,
        } = info.log_of(i as u32);
        let wal_dir = dir.wal_dir(&log);
        let shared = SharedView::read(dir, &log, dedicated, &vchannel.0).await?;
        // Replay starts at the checkpoint: the log must hold it (unknown while the
        // manifest is damaged, and then the log is checked on its own; a vchannel that
        // never recorded a checkpoint in a shared log has appended nothing to it and
        // needs nothing of it, see `VchannelWal::read_from`).
        let checkpoint = checkpoint_of(&manifest).filter(|_| dedicated || shared.recorded);
        let wal = if dir.uses_object_wal() {
            let prefix = object_store::path::Path::from(OBJECT_WAL_ROOT).join(log.as_str());
            check_object_wal(dir.store.clone(), prefix, checkpoint).await
        } else {
            match checkpoint {
                Some(c) => check_local_wal_from(&*dir.disk, &wal_dir, c),
                None => check_local_wal(&*dir.disk, &wal_dir),
            }
        }
        .map_err(|e| OpsError::Failed(format!("checking the WAL of {vchannel}: {e}")))?;
        shards.push(ShardReport {
            shard: i as u32,
            vchannel: vchannel.0.clone(),
            log,
            log_floor: shared.floor,
            log_sharers: shared.sharers,
            wal,
            manifest,
            damaged_segments,
        });
    }
    Ok(CollectionReport { info, shards })
}

/// What the checkpoints recorded in a shared log say about one of its vchannels.
#[derive(Default)]
struct SharedView {
    /// Whether the vchannel recorded one.
    recorded: bool,
    /// The lowest any vchannel recorded.
    floor: Option<u64>,
    /// The other vchannels that recorded one.
    sharers: Vec<String>,
}

impl SharedView {
    async fn read(
        dir: &DataDir,
        log: &str,
        dedicated: bool,
        vchannel: &str,
    ) -> Result<Self, OpsError> {
        if dedicated {
            return Ok(SharedView::default());
        }
        let recorded = recorded_checkpoints(&*dir.meta, log)
            .await
            .map_err(|e| OpsError::Failed(format!("reading the checkpoints of {log}: {e}")))?;
        Ok(SharedView {
            recorded: recorded.iter().any(|(v, _)| v == vchannel),
            floor: recorded.iter().map(|(_, c)| *c).min(),
            sharers: recorded
                .into_iter()
                .map(|(v, _)| v)
                .filter(|v| v != vchannel)
                .collect(),
        })
    }
}

fn transient(vchannel: &str, e: ShardError) -> OpsError {
    OpsError::Failed(format!(
        "checking shard {vchannel} failed (not damage; try again): {e}"
    ))
}

impl fmt::Display for ShardReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  shard {} ({}, log {}):",
            self.shard, self.vchannel, self.log
        )?;
        let w = &self.wal;
        match &w.damage {
            None => writeln!(
                f,
                "    WAL ok: records {}..{} in {} file(s) or block(s){}",
                w.first,
                w.next,
                w.segment_files,
                if w.torn_tail_bytes > 0 {
                    format!(
                        " (a torn tail of {} bytes is cut on the next start: an unfinished \
                         last write, unless the file was cut short after the fact, and then \
                         records in it may have been acknowledged)",
                        w.torn_tail_bytes
                    )
                } else {
                    String::new()
                }
            )?,
            Some(d) => writeln!(f, "    WAL DAMAGED: {d}")?,
        }
        match &self.manifest {
            ManifestState::None => writeln!(f, "    manifest: none (never flushed)")?,
            ManifestState::Ok(m) => writeln!(
                f,
                "    manifest ok: checkpoint {}, {} segment(s), {} rows",
                m.checkpoint,
                m.segments.len(),
                m.segments.iter().map(|s| s.num_rows).sum::<u64>()
            )?,
            ManifestState::Damaged(e) => writeln!(f, "    manifest DAMAGED: {e}")?,
        }
        for s in &self.damaged_segments {
            writeln!(
                f,
                "    segment {} ({} rows) DAMAGED: {}",
                s.segment, s.rows, s.error
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for CollectionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "collection {} (database {}, id {}, {} shard(s)): {}",
            self.info.name(),
            self.info.db,
            self.info.id,
            self.info.shards,
            if self.is_damaged() { "DAMAGED" } else { "ok" }
        )?;
        for s in &self.shards {
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "data directory {}: meta store ok", self.data_dir)?;
        for c in &self.collections {
            write!(f, "{c}")?;
        }
        let damaged: Vec<&str> = self
            .collections
            .iter()
            .filter(|c| c.is_damaged())
            .map(|c| c.info.name())
            .collect();
        if damaged.is_empty() {
            writeln!(
                f,
                "no damage found in {} collection(s)",
                self.collections.len()
            )
        } else {
            writeln!(
                f,
                "DAMAGED: {} of {} collection(s): {}. See `quiver repair --help`; \
                 `quiver repair --data-dir {} --collection NAME` shows what a repair would give up.",
                damaged.len(),
                self.collections.len(),
                damaged.join(", "),
                self.data_dir
            )
        }
    }
}
