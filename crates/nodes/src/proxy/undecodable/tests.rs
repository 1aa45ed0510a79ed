use super::*;
use crate::error::code;
use crate::pb::common::Status;
use crate::pb::milvus::{DescribeIndexResponse, MutationResult};

#[test]
fn bare_status_rpcs_are_read_from_the_proto() {
    let rpcs = bare_status_rpcs();
    assert!(rpcs.contains("CreateCollection"));
    assert!(rpcs.contains("CreateIndex"));
    assert!(!rpcs.contains("Insert"));
    assert!(!rpcs.contains("Search"));
}

/// The wrapper encodes every other response as "field 1 is the status": true of every
/// response message the proto declares.
#[test]
fn status_is_field_one_of_every_other_response() {
    for line in MILVUS_PROTO.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("rpc ") else {
            continue;
        };
        let resp = rest
            .split("returns (")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .expect("rpc line names its response");
        if resp == "common.Status" {
            continue;
        }
        let decl = format!("message {resp} {{");
        let body = MILVUS_PROTO
            .split(&decl)
            .nth(1)
            .and_then(|b| b.split('}').next())
            .unwrap_or_else(|| panic!("{resp} is declared"));
        assert!(
            body.contains("common.Status status = 1;"),
            "{resp}: status is not field 1"
        );
    }
}

#[test]
fn responses_decode_as_their_rpc_type_with_the_status() {
    let err = undecodable("invalid string value: data is not UTF-8 encoded");
    let bare: Status = prost::Message::decode(&response_bytes("CreateIndex", &err)[..]).unwrap();
    assert_eq!(bare.code, code::INVALID_PARAMETER);
    assert!(bare.reason.contains("UTF-8"));
    let m: MutationResult = prost::Message::decode(&response_bytes("Insert", &err)[..]).unwrap();
    assert_eq!(m.status.unwrap().code, code::INVALID_PARAMETER);
    let d: DescribeIndexResponse =
        prost::Message::decode(&response_bytes("DescribeIndex", &err)[..]).unwrap();
    assert_eq!(d.status.unwrap().error_code, 5);
}

#[test]
fn only_decode_failures_are_replaced() {
    let undecodable = tonic::Status::internal("failed to decode Protobuf message: x");
    let resp = undecodable.into_http::<Body>();
    assert!(decode_failure(&resp).is_some());
    let other = tonic::Status::internal("something else").into_http::<Body>();
    assert!(decode_failure(&other).is_none());
    let ok = status_response(b"");
    assert!(decode_failure(&ok).is_none());
}

#[test]
fn only_a_string_error_is_blamed_on_utf8() {
    let utf8 = undecodable("invalid string value: data is not UTF-8 encoded");
    assert!(utf8.reason.contains("every string must be valid UTF-8"));
    let varint = undecodable("invalid varint");
    assert!(!varint.reason.contains("UTF-8"), "{}", varint.reason);
    assert!(varint
        .reason
        .ends_with("could not be decoded: invalid varint"));
}
