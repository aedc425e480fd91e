//! The server's JSON logs (issue 5) never contain a password, a token, a TOTP code or the
//! signing secret, at `debug` level, through every auth flow; and each request line carries
//! the request id, method, route, status, latency and client IP.
//!
//! Alone in its test binary: it installs the process-wide log subscriber (to a file).
use fluxbase_tests::*;
use serde_json::{json, Value};
use std::sync::Mutex;

const PW: &str = "Redact-password-1";
const NEW_PW: &str = "Redact-newpass-22";
const WRONG_PW: &str = "Wrong-guess-333x";

fn token_from_mail(mail: &str) -> String {
    let unfolded = mail.replace("=\r\n", "").replace("=3D", "=");
    let start = unfolded.find("token=").expect("a reset link") + "token=".len();
    unfolded[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect()
}

async fn code(app: &TestApp, secret: &str) -> String {
    app.admin
        .query_one("SELECT fluxbase.totp_current_code($1)", &[&secret])
        .await
        .unwrap()
        .get(0)
}

async fn next_window(app: &TestApp) {
    app.admin
        .execute(
            "UPDATE auth.mfa_factors SET last_used_step = last_used_step - 10",
            &[],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn no_secret_reaches_the_log_through_any_auth_flow() {
    let path = std::env::temp_dir().join(format!("fluxbase-log-{}.jsonl", uuid::Uuid::new_v4()));
    let file = std::fs::File::create(&path).unwrap();
    // debug, the most a user would set: the driver's statement logging (with parameters) must
    // still be held back.
    fluxbase_server::observability::init_logging_with_writer("debug", Mutex::new(file));

    let smtp = SmtpSink::start();
    let app = TestApp::start_with_yaml_extra(&format!(
        "auth:\n  smtp:\n    host: 127.0.0.1\n    port: {}\n    from: fluxbase@example.com\n    tls: none\n  \
         password_reset:\n    base_url: http://app.example.com/reset\n",
        smtp.port
    ))
    .await;
    let mut secrets: Vec<String> = vec![
        PW.to_owned(),
        NEW_PW.to_owned(),
        WRONG_PW.to_owned(),
        app.cluster.jwt_secret.clone(),
        app.cluster.server_password.clone(),
    ];
    let email = "redact@example.com";

    let signup = app
        .post(
            "/api/v1/auth/signup",
            None,
            &json!({"email": email, "password": PW}),
        )
        .await;
    assert_eq!(signup.status, 200, "{}", signup.text);
    let collect = |v: &Value, out: &mut Vec<String>| {
        for key in ["access_token", "refresh_token", "mfa_token"] {
            if let Some(t) = v[key].as_str() {
                out.push(t.to_owned());
            }
        }
    };
    collect(&signup.body, &mut secrets);
    let signin = app
        .post(
            "/api/v1/auth/signin",
            None,
            &json!({"email": email, "password": PW}),
        )
        .await;
    assert_eq!(signin.status, 200);
    collect(&signin.body, &mut secrets);
    let refreshed = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": signin.body["refresh_token"]}),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    collect(&refreshed.body, &mut secrets);
    let access = refreshed.body["access_token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        let r = app
            .post(
                "/api/v1/auth/signin",
                None,
                &json!({"email": email, "password": WRONG_PW}),
            )
            .await;
        assert_eq!(r.status, 401);
    }
    // A malformed header and a bad token go through the token paths too.
    let r = app
        .request(
            reqwest::Method::GET,
            "/api/v1/auth/user",
            None,
            None,
            &[
                ("authorization", &format!("Bearer {access}x")),
                ("cookie", "sid=cookie-secret-value"),
            ],
        )
        .await;
    assert_eq!(r.status, 401);
    secrets.push("cookie-secret-value".to_owned());

    // 2FA: enrol, enable, sign in with a code.
    let setup = app
        .request(
            reqwest::Method::POST,
            "/api/v1/auth/2fa/setup",
            Some(&access),
            None,
            &[],
        )
        .await;
    assert_eq!(setup.status, 200, "{}", setup.text);
    let totp_secret = setup.body["totp"]["secret"].as_str().unwrap().to_owned();
    secrets.push(totp_secret.clone());
    let enable_code = code(&app, &totp_secret).await;
    let enabled = app
        .post(
            "/api/v1/auth/2fa/enable",
            Some(&access),
            &json!({"code": enable_code, "password": PW}),
        )
        .await;
    assert_eq!(enabled.status, 200, "{}", enabled.text);
    secrets.push(enable_code);
    for c in enabled.body["backup_codes"].as_array().unwrap() {
        secrets.push(c.as_str().unwrap().to_owned());
    }
    let step1 = app
        .post(
            "/api/v1/auth/signin",
            None,
            &json!({"email": email, "password": PW}),
        )
        .await;
    assert_eq!(step1.body["requires_2fa"], true, "{}", step1.text);
    collect(&step1.body, &mut secrets);
    let wrong = app
        .post(
            "/api/v1/auth/2fa/verify",
            None,
            &json!({"mfa_token": step1.body["mfa_token"], "code": "000001"}),
        )
        .await;
    assert_eq!(wrong.status, 401);
    next_window(&app).await;
    let verify_code = code(&app, &totp_secret).await;
    let verified = app
        .post(
            "/api/v1/auth/2fa/verify",
            None,
            &json!({"mfa_token": step1.body["mfa_token"], "code": verify_code}),
        )
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    secrets.push(verify_code);
    collect(&verified.body, &mut secrets);

    // Password reset by e-mail.
    let r = app
        .post(
            "/api/v1/auth/password/reset",
            None,
            &json!({"email": email}),
        )
        .await;
    assert_eq!(r.status, 200);
    let mails = smtp.wait_for(1).await;
    let reset_token = token_from_mail(&mails[0]);
    assert_eq!(reset_token.len(), 64);
    secrets.push(reset_token.clone());
    let r = app
        .post(
            "/api/v1/auth/password/reset/confirm",
            None,
            &json!({"token": reset_token, "new_password": NEW_PW}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let signout_token = app
        .post(
            "/api/v1/auth/signin",
            None,
            &json!({"email": email, "password": NEW_PW}),
        )
        .await;
    collect(&signout_token.body, &mut secrets);

    // Let the background work (mail, session resets) log what it logs.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let log = std::fs::read_to_string(&path).unwrap();
    assert!(log.lines().count() > 20, "the log is nearly empty:\n{log}");
    for secret in &secrets {
        assert!(secret.len() >= 6, "{secret:?}");
        assert!(
            !log.contains(secret.as_str()),
            "the log contains {secret:?}"
        );
    }
    // Nor any JWT-looking value at all, nor the header names' values.
    assert!(!log.contains("eyJ"), "the log contains a JWT");
    assert!(
        !log.to_lowercase().contains("bearer "),
        "the log contains an Authorization value"
    );

    // What an access line carries.
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let access_line = lines
        .iter()
        .find(|l| {
            l["target"] == "fluxbase::request" && l["fields"]["route"] == "/api/v1/auth/2fa/verify"
        })
        .unwrap_or_else(|| panic!("no access line for 2fa/verify:\n{log}"));
    let f = &access_line["fields"];
    assert!(
        f["request_id"].as_str().is_some_and(|s| s.len() == 36),
        "{f}"
    );
    assert_eq!(f["method"], "POST");
    assert!(f["status"].is_u64());
    assert!(f["latency_ms"].is_f64() || f["latency_ms"].is_u64());
    assert_eq!(f["client_ip"], "127.0.0.1");
    let _ = std::fs::remove_file(&path);
}
