//! A2A JSON-RPC answers of both dialects (v0.3 `kind` tags, v1.0 wrapped tasks and
//! `TASK_STATE_*`), behind any HTTP status: any bytes give a Task, a Message or an error,
//! never a panic. The first byte picks the status.
#![no_main]
use libfuzzer_sys::fuzz_target;

const STATUSES: [u16; 6] = [200, 400, 404, 500, 502, 307];

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let status = http::StatusCode::from_u16(STATUSES[usize::from(first) % STATUSES.len()])
        .unwrap_or(http::StatusCode::OK);
    if let Ok(result) = plangate::a2a::jsonrpc::parse_response(status, body) {
        if let Ok(reply) = plangate::a2a::wire::parse_reply(&result) {
            let _ = plangate::a2a::wire::output_text(&reply);
        }
    }
});
