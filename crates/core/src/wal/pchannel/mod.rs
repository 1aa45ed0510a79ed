//! pchannels: many vchannels on one log. A [`SharedLog`] is one pchannel's log (or,
//! for collections created before pchannels, one vchannel's own log); a
//! [`VchannelWal`] is one vchannel's view of it, behind the same [`Wal`] trait the
//! shard writes to.
//!
//! - **Records** carry their vchannel's name ([`envelope`]); a vchannel reads the log
//!   and keeps its own, so its offsets are the pchannel's and sparse: a shard's next
//!   record is *at or after* the last one it applied, never at exactly the next offset.
//! - **Time ticks** are records of the whole pchannel (see [`SharedLog::append_tick`]).
//! - **Truncation**: each vchannel records its flush checkpoint in the meta store
//!   (`walckpt/<log>/<vchannel>`), and the log drops only what lies below the smallest
//!   of them. A vchannel records its checkpoint when its shard opens, before its first
//!   append, and a vchannel that never checkpointed starts at the log's end (see
//!   [`Wal::fresh_checkpoint`]). A truncation computed before it recorded one may cut
//!   past that start, but only its neighbours' records: a vchannel with no recorded
//!   checkpoint has appended nothing, and its reads go on from the log's new start
//!   (see [`VchannelWal::read_from`]). A recorded checkpoint is never above the one
//!   committed in the vchannel's manifest, so whatever the log drops is flushed.

pub mod envelope;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::{Epoch, FrameError, Offset, Wal, WalError, WalRecord};
use crate::ids::VChannel;
use crate::meta::{MetaError, MetaStore};
use crate::segment::format::{self, ObjectKind};
use crate::tso::Timestamp;
use envelope::Entry;

/// Where vchannels record their checkpoints in the meta store.
pub const CHECKPOINT_PREFIX: &str = "walckpt/";

/// The meta key of `vchannel`'s checkpoint in `log`.
pub fn checkpoint_key(log: &str, vchannel: &str) -> String {
    format!("{CHECKPOINT_PREFIX}{log}/{vchannel}")
}

fn meta_error(e: MetaError) -> WalError {
    WalError::Io(std::io::Error::other(format!(
        "recording a WAL checkpoint: {e}"
    )))
}

/// The checkpoint each vchannel recorded in the log `log`.
pub async fn recorded_checkpoints(
    meta: &dyn MetaStore,
    log: &str,
) -> Result<Vec<(String, Offset)>, WalError> {
    let prefix = checkpoint_key(log, "");
    let mut out = Vec::new();
    for (k, v) in meta.range(&prefix).await.map_err(meta_error)? {
        let offset = format::decode::<Offset>(ObjectKind::WalCheckpoint, &v).map_err(|e| {
            WalError::Corrupt {
                location: k.clone(),
                source: FrameError::Envelope(format!("checkpoint record: {e}")),
            }
        })?;
        out.push((k[prefix.len()..].to_string(), offset));
    }
    Ok(out)
}

/// One log shared by the vchannels of a pchannel.
#[derive(Debug)]
pub struct SharedLog {
    name: String,
    log: Arc<dyn Wal>,
    meta: Arc<dyn MetaStore>,
    /// A log written before pchannels, for one vchannel only: its records carry no
    /// envelope, and it truncates at that vchannel's checkpoint directly.
    dedicated: bool,
}

impl SharedLog {
    /// The pchannel log `name`, whose vchannels record their checkpoints in `meta`.
    pub fn shared(name: &str, log: Arc<dyn Wal>, meta: Arc<dyn MetaStore>) -> Arc<Self> {
        Arc::new(SharedLog {
            name: name.to_string(),
            log,
            meta,
            dedicated: false,
        })
    }

