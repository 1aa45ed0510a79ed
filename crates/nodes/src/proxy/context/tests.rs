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
