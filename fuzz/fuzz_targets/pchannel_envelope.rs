#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| quiver_core::fuzzing::pchannel_envelope(data));
