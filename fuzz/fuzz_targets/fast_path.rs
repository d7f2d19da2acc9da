//! The fast path's head parsing and rewriting; the oracle is in
//! `jrps::proxy::fuzzing::fast_path_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jrps::proxy::fuzzing::fast_path_request(data);
});
