//! What a record of a pchannel log carries: one vchannel's message, tagged with the
//! vchannel's name, or a time tick that belongs to every vchannel of the pchannel.
//!
//! ```text
//! magic    u8      0xC5 (a shard message starts with its version byte, 1: an untagged
//!                  record of a log written before pchannels is told apart by it)
//! version  u8      1
//! kind     u8      1 data, 2 tick
//! data:    u16 LE  length of the vchannel name, the name (UTF-8), then the message
//! tick:    u64 LE  the tick's timestamp (nothing follows)
//! ```
//!
//! The record frame around it carries the checksum.

use bytes::Bytes;

use crate::tso::Timestamp;
use crate::wal::FrameError;

pub const ENVELOPE_MAGIC: u8 = 0xC5;
pub const ENVELOPE_VERSION: u8 = 1;
const KIND_DATA: u8 = 1;
const KIND_TICK: u8 = 2;
const HEADER: usize = 3;

/// A decoded record of a pchannel log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A message of `vchannel`: the payload is `record[start..]`.
    Data { vchannel: String, start: usize },
    /// A time tick of the whole pchannel.
    Tick(Timestamp),
    /// A record without an envelope: a log written before pchannels, whose records all
    /// belong to its one vchannel.
    Untagged,
}

/// A message of `vchannel` in its envelope.
pub fn encode_data(vchannel: &str, payload: &[u8]) -> Bytes {
    let name = vchannel.as_bytes();
    assert!(name.len() <= u16::MAX as usize, "vchannel name too long");
    let mut out = Vec::with_capacity(HEADER + 2 + name.len() + payload.len());
    out.extend_from_slice(&[ENVELOPE_MAGIC, ENVELOPE_VERSION, KIND_DATA]);
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// A time tick at `ts`.
pub fn encode_tick(ts: Timestamp) -> Bytes {
    let mut out = Vec::with_capacity(HEADER + 8);
    out.extend_from_slice(&[ENVELOPE_MAGIC, ENVELOPE_VERSION, KIND_TICK]);
    out.extend_from_slice(&ts.0.to_le_bytes());
    Bytes::from(out)
}

fn bad(why: impl Into<String>) -> FrameError {
    FrameError::Envelope(why.into())
}

/// Decodes a record's payload. Refuses an unknown version or kind, a name that is not
/// UTF-8 or runs past the record, and a tick of the wrong length.
pub fn decode(record: &[u8]) -> Result<Entry, FrameError> {
    if record.first() != Some(&ENVELOPE_MAGIC) {
        return Ok(Entry::Untagged);
    }
    if record.len() < HEADER {
        return Err(bad(format!(
            "{} bytes, shorter than the header",
            record.len()
        )));
    }
    if record[1] != ENVELOPE_VERSION {
        return Err(bad(format!(
            "version {} (this build reads {ENVELOPE_VERSION})",
            record[1]
        )));
    }
    let body = &record[HEADER..];
    match record[2] {
        KIND_DATA => {
            let len = match body {
                [a, b, ..] => u16::from_le_bytes([*a, *b]) as usize,
                _ => return Err(bad("data record without a name length")),
            };
            let name = body
                .get(2..2 + len)
                .ok_or_else(|| bad(format!("vchannel name of {len} bytes runs past the record")))?;
            let vchannel = std::str::from_utf8(name)
                .map_err(|_| bad("vchannel name is not UTF-8"))?
                .to_string();
            Ok(Entry::Data {
                vchannel,
                start: HEADER + 2 + len,
            })
        }
        KIND_TICK => {
            let ts: [u8; 8] = body
                .try_into()
                .map_err(|_| bad(format!("tick of {} bytes, not 8", body.len())))?;
            Ok(Entry::Tick(Timestamp(u64::from_le_bytes(ts))))
        }
        k => Err(bad(format!("unknown kind {k}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn data_roundtrips(name in "[a-z0-9_-]{0,40}", payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let rec = encode_data(&name, &payload);
            let Entry::Data { vchannel, start } = decode(&rec).unwrap() else { panic!("not data") };
            prop_assert_eq!(vchannel, name);
            prop_assert_eq!(&rec[start..], &payload[..]);
        }

        #[test]
        fn ticks_roundtrip(ts in any::<u64>()) {
            prop_assert_eq!(decode(&encode_tick(Timestamp(ts))).unwrap(), Entry::Tick(Timestamp(ts)));
        }

        /// Arbitrary bytes decode or are refused; they never panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn a_shard_message_is_untagged_and_damage_is_refused() {
        let msg = crate::message::encode(&crate::message::WalMessage::Delete {
            ts: Timestamp(1),
            pks: vec![],
        });
        assert_eq!(decode(&msg).unwrap(), Entry::Untagged);
        let mut tick = encode_tick(Timestamp(5)).to_vec();
        tick.push(0);
        assert!(decode(&tick).is_err());
        assert!(decode(&[ENVELOPE_MAGIC, 2, KIND_TICK]).is_err());
        assert!(decode(&[ENVELOPE_MAGIC, 1, 9]).is_err());
        assert!(decode(&[ENVELOPE_MAGIC, 1, KIND_DATA, 200, 0, b'a']).is_err());
    }
}
