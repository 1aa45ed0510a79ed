use super::*;
use crate::error::code;

const KEY: IndexKey = (SegmentId(7), 42);

fn transient() -> ApiError {
    ApiError::new(code::UNEXPECTED, "writing index: disk full")
}

fn impossible() -> ApiError {
    ApiError::invalid("index v: param 'efConstruction' (40000) should be in range [1, 32768]")
}

#[test]
fn a_deterministic_failure_is_final_and_reported() {
    quiver_core::rt::block_on(async {
        let now = quiver_core::rt::now();
        let mut b = BuildFailures::default();
        assert!(b.may_try(KEY, now));
        assert_eq!(b.record(KEY, &impossible(), now), None);
        // Never again, however long it waits.
        assert!(!b.may_try(KEY, now + Duration::from_secs(86_400)));
        let (seg, reason) = b
            .fatal_of(42, [SegmentId(1), SegmentId(7)].into_iter())
            .unwrap();
        assert_eq!(seg, SegmentId(7));
        assert!(reason.contains("efConstruction"));
        // Another index id (dropped and created again) starts afresh.
        assert!(b.may_try((SegmentId(7), 43), now));
        assert_eq!(b.fatal_of(43, [SegmentId(7)].into_iter()), None);
        assert_eq!(b.fatal_of(42, [SegmentId(8)].into_iter()), None);
    });
}

#[test]
fn transient_failures_back_off_exponentially_up_to_the_cap() {
    quiver_core::rt::block_on(async {
        let now = quiver_core::rt::now();
        let mut b = BuildFailures::default();
        let mut waits = Vec::new();
        for _ in 0..10 {
            let at = b.record(KEY, &transient(), now).expect("retried");
            assert!(!b.may_try(KEY, now), "no hot loop");
            assert!(b.may_try(KEY, at));
            waits.push(at - now);
        }
        assert_eq!(waits[0], FIRST_RETRY);
        assert_eq!(waits[1], FIRST_RETRY * 2);
        assert_eq!(waits[2], FIRST_RETRY * 4);
        assert_eq!(*waits.last().unwrap(), MAX_RETRY);
        // Transient failures are not reported as a failed index.
        assert_eq!(b.fatal_of(42, [SegmentId(7)].into_iter()), None);
        b.clear(KEY);
        assert!(b.may_try(KEY, now));
    });
}
