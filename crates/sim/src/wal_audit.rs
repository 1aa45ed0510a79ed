//! The object-storage WALs, read back after a run: what the store holds must be a log
//! that only one owner at a time wrote.
//!
//! Each log's live part (the consecutive run of block numbers ending at its last
//! block; below it only what truncation left, see `quiver_core::wal::object`) must
//! decode and checksum block by block, each block starting where the one before it
//! ended, under epochs that never go back: a block under an older epoch after a newer
//! one means a writer that had been fenced out was still accepted.

use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use quiver_core::wal::object::decode_block;

/// Every violation found in the logs under `root`.
pub async fn audit(store: &dyn ObjectStore, root: &str) -> Vec<String> {
    let mut blocks: std::collections::BTreeMap<String, Vec<(u64, Path)>> = Default::default();
    let mut listing = store.list(Some(&Path::from(root)));
    while let Some(meta) = listing.next().await {
        let Ok(meta) = meta else {
            return vec!["WAL audit: listing failed".into()];
        };
        let parts: Vec<String> = meta
            .location
            .parts()
            .map(|p| p.as_ref().to_string())
            .collect();
        let (Some(log), Some(seq)) = (parts.get(1), parts.last().and_then(|n| n.parse().ok()))
        else {
            return vec![format!("WAL audit: {} is not a block", meta.location)];
        };
        blocks
            .entry(log.to_string())
            .or_default()
            .push((seq, meta.location));
    }
    let mut out = Vec::new();
    for (log, mut seqs) in blocks {
        seqs.sort();
        if let Err(v) = audit_log(store, &log, &seqs).await {
            out.push(v);
        }
    }
    out
}

async fn audit_log(store: &dyn ObjectStore, log: &str, seqs: &[(u64, Path)]) -> Result<(), String> {
    let mut decoded = Vec::new();
    for (seq, path) in seqs {
        let got = match store.get(path).await {
            Ok(g) => g.bytes().await,
            // Truncated since the listing (the flush loops still run).
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => Err(e),
        };
        let bytes = got.map_err(|e| format!("WAL {log}: block {seq} unreadable: {e}"))?;
        let (h, _) = decode_block(&bytes).map_err(|e| format!("WAL {log}: block {seq}: {e}"))?;
        decoded.push((*seq, h));
    }
    // The live log: the consecutive run ending at the last block (see
    // `quiver_core::wal::object`); below it only truncation's leftovers.
    let live = (1..decoded.len())
        .rev()
        .find(|&i| decoded[i - 1].0 + 1 != decoded[i].0)
        .unwrap_or(0);
    for w in decoded[live..].windows(2) {
        let ((a, ha), (b, hb)) = (&w[0], &w[1]);
        if hb.first_offset != ha.end_offset() {
            return Err(format!(
                "WAL {log}: block {b} starts at record {} but block {a} ends at {}",
                hb.first_offset,
                ha.end_offset()
            ));
        }
        if hb.epoch < ha.epoch {
            return Err(format!(
                "WAL {log}: block {b} was accepted under epoch {} after block {a} under epoch {}",
                hb.epoch.0, ha.epoch.0
            ));
        }
    }
    Ok(())
}
