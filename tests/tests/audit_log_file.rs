//! The audit log file (issue 5): JSON lines for sign-in (success and failure), sign-up,
//! sign-out, password reset and 2FA changes seen over HTTP, administrator actions and
//! lockouts done in SQL (read from `auth.events`), the `security.alert` of a failed-login
//! threshold, and `logging.audit_events` selecting which are written.
use fluxbase_tests::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

const PW: &str = "Audit-password-1";

fn audit_path() -> PathBuf {
    std::env::temp_dir().join(format!("fluxbase-audit-{}.jsonl", uuid::Uuid::new_v4()))
}

fn read_lines(path: &PathBuf) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// Waits (up to 10 s) for a line matching `pred`.
async fn wait_for_line(path: &PathBuf, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        if let Some(line) = read_lines(path).into_iter().find(|l| pred(l)) {
            return line;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {what} in the audit log:\n{:#?}", read_lines(path));
}

fn find<'a>(lines: &'a [Value], event: &str, outcome: &str) -> Option<&'a Value> {
    lines
        .iter()
        .find(|l| l["event"] == event && l["outcome"] == outcome)
}

#[tokio::test]
async fn http_and_sql_events_are_written_with_actor_ip_agent_and_outcome_and_alerts_fire() {
    let path = audit_path();
    let app = TestApp::start_with_yaml_extra(&format!(
        "logging:\n  audit_enabled: true\n  audit_log_file: \"{}\"\n  audit_poll_interval_ms: 100\n  \
         alerts: {{ failed_logins: {{ threshold: 4, window_seconds: 300 }} }}\n",
        path.display()
    ))
    .await;
    let agent = [("user-agent", "audit-test-agent/1.0")];
    let signup = app
        .request(
            reqwest::Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(&json!({"email": "Audit@Example.com", "password": PW})),
            &agent,
        )
        .await;
    assert_eq!(signup.status, 200, "{}", signup.text);
    let user_id = signup.body["user"]["id"].as_str().unwrap().to_owned();
    let access = signup.body["access_token"].as_str().unwrap().to_owned();
    let ok = app
        .request(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": "audit@example.com", "password": PW})),
            &agent,
        )
        .await;
    assert_eq!(ok.status, 200);
    for _ in 0..4 {
        let r = app
            .request(
                reqwest::Method::POST,
                "/api/v1/auth/signin",
                None,
                Some(&json!({"email": "audit@example.com", "password": "Wrong-password-1"})),
                &agent,
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let r = app
        .request(
            reqwest::Method::POST,
            "/api/v1/auth/signout",
            Some(&access),
            None,
            &agent,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = app
        .post(
            "/api/v1/auth/password/reset",
            None,
            &json!({"email": "audit@example.com"}),
        )
        .await;
    assert_eq!(r.status, 200);

    // Administrator actions, in SQL.
    let created: String = app
        .admin
        .query_one(
            "SELECT auth.create_user('admin-made@example.com', 'Admin-made-pw-1', 'authenticated')::text",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    app.admin
        .execute(
            "SELECT auth.set_role($1::text::uuid, 'editor')",
            &[&created],
        )
        .await
        .unwrap();
    app.admin
        .execute("SELECT auth.delete_user($1::text::uuid)", &[&created])
        .await
        .unwrap();
    wait_for_line(&path, "admin.user_delete", |l| {
        l["event"] == "admin.user_delete"
    })
    .await;

    let lines = read_lines(&path);
    let signup_line = find(&lines, "auth.signup", "success").expect("auth.signup");
    assert_eq!(signup_line["actor_id"], user_id.as_str());
    assert_eq!(signup_line["email"], "audit@example.com");
    assert_eq!(signup_line["ip"], "127.0.0.1");
    assert_eq!(signup_line["user_agent"], "audit-test-agent/1.0");
    assert!(
        signup_line["time"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{signup_line}"
    );
    assert!(signup_line["request_id"].as_str().is_some());
    let login = find(&lines, "auth.login", "success").expect("auth.login success");
    assert_eq!(login["actor_id"], user_id.as_str());
    let failed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "auth.login" && l["outcome"] == "failure")
        .collect();
    assert_eq!(failed.len(), 4, "{lines:#?}");
    assert!(failed
        .iter()
        .all(|l| l["actor_id"].is_null() && l["ip"] == "127.0.0.1"));
    assert_eq!(failed[0]["details"]["code"], "INVALID_CREDENTIALS");
    let alerts: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "security.alert")
        .collect();
    // The fourth failure crosses the threshold for the IP and for the e-mail: one alert each.
    assert_eq!(alerts.len(), 2, "{lines:#?}");
    assert!(alerts
        .iter()
        .any(|a| a["ip"] == "127.0.0.1" && a["details"]["count"] == 4));
    assert!(alerts.iter().any(|a| a["email"] == "audit@example.com"));
    let logout = find(&lines, "auth.logout", "success").expect("auth.logout");
    assert_eq!(logout["actor_id"], user_id.as_str());
    assert!(find(&lines, "auth.password_reset", "requested").is_some());
    // Administrator events come from SQL, with who ran them.
    for event in [
        "admin.user_create",
        "admin.role_change",
        "admin.user_delete",
    ] {
        let l = lines
            .iter()
            .find(|l| l["event"] == event)
            .unwrap_or_else(|| panic!("{event} missing: {lines:#?}"));
        assert_eq!(l["source"], "database");
        assert_eq!(l["actor_role"], "postgres", "{l}");
        assert_eq!(l["target_id"], created.as_str(), "{l}");
    }
    // Never a password or a token.
    let text = std::fs::read_to_string(&path).unwrap();
    for secret in [
        PW,
        "Wrong-password-1",
        "Admin-made-pw-1",
        access.as_str(),
        "eyJ",
    ] {
        assert!(!text.contains(secret), "the audit log contains {secret:?}");
    }
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn lockouts_are_written_and_audit_events_select_what_is_kept() {
    let path = audit_path();
    let app = TestApp::start_with_yaml_extra(&format!(
        "logging:\n  audit_enabled: true\n  audit_log_file: \"{}\"\n  audit_poll_interval_ms: 100\n  \
         audit_events: [auth.lockout, auth.2fa]\n",
        path.display()
    ))
    .await;
    let (token, _) = app.sign_up("locked@example.com", PW).await;
    for _ in 0..6 {
        app.post(
            "/api/v1/auth/signin",
            None,
            &json!({"email": "locked@example.com", "password": "Wrong-password-1"}),
        )
        .await;
    }
    let lockout = wait_for_line(&path, "auth.lockout", |l| l["event"] == "auth.lockout").await;
    assert_eq!(lockout["outcome"], "locked");
    assert_eq!(lockout["ip"], "127.0.0.1");
    // 2FA changes are selected: a wrong enable code is a 2FA event with outcome failure.
    let setup = app
        .request(
            reqwest::Method::POST,
            "/api/v1/auth/2fa/setup",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(setup.status, 200, "{}", setup.text);
    let r = app
        .post(
            "/api/v1/auth/2fa/enable",
            Some(&token),
            &json!({"code": "000000", "password": PW}),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    let twofa = wait_for_line(&path, "auth.2fa_enable", |l| {
        l["event"] == "auth.2fa_enable"
    })
    .await;
    assert_eq!(twofa["outcome"], "failure");
    let lines = read_lines(&path);
    assert!(
        lines
            .iter()
            .all(|l| l["event"] == "auth.lockout" || l["event"] == "auth.2fa_enable"),
        "unselected events were written: {lines:#?}"
    );
    let _ = std::fs::remove_file(&path);
}
