//! The `/plan` body reader and validator: any bytes give a request or a list of issues, within
//! the value and depth limits, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use plangate::api::http::json::{JsonLimits, parse_body_with};
use plangate::planner::validate::PLAN_FIELDS;
use plangate::planner::validate::validate;

fuzz_target!(|data: &[u8]| {
    let limits = JsonLimits {
        max_values: 10_000,
        max_depth: 32,
    };
    if let Ok(value) = parse_body_with(data, limits, &PLAN_FIELDS) {
        let _ = validate(&value);
    }
});
