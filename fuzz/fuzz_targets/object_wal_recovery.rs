#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| quiver_core::fuzzing::object_wal_recovery(data));
