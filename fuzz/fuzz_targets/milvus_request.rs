#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| quiver_nodes::fuzzing::milvus_request(data));
