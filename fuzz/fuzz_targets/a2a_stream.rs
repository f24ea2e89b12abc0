//! A peer's SSE stream (events, envelopes, status and artifact updates): any bytes end in a
//! reply or an error, within the artifact cap, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(reply) = plangate::a2a::decode_stream_for_fuzzing(data, 64 * 1024) {
        let _ = plangate::a2a::wire::output_text(&reply);
    }
});
