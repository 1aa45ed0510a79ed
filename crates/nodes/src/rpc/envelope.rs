//! The frame every internal RPC body travels in: a version, a CRC-32 and a postcard
//! body. A reader refuses a version it does not speak and a body that fails its
//! checksum, so roles of different builds fail loudly instead of misreading each other.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{code, ApiError, ApiResult, ErrorKind};
use crate::pb::internal::Envelope;

/// 3: one request enum variant per operation, typed replies, error kinds.
/// 4: a read's scope carries its deadline (as the time left).
pub const WIRE_VERSION: u32 = 4;

/// The largest message any internal or public gRPC service sends or accepts.
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;

pub fn seal<T: Serialize>(v: &T) -> Envelope {
    let body = postcard::to_allocvec(v).expect("in-memory serialization cannot fail");
    Envelope {
        version: WIRE_VERSION,
        crc: crc32fast::hash(&body),
        body,
    }
}

pub fn open<T: DeserializeOwned>(e: &Envelope) -> ApiResult<T> {
    if e.version != WIRE_VERSION {
        return Err(ApiError::new(
            code::UNEXPECTED,
            format!(
                "internal RPC version {} not understood (this build speaks {WIRE_VERSION})",
                e.version
            ),
        ));
    }
    if crc32fast::hash(&e.body) != e.crc {
        return Err(ApiError::new(
            code::UNEXPECTED,
            "internal RPC checksum mismatch",
        ));
    }
    postcard::from_bytes(&e.body)
        .map_err(|err| ApiError::new(code::UNEXPECTED, format!("undecodable internal RPC: {err}")))
}

/// An error crossing the wire, with its kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireError {
    pub code: i32,
    pub kind: ErrorKind,
    pub reason: String,
}

impl From<ApiError> for WireError {
    fn from(e: ApiError) -> Self {
        WireError {
            code: e.code,
            kind: e.kind,
            reason: e.reason,
        }
    }
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        ApiError::with_kind(e.code, e.kind, e.reason)
    }
}

pub type WireResult<T> = Result<T, WireError>;

/// Room for the envelope's own fields and gRPC's framing around a body.
const ENVELOPE_OVERHEAD: usize = 64;

/// Seals an operation's result as its reply. A reply too large to send is replaced by
/// the error saying so: sent as it is, the transport would refuse to encode it and the
/// caller would only see the node fail.
pub fn seal_result<T: Serialize>(r: ApiResult<T>) -> Envelope {
    let e = seal(&r.map_err(WireError::from));
    let bytes = e.body.len() + ENVELOPE_OVERHEAD;
    if bytes <= MAX_MESSAGE_BYTES {
        return e;
    }
    let refused = seal::<WireResult<()>>(&Err(result_too_large(bytes, MAX_MESSAGE_BYTES).into()));
    quiver_core::invariant_cheap!(refused.body.len() < 4096, "a refusal is small");
    refused
}

/// A result of about `bytes` bytes cannot be sent under the message limit `limit`
/// (Milvus refuses such a result with "search results exceed the maxOutputSize
/// Limit", code 65535). Sending the request again fails again, so it is the caller's
/// to change.
pub fn result_too_large(bytes: usize, limit: usize) -> ApiError {
    ApiError::with_kind(
        code::UNEXPECTED,
        ErrorKind::InvalidInput,
        format!(
            "results exceed the maxOutputSize limit: the result is about {bytes} bytes, the limit is {limit} bytes; ask for fewer rows (a lower limit, fewer query vectors) or fewer or smaller output fields"
        ),
    )
}

/// Opens a reply sealed by [`seal_result`].
pub fn open_result<T: DeserializeOwned>(e: &Envelope) -> ApiResult<T> {
    open::<WireResult<T>>(e)?.map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_roundtrip_and_refuse_damage() {
        let e = seal(&(3u32, "x".to_string()));
        assert_eq!(open::<(u32, String)>(&e).unwrap(), (3, "x".to_string()));
        let mut bad = e.clone();
        bad.body[0] ^= 1;
        assert!(open::<(u32, String)>(&bad).is_err());
        let mut newer = e;
        newer.version = WIRE_VERSION + 1;
        assert!(open::<(u32, String)>(&newer)
            .unwrap_err()
            .reason
            .contains(&format!("version {}", WIRE_VERSION + 1)));
    }

    #[test]
    fn errors_keep_code_and_kind_across_the_wire() {
        let sent: ApiResult<u8> = Err(ApiError::with_kind(
            code::UNEXPECTED,
            ErrorKind::NeedsReopen,
            "WAL failure: disk",
        ));
        let got = open_result::<u8>(&seal_result(sent)).unwrap_err();
        assert_eq!(
            (got.code, got.kind),
            (code::UNEXPECTED, ErrorKind::NeedsReopen)
        );
        assert_eq!(open_result::<u8>(&seal_result(Ok(7u8))).unwrap(), 7);
    }

    #[test]
    fn a_reply_over_the_message_limit_becomes_a_clear_refusal() {
        let small: ApiResult<Vec<u8>> = Ok(vec![7; 1000]);
        assert_eq!(
            open_result::<Vec<u8>>(&seal_result(small)).unwrap().len(),
            1000
        );
        let huge: ApiResult<Vec<u8>> = Ok(vec![7; MAX_MESSAGE_BYTES]);
        let e = open_result::<Vec<u8>>(&seal_result(huge)).unwrap_err();
        assert_eq!(e.code, code::UNEXPECTED);
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert!(
            e.reason.contains("exceed the maxOutputSize limit"),
            "{}",
            e.reason
        );
        assert!(e
            .reason
            .contains(&format!("the limit is {MAX_MESSAGE_BYTES} bytes")));
        assert!(e.reason.contains("fewer rows"), "{}", e.reason);
    }
}
