//! The binary's wiring: boot errors name the variable and exit 1; `--version`; SIGTERM drains.

use std::process::Command;
use std::time::Duration;

fn plangate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_plangate"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

#[test]
fn version_prints_the_crate_version() {
    let out = plangate().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("plangate {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn invalid_configuration_exits_1_naming_the_variable() {
    let out = plangate()
        .arg("serve")
        .env("GATEWAY_PORT", "abc")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("config: GATEWAY_PORT must be an integer between 1 and 65535 (got \"abc\")"),
        "{stderr}"
    );

    let out = plangate()
        .env("GATEWAY_CONFIG", "/nonexistent/gateway.toml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/gateway.toml"));
}

#[tokio::test]
async fn sigterm_stops_the_server_with_exit_0() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_plangate"))
        .env_clear()
        .env("GATEWAY_HOSTNAME", "127.0.0.1")
        .env("GATEWAY_PORT", port.to_string())
        .env("GATEWAY_AUTH_MODE", "none")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/health");
    let mut healthy = false;
    for _ in 0..100 {
        if crate::support::http()
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(healthy, "gateway never became healthy");
    let pid = child.id().unwrap();
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.code(), Some(0));
}