    /// A vchannel's own log, as written before pchannels.
    pub fn dedicated(name: &str, log: Arc<dyn Wal>, meta: Arc<dyn MetaStore>) -> Arc<Self> {
        Arc::new(SharedLog {
            name: name.to_string(),
            log,
            meta,
            dedicated: true,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log itself.
    pub fn log(&self) -> &Arc<dyn Wal> {
        &self.log
    }

    /// `vchannel`'s view of the log.
    pub fn vchannel(self: &Arc<Self>, vchannel: &VChannel) -> VchannelWal {
        VchannelWal {
            shared: self.clone(),
            vchannel: vchannel.0.clone(),
        }
    }

    /// Appends a time tick at `ts` under `epoch`. Once it is durable, the holder of
    /// `epoch` held the log at some moment after `ts` was issued, so no newer owner
    /// can have written a mutation with a timestamp below `ts`.
    pub async fn append_tick(&self, epoch: Epoch, ts: Timestamp) -> Result<Offset, WalError> {
        self.log.append(epoch, envelope::encode_tick(ts)).await
    }

    /// The checkpoint each vchannel recorded in this log.
    pub async fn checkpoints(&self) -> Result<Vec<(String, Offset)>, WalError> {
        recorded_checkpoints(self.meta.as_ref(), &self.name).await
    }

    /// Records that `vchannel` needs nothing before `offset` (raising, never lowering,
    /// what it recorded before).
    async fn record(&self, vchannel: &str, offset: Offset) -> Result<(), WalError> {
        let key = checkpoint_key(&self.name, vchannel);
        for _ in 0..3 {
            let old = self.meta.get(&key).await.map_err(meta_error)?;
            let before = old
                .as_deref()
                .and_then(|b| format::decode::<Offset>(ObjectKind::WalCheckpoint, b).ok());
            if before.is_some_and(|b| b >= offset) {
                return Ok(());
            }
            let new = format::encode(ObjectKind::WalCheckpoint, &offset);
            if self
                .meta
                .compare_and_swap(&key, old.as_deref(), Some(new))
                .await
                .map_err(meta_error)?
            {
                return Ok(());
            }
        }
        Err(WalError::Io(std::io::Error::other(format!(
            "checkpoint {key} keeps changing under this writer"
        ))))
    }

    /// Drops what every vchannel of the log has checkpointed.
    async fn truncate_to_min(&self) -> Result<(), WalError> {
        let Some(min) = self.checkpoints().await?.iter().map(|(_, o)| *o).min() else {
            return Ok(());
        };
        self.log.truncate_before(min).await
    }

    /// Forgets a dropped vchannel's checkpoint, so it pins the log no longer.
    pub async fn forget(meta: &dyn MetaStore, log: &str, vchannel: &str) -> Result<(), MetaError> {
        meta.delete(&checkpoint_key(log, vchannel)).await
    }
}

/// One vchannel's view of a [`SharedLog`].
#[derive(Debug, Clone)]
pub struct VchannelWal {
    shared: Arc<SharedLog>,
    vchannel: String,
}

impl VchannelWal {
    /// Whether this vchannel has recorded a checkpoint in the log.
    async fn recorded(&self) -> Result<bool, WalError> {
        let key = checkpoint_key(&self.shared.name, &self.vchannel);
        Ok(self
            .shared
            .meta
            .get(&key)
            .await
            .map_err(meta_error)?
            .is_some())
    }

    /// `record` as a record of this vchannel, or `None` if it belongs to another one
    /// or is a tick.
    fn mine(&self, record: WalRecord) -> Result<Option<WalRecord>, WalError> {
        let corrupt = |source| WalError::Corrupt {
            location: format!("{} at offset {}", self.location(), record.offset),
            source,
        };
        match envelope::decode(&record.payload).map_err(corrupt)? {
            Entry::Data { vchannel, start } if vchannel == self.vchannel => Ok(Some(WalRecord {
                payload: record.payload.slice(start..),
                ..record
            })),
            Entry::Data { .. } | Entry::Tick(_) => Ok(None),
            Entry::Untagged if self.shared.dedicated => Ok(Some(record)),
            Entry::Untagged => Err(corrupt(FrameError::Envelope(
                "a record without a vchannel in a shared log".into(),
            ))),
        }
    }
}

#[async_trait]
impl Wal for VchannelWal {
    async fn fence(&self, epoch: Epoch) -> Result<(), WalError> {
        self.shared.log.fence(epoch).await
    }

    async fn append(&self, epoch: Epoch, payload: Bytes) -> Result<Offset, WalError> {
        let record = envelope::encode_data(&self.vchannel, &payload);
        self.shared.log.append(epoch, record).await
    }

    /// This vchannel's records from `from`, reading past other vchannels' records and
    /// ticks until `max` are found or the log ends.
    ///
    /// A shared log may have been truncated past `from` while this vchannel had not yet
    /// recorded a checkpoint: its manifest was claimed at the log's end, then a
    /// neighbour's truncation, computed without it, went further. It appends only once
    /// its checkpoint is recorded, so with none recorded nothing it needs was cut, and
    /// the read goes on from where the log now starts.
    async fn read_from(&self, from: Offset, max: usize) -> Result<Vec<WalRecord>, WalError> {
        let mut out = Vec::new();
        let mut at = from;
        while out.len() < max {
            let chunk = match self.shared.log.read_from(at, max.max(256)).await {
                Ok(chunk) => chunk,
                Err(WalError::Truncated { requested, first })
                    if first > at && !self.shared.dedicated && !self.recorded().await? =>
                {
                    tracing::info!(vchannel = %self.vchannel, requested, first, "reading on from the shared log's start (nothing of this vchannel was cut)");
                    at = first;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some(last) = chunk.last() else { break };
            at = last.offset + 1;
            for r in chunk {
                if let Some(r) = self.mine(r)? {
                    out.push(r);
                    if out.len() == max {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Records the checkpoint, then drops what every vchannel of the log checkpointed.
    async fn truncate_before(&self, offset: Offset) -> Result<(), WalError> {
        if self.shared.dedicated {
            return self.shared.log.truncate_before(offset).await;
        }
        self.shared.record(&self.vchannel, offset).await?;
        if crate::mutation::active("pchannel-own-checkpoint") {
            // Planted bug: the shared log dropped at this vchannel's checkpoint, though
            // its neighbours may still need what lies below it.
            return self.shared.log.truncate_before(offset).await;
        }
        self.shared.truncate_to_min().await
    }

    async fn pin(&self, checkpoint: Offset) -> Result<(), WalError> {
        if self.shared.dedicated {
            return Ok(());
        }
        self.shared.record(&self.vchannel, checkpoint).await
    }

    async fn fresh_checkpoint(&self) -> Result<Offset, WalError> {
        if self.shared.dedicated {
            return Ok(0);
        }
        let end = self.shared.log.next_offset().await;
        self.shared.log.sync().await?;
        Ok(end)
    }

    async fn next_offset(&self) -> Offset {
        self.shared.log.next_offset().await
    }

    async fn first_offset(&self) -> Offset {
        self.shared.log.first_offset().await
    }

    async fn epoch(&self) -> Epoch {
        self.shared.log.epoch().await
    }

    async fn sync(&self) -> Result<(), WalError> {
        self.shared.log.sync().await
    }

    fn location(&self) -> String {
        format!(
            "{} (vchannel {} of {})",
            self.shared.log.location(),
            self.vchannel,
            self.shared.name
        )
    }
}

#[cfg(test)]
mod tests;
