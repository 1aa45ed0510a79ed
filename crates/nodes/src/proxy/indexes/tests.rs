use super::*;

fn params(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn build_params_are_checked_against_what_the_builder_accepts() {
    let ok = |t: &str, kv: &[(&str, &str)]| check_build_params(t, &params(kv));
    assert!(ok("HNSW", &[("M", "16"), ("efConstruction", "32768")]).is_ok());
    let e = ok("HNSW", &[("M", "16"), ("efConstruction", "40000")]).unwrap_err();
    assert_eq!(e.code, code::INVALID_PARAMETER);
    assert!(
        e.reason
            .contains("param 'efConstruction' (40000) should be in range [1, 32768]"),
        "{}",
        e.reason
    );
    assert!(ok("HNSW", &[("efConstruction", "2147483647")]).is_err());
    assert!(ok("HNSW_SQ", &[("M", "4096")]).is_err());
    assert!(ok("AUTOINDEX", &[("M", "1")]).is_err());
    assert!(ok("IVF_FLAT", &[("nlist", "65536")]).is_ok());
    assert!(ok("IVF_SQ8", &[("nlist", "65537")]).is_err());
    assert!(ok("IVF_FLAT", &[("nlist", "many")]).is_err());
    // What the builder ignores is not refused (Milvus clients send extra keys).
    assert!(ok("FLAT", &[("M", "99999")]).is_ok());
}

fn index() -> IndexInfo {
    IndexInfo {
        id: 9,
        name: "v_idx".into(),
        field_name: "v".into(),
        index_type: "HNSW".into(),
        metric: Metric::L2,
        params: vec![("M".into(), "16".into())],
    }
}

fn progress(total: u64, indexed: u64, pending: u64, failure: Option<&str>) -> IndexProgress {
    IndexProgress {
        total_rows: total,
        indexed_rows: indexed,
        pending_segments: pending,
        failure: failure.map(str::to_string),
    }
}

#[test]
fn describe_reports_a_failed_build_with_its_reason() {
    let d = describe(&index(), progress(10, 10, 0, None));
    assert_eq!(d.state, IndexState::Finished as i32);
    assert!(d.index_state_fail_reason.is_empty());
    let d = describe(
        &index(),
        progress(10, 0, 1, Some("segment 3: too many rows")),
    );
    assert_eq!(d.state, IndexState::Failed as i32);
    assert_eq!(d.index_state_fail_reason, "segment 3: too many rows");
}

#[test]
fn describe_reports_a_build_in_progress_until_every_segment_is_served() {
    let d = describe(&index(), progress(30, 10, 2, None));
    assert_eq!(d.state, IndexState::InProgress as i32);
    assert_eq!(
        (d.total_rows, d.indexed_rows, d.pending_index_rows),
        (30, 10, 20)
    );
    // An empty sealed segment still pending keeps it in progress.
    let d = describe(&index(), progress(10, 10, 1, None));
    assert_eq!(d.state, IndexState::InProgress as i32);
    // Nothing sealed yet: nothing to wait for.
    let d = describe(&index(), progress(0, 0, 0, None));
    assert_eq!(d.state, IndexState::Finished as i32);
}

#[test]
fn shard_progress_sums_and_keeps_the_first_failure() {
    let sum = [
        progress(10, 10, 0, None),
        progress(20, 5, 1, Some("segment 4: no")),
        progress(5, 0, 1, Some("segment 9: no")),
    ]
    .into_iter()
    .fold(IndexProgress::default(), IndexProgress::merge);
    assert_eq!(sum, progress(35, 15, 2, Some("segment 4: no")));
    assert!(!sum.finished());
}
