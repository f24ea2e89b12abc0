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

#[test]
fn boot_failures_that_are_not_configuration_have_their_own_exit_codes() {
    // Recipes: an explicitly named folder that does not exist.
    let out = plangate()
        .arg("serve")
        .env("GATEWAY_RECIPES_DIR", "/nonexistent/recipes")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/recipes"));
    // Bind: the port is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = plangate()
        .arg("serve")
        .env("GATEWAY_HOSTNAME", "127.0.0.1")
        .env("GATEWAY_PORT", port.to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("cannot listen on 127.0.0.1:{port}"))
    );
}

#[test]
fn every_invalid_variable_stops_the_boot_naming_it() {
    for (var, value) in [
        ("GATEWAY_WORKER_THREADS", "abc"),
        ("GATEWAY_LOG_FORMAT", "xml"),
        ("GATEWAY_METRICS", "maybe"),
        ("GATEWAY_PLAYGROUND", "of"),
        ("GATEWAY_PUBLIC_URL", "gateway.example.com"),
        ("GATEWAY_CORS_ORIGINS", "https://app.example.com/path"),
    ] {
        let out = plangate().arg("serve").env(var, value).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{var}={value}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("config: {var} ")) && stderr.contains(value),
            "{var}: {stderr}"
        );
    }
}

#[test]
fn serve_help_shows_every_flag_with_its_variable() {
    let out = plangate().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, var) in [
        ("--config", "GATEWAY_CONFIG"),
        ("--host", "GATEWAY_HOSTNAME"),
        ("--port", "GATEWAY_PORT"),
    ] {
        let line = help
            .lines()
            .find(|l| l.contains(flag))
            .unwrap_or_else(|| panic!("{flag} missing: {help}"));
        assert!(help.contains(&format!("[env: {var}")), "{line}: {help}");
    }
    for command in [
        vec!["demo"],
        vec!["did", "new"],
        vec!["did", "show"],
        vec!["recipes", "check"],
        vec!["example-agent"],
    ] {
        let mut args = command.clone();
        args.push("--help");
        let out = plangate().args(&args).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        // Every option line of clap's help has a description after the flag.
        for line in help.lines().filter(|l| l.trim_start().starts_with("--")) {
            let described = line
                .trim_start()
                .split_once("  ")
                .is_some_and(|(_, rest)| !rest.trim().is_empty());
            assert!(described, "{command:?}: no help text on `{line}`");
        }
    }
}

#[tokio::test]
async fn the_port_flag_wins_over_the_variable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_plangate"))
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .env_clear()
        .env("GATEWAY_PORT", "1")
        .env("GATEWAY_AUTH_MODE", "none")
        .env("RUST_LOG", "error")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/ready");
    let mut up = false;
    for _ in 0..200 {
        if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    child.kill().await.unwrap();
    assert!(up, "the gateway did not listen on --port {port}");
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

#[test]
fn recipes_check_warns_about_markdown_the_boot_would_not_read() {
    let dir = format!("{}/fixtures/recipes/gaps", env!("CARGO_MANIFEST_DIR"));
    let out = plangate()
        .args(["recipes", "check", &dir])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "warnings do not fail the check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!("warning: {dir}/group/deep/RECIPE.md: not read: bundles are read only directly under the recipes folder ({dir}/<name>/RECIPE.md); move the folder so {dir}/deep/RECIPE.md is read").as_str(),
            format!("warning: {dir}/notes/howto.md: not read: markdown without frontmatter in notes, which is not a bundle; recipes are {dir}/<name>.md or {dir}/<name>/RECIPE.md and start with a --- frontmatter block").as_str(),
            format!("warning: {dir}/pay/recipe.md: not read: a bundled recipe's file must be named exactly RECIPE.md; rename it so {dir}/pay/RECIPE.md is read").as_str(),
            "0 recipes checked, 0 errors, 3 warnings",
        ]
    );
}

#[test]
fn recipes_check_without_a_folder_says_where_it_looked() {
    let cwd = std::env::temp_dir().join(format!("plangate-cwd-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&cwd).unwrap();
    let out = plangate()
        .args(["recipes", "check"])
        .current_dir(&cwd)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut lines = stderr.lines();
    assert_eq!(lines.next(), Some("error: recipes: not a directory"));
    let hint = lines.next().unwrap_or_default();
    assert!(
        hint.contains(&format!("{}/recipes", cwd.display()))
            && hint.contains("GATEWAY_RECIPES_DIR")
            && hint.contains("plangate recipes check <DIR>"),
        "{stderr}"
    );
    let out = plangate()
        .args(["recipes", "check"])
        .env("GATEWAY_RECIPES_DIR", "elsewhere")
        .current_dir(&cwd)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: elsewhere: not a directory\n"),
        "{stderr}"
    );
    assert!(stderr.contains("GATEWAY_RECIPES_DIR=elsewhere"), "{stderr}");
    std::fs::remove_dir_all(&cwd).unwrap();
}
