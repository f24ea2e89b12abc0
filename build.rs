//! Records the compiler version for `/health` (`system.node_version`).
fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| {
            let mut words = v.split_whitespace();
            Some(format!("{} {}", words.next()?, words.next()?))
        })
        .unwrap_or_else(|| "rust".to_owned());
    println!("cargo:rustc-env=PLANGATE_RUSTC={version}");
    println!("cargo:rerun-if-changed=build.rs");
}
