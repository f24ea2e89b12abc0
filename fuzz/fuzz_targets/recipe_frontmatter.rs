//! Recipe files: any text gives a recipe or a frontmatter error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use plangate::recipe::{Candidate, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let candidate = Candidate {
        path: "recipes/fuzz.md".into(),
        display: "recipes/fuzz.md".into(),
        default_name: "fuzz".into(),
        bundle_dir: None,
    };
    let _ = parse(text, &candidate);
});
