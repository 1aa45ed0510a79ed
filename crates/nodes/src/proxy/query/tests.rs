use super::*;
use crate::error::code;
use crate::pb::common::KeyValuePair;

fn req(kv: &[(&str, &str)]) -> QueryRequest {
    QueryRequest {
        query_params: kv
            .iter()
            .map(|(k, v)| KeyValuePair {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn limit_and_offset_stay_in_milvus_window() {
    assert_eq!(limit_and_offset(&req(&[])).unwrap(), (None, 0));
    assert_eq!(
        limit_and_offset(&req(&[("limit", "16384")])).unwrap(),
        (Some(16384), 0)
    );
    assert_eq!(
        limit_and_offset(&req(&[("limit", "10"), ("offset", "16374")])).unwrap(),
        (Some(10), 16374)
    );
    let e = limit_and_offset(&req(&[("limit", "16385")])).unwrap_err();
    assert_eq!(e.code, code::INVALID_PARAMETER);
    assert_eq!(
        e.reason,
        "limit [16385] is invalid, it should be in range [1, 16384], but got 16385"
    );
    let e = limit_and_offset(&req(&[("limit", "10"), ("offset", "16380")])).unwrap_err();
    assert_eq!(
        e.reason,
        "invalid max query result window, (offset+limit) should be in range [1, 16384], but got 16390"
    );
    assert!(limit_and_offset(&req(&[("offset", "20000")])).is_err());
    assert!(limit_and_offset(&req(&[("limit", "0")])).is_err());
}
