//! The Prometheus endpoint (issue 5): on its own listener only, valid for `promtool check
//! metrics`, with the expected families, labelled by route templates and never by a raw
//! path, an id or an address.
use fluxbase_tests::*;
use serde_json::json;
use std::io::Write;
use std::process::{Command, Stdio};

fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/setup.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn promtool_can_fail() {
    // The checker itself rejects broken exposition text, so a pass below means something.
    let (ok, out) = promtool_check("# TYPE x counter\nx{a=\"1\" 3\n");
    assert!(!ok, "promtool accepted garbage: {out}");
}

#[tokio::test]
async fn metrics_are_valid_complete_and_carry_no_raw_paths_ids_or_addresses() {
    let app = TestApp::start_with_server_keys(
        "  trusted_proxies: [\"127.0.0.1/32\"]\n",
        "rate_limiting:\n  endpoints:\n    /api/v1/auth/login: { per_minute: 2 }\n",
    )
    .await;
    let metrics = app.spawn_metrics().await;
    let (token, user_id) = app.sign_up("metrics@example.com", "Alice-password-1").await;
    let wrong = json!({"email": "metrics@example.com", "password": "Wrong-password-1"});
    for _ in 0..3 {
        // The third is refused by the login budget (2 a minute).
        app.request(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&wrong),
            &[("x-forwarded-for", "198.51.100.23")],
        )
        .await;
    }
    let r = app
        .get(
            &format!("/api/v1/tables/public/notes?user_id=eq.{user_id}"),
            Some(&token),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.get("/api/v1/tables/notes", None).await.status, 200);
    assert_eq!(
        app.get("/api/v1/nothing/here/zzid4711", None).await.status,
        404
    );
    assert_eq!(
        app.get("/api/v1/tables/no_such_table_zzid", None)
            .await
            .status,
        404
    );

    // Not on the public port.
    assert_eq!(app.get("/metrics", None).await.status, 404);

    let text = reqwest::get(format!("{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (ok, out) = promtool_check(&text);
    assert!(ok, "promtool check metrics failed:\n{out}\n{text}");
    for family in [
        "fluxbase_http_requests_total",
        "fluxbase_http_request_duration_seconds",
        "fluxbase_http_errors_total",
        "fluxbase_http_requests_in_flight",
        "fluxbase_db_pool_connections",
        "fluxbase_db_pool_waiting",
        "fluxbase_db_pool_wait_seconds",
        "fluxbase_db_transaction_duration_seconds",
        "fluxbase_auth_attempts_total",
        "fluxbase_rate_limit_rejections_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing:\n{text}"
        );
    }
    for sample in [
        "fluxbase_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/tables/{schema}/{table}\",status=\"200\"}",
        "fluxbase_http_requests_total{method=\"GET\",route=\"/api/v1/tables/{table}\",status=\"200\"}",
        "fluxbase_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}",
        "fluxbase_http_errors_total{code=\"TABLE_NOT_FOUND\",route=\"/api/v1/tables/{table}\",status=\"404\"}",
        "fluxbase_auth_attempts_total{endpoint=\"login\",outcome=\"failure\"}",
        "fluxbase_auth_attempts_total{endpoint=\"login\",outcome=\"rate_limited\"}",
        "fluxbase_auth_attempts_total{endpoint=\"signup\",outcome=\"success\"}",
        "fluxbase_rate_limit_rejections_total{endpoint=\"/api/v1/auth/login\",scope=\"ip\"}",
        "fluxbase_db_pool_connections{state=\"max\"} 4",
    ] {
        assert!(text.contains(sample), "{sample} missing:\n{text}");
    }
    for leak in [
        "zzid",
        &user_id,
        "198.51.100.23",
        "127.0.0.1",
        "metrics@example.com",
        "public/notes",
        "user_id=",
    ] {
        assert!(!text.contains(leak), "metrics contain {leak:?}:\n{text}");
    }
}
