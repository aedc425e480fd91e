//! The `fluxbase` binary itself: a bad config or a mistyped `FLUXBASE_` variable stops it with
//! exit code 1 naming the key; a good one starts with its port and database password from
//! the environment (`FLUXBASE_SERVER_PORT`, `FLUXBASE_DATABASE_PASSWORD_FILE`), and SIGTERM
//! drains: the request in flight completes, then the process exits 0. `fluxbase check` exits
//! 1 on a FAIL.
use fluxbase_tests::Cluster;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The real command line (`tests/src/bin/fluxbase-under-test.rs` calls `fluxbase_server::cli::main`).
fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fluxbase-under-test"))
}

fn temp_file(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fluxbase-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// Runs `fluxbase <args>` with only `env` (plus PATH) in its environment.
fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(binary())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .expect("run fluxbase")
}

#[test]
fn a_bad_config_stops_the_binary_naming_the_key() {
    let bad = temp_file(
        "bad.yaml",
        "server: { tls: { min_version: \"1.1\" } }\ndatabase: { url: \"postgres://u@127.0.0.1:1/db\" }\n",
    );
    let out = run(&["serve", "-c", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.tls.min_version"), "{stderr}");

    let good = temp_file(
        "good.yaml",
        "database: { url: \"postgres://u@127.0.0.1:1/db\" }\n",
    );
    let out = run(
        &["serve", "-c", good.to_str().unwrap()],
        &[("FLUXBASE_SERVER_PROT", "9000")],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("FLUXBASE_SERVER_PROT"), "{stderr}");

    let out = run(
        &["serve", "-c", good.to_str().unwrap()],
        &[("FLUXBASE_DATABASE_MAX_CONNECTIONS", "0")],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("database.max_connections"), "{stderr}");
}

#[tokio::test]
async fn the_binary_serves_from_the_environment_and_drains_on_sigterm() {
    let cluster = Cluster::from_env();
    let db = format!("t_{}", uuid::Uuid::new_v4().simple());
    cluster
        .admin("postgres")
        .await
        .batch_execute(&format!("CREATE DATABASE {db} TEMPLATE fluxbase_template"))
        .await
        .unwrap();
    cluster
        .admin(&db)
        .await
        .batch_execute(
            "CREATE FUNCTION public.slow_ping(seconds float8) RETURNS int LANGUAGE sql
             AS $$ SELECT pg_sleep(seconds); SELECT 1 $$;",
        )
        .await
        .unwrap();
    let config = temp_file(
        "fluxbase.yaml",
        &format!(
            "server: {{ host: 127.0.0.1 }}\ndatabase: {{ url: \"postgres://fluxbase_server@127.0.0.1:{}/{db}\" }}\n",
            cluster.port
        ),
    );
    let password = temp_file("db_password", &format!("{}\n", cluster.server_password));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let mut child = Command::new(binary())
        .args(["serve", "-c", config.to_str().unwrap()])
        .env_clear()
        .env("FLUXBASE_SERVER_PORT", &port)
        // The metrics listener on a free port too: its default (9464) may be taken by a
        // `make run` on the same machine.
        .env("FLUXBASE_MONITORING_PORT", "0")
        .env("FLUXBASE_DATABASE_PASSWORD_FILE", &password)
        .env("FLUXBASE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fluxbase serve");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{base}/health")).send().await {
            assert_eq!(r.status(), 200);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "fluxbase serve did not come up on FLUXBASE_SERVER_PORT"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = format!("{base}/api/v1/rpc/slow_ping");
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&json!({"seconds": 2}))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
            .await
            .is_err(),
        "a new connection was accepted after SIGTERM"
    );
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "1");
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("fluxbase did not exit after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(code, Some(0));

    // fluxbase check: the password written literally fails the check (exit 1).
    let literal = temp_file(
        "literal.yaml",
        &format!(
            "database: {{ url: \"postgres://fluxbase_server:{}@127.0.0.1:{}/{db}\" }}\n",
            cluster.server_password, cluster.port
        ),
    );
    let out = run(&["check", "-c", literal.to_str().unwrap()], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  secrets"), "{stdout}");
    assert!(!stdout.contains(&cluster.server_password), "{stdout}");
}
