use super::*;

fn with_headers(headers: &[(&'static str, &'static str)]) -> Request<()> {
    let mut req = Request::new(());
    for (k, v) in headers {
        req.metadata_mut().insert(*k, v.parse().unwrap());
    }
    req
}

#[test]
fn the_header_names_the_database_before_the_body() {
    assert_eq!(db_of(&with_headers(&[("dbname", "h")]), "b"), "h");
    assert_eq!(db_of(&with_headers(&[("dbname", "")]), "b"), "b");
    assert_eq!(db_of(&with_headers(&[]), "b"), "b");
    assert_eq!(db_of(&with_headers(&[]), ""), DEFAULT_DB);
}

#[test]
fn a_wrong_or_missing_token_is_unauthenticated() {
    assert!(authenticate(None, &with_headers(&[])).is_ok());
    assert!(authenticate(Some("dG9r"), &with_headers(&[("authorization", "dG9r")])).is_ok());
    for req in [with_headers(&[]), with_headers(&[("authorization", "bad")])] {
        let e = authenticate(Some("dG9r"), &req).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
    }
}

#[test]
fn a_response_over_the_message_limit_is_refused_with_a_clear_status() {
    let small = SearchResults {
        collection_name: "c".into(),
        ..Default::default()
    };
    let r = reply(ok(small)).unwrap().into_inner();
    assert_eq!(r.status.unwrap().code, 0);
    let huge = SearchResults {
        collection_name: "c".repeat(MAX_MESSAGE_BYTES),
        ..Default::default()
    };
    let r = reply(ok(huge)).unwrap().into_inner();
    assert!(
        r.collection_name.is_empty(),
        "the result itself is not sent"
    );
    let s = r.status.unwrap();
    assert_eq!(s.code, crate::error::code::UNEXPECTED);
    assert!(
        s.reason.contains("exceed the maxOutputSize limit"),
        "{}",
        s.reason
    );
    assert!(s.reason.contains("fewer rows"), "{}", s.reason);
}
