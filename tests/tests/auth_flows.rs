//! The auth kernel over HTTP (issue 3): refresh rotation and reuse, sign-out revocation,
//! lockout (identical answers, race-free counting, no spoofable IP), password policy, reset by
//! e-mail through a real SMTP listener, TOTP 2FA, self-service limits, settings from yaml.
use fluxbase_tests::*;
use reqwest::Method;
use serde_json::{json, Value};

const PW: &str = "Alice-password-1";

async fn sign_in(app: &TestApp, email: &str, password: &str) -> Response {
    app.post(
        "/api/v1/auth/signin",
        None,
        &json!({"email": email, "password": password}),
    )
    .await
}

fn without_request_id(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("request_id");
    }
    v
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_session() {
    let app = TestApp::start().await;
    let first = app
        .post(
            "/api/v1/auth/signup",
            None,
            &json!({"email": "a@example.com", "password": PW}),
        )
        .await;
    let r1 = first.body["refresh_token"].as_str().unwrap().to_owned();
    let second = app
        .post("/api/v1/auth/refresh", None, &json!({"refresh_token": r1}))
        .await;
    assert_eq!(second.status, 200, "{}", second.text);
    let r2 = second.body["refresh_token"].as_str().unwrap().to_owned();
    let access2 = second.body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    assert_eq!(
        app.get("/api/v1/auth/user", Some(&access2)).await.status,
        200
    );

    let reuse = app
        .post("/api/v1/auth/refresh", None, &json!({"refresh_token": r1}))
        .await;
    assert_eq!(reuse.status, 401, "{}", reuse.text);
    assert_error_shape(&reuse);
    // The theft response: the newer pair dies with the session.
    let after = app
        .post("/api/v1/auth/refresh", None, &json!({"refresh_token": r2}))
        .await;
    assert_eq!(after.status, 401, "{}", after.text);
    assert_eq!(
        app.get("/api/v1/auth/user", Some(&access2)).await.status,
        401
    );
    let revoked: String = app
        .admin
        .query_one("SELECT revoked_reason FROM auth.sessions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(revoked, "refresh_token_reuse");
    for bad in ["", "garbage", &"0".repeat(64)] {
        let r = app
            .post("/api/v1/auth/refresh", None, &json!({"refresh_token": bad}))
            .await;
        assert_eq!(r.status, 401, "{bad:?}: {}", r.text);
    }
}

#[tokio::test]
async fn sign_out_revokes_the_access_token_at_once() {
    let app = TestApp::start().await;
    for path in ["/api/v1/auth/signout", "/api/v1/auth/logout"] {
        let email = format!("out{}@example.com", path.len());
        let (token, _) = app.sign_up(&email, PW).await;
        assert_eq!(app.get("/api/v1/auth/user", Some(&token)).await.status, 200);
        let r = app
            .request(Method::POST, path, Some(&token), None, &[])
            .await;
        assert!(
            r.status == 204 || r.status == 200,
            "{path}: {} {}",
            r.status,
            r.text
        );
        let r = app.get("/api/v1/auth/user", Some(&token)).await;
        assert_eq!(
            r.status, 401,
            "{path}: the old token still works: {}",
            r.text
        );
        assert_eq!(
            app.get("/api/v1/tables/notes", Some(&token)).await.status,
            401
        );
    }
    let r = app
        .request(Method::POST, "/api/v1/auth/signout", None, None, &[])
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
}

#[tokio::test]
async fn global_sign_out_ends_every_session() {
    let app = TestApp::start().await;
    app.sign_up("g@example.com", PW).await;
    let a = sign_in(&app, "g@example.com", PW).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = sign_in(&app, "g@example.com", PW).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .request(
            Method::POST,
            "/api/v1/auth/signout?scope=global",
            Some(&a),
            None,
            &[],
        )
        .await;
    assert!(r.status == 204 || r.status == 200, "{}", r.text);
    assert_eq!(app.get("/api/v1/auth/user", Some(&b)).await.status, 401);
}

#[tokio::test]
async fn wrong_password_unknown_email_and_locked_account_answer_alike() {
    let app = TestApp::start().await;
    app.sign_up("lock@example.com", PW).await;
    let wrong = sign_in(&app, "lock@example.com", "Wrong-password-1").await;
    let unknown = sign_in(&app, "nobody@example.com", "Wrong-password-1").await;
    for _ in 0..5 {
        sign_in(&app, "lock@example.com", "Wrong-password-1").await;
    }
    let locked = sign_in(&app, "lock@example.com", PW).await;
    for r in [&wrong, &unknown, &locked] {
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(assert_error_shape(r), "INVALID_CREDENTIALS");
    }
    assert_eq!(
        without_request_id(wrong.body.clone()),
        without_request_id(unknown.body.clone())
    );
    assert_eq!(
        without_request_id(wrong.body.clone()),
        without_request_id(locked.body.clone())
    );
    let locks: i64 = app
        .admin
        .query_one("SELECT count(*) FROM auth.lockouts", &[])
        .await
        .unwrap()
        .get(0);
    assert!(locks >= 1);
    // The administrator unlocks in SQL; the right password works again.
    app.admin
        .execute(
            "SELECT auth.unlock(email => 'lock@example.com', ip => '127.0.0.1')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(sign_in(&app, "lock@example.com", PW).await.status, 200);
}

#[tokio::test]
async fn parallel_wrong_guesses_cannot_exceed_the_limit() {
    let app = TestApp::start().await;
    app.sign_up("race@example.com", PW).await;
    app.admin
        .execute("SELECT auth.set_setting('lockout_type', 'email')", &[])
        .await
        .unwrap();
    let guesses = (0..16).map(|i| {
        let body = json!({"email": "race@example.com", "password": format!("Wrong-password-{i}")});
        let req = app.http.post(app.url("/api/v1/auth/signin")).json(&body);
        async move { req.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(guesses).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let failures: i32 = app
        .admin
        .query_one(
            "SELECT failures FROM auth.login_attempts WHERE key = 'email:race@example.com'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        failures, 5,
        "parallel guesses were counted past max_login_attempts"
    );
    assert_eq!(
        sign_in(&app, "race@example.com", PW).await.status,
        401,
        "the account is locked"
    );
}

#[tokio::test]
async fn a_spoofed_forwarded_header_does_not_change_the_lockout_key() {
    let app = TestApp::start().await;
    app.sign_up("ip@example.com", PW).await;
    app.admin
        .execute("SELECT auth.set_setting('lockout_type', 'ip')", &[])
        .await
        .unwrap();
    for i in 0..5 {
        let spoof = format!("203.0.113.{i}");
        let r = app
            .request(
                Method::POST,
                "/api/v1/auth/signin",
                None,
                Some(&json!({"email": format!("guess{i}@example.com"), "password": "Wrong-password-1"})),
                &[("X-Forwarded-For", &spoof), ("Forwarded", &format!("for={spoof}"))],
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let keys: Vec<String> = app
        .admin
        .query("SELECT key FROM auth.login_attempts", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(keys, ["ip:127.0.0.1"], "the key must be the socket address");
    let r = app
        .request(
            Method::POST,
            "/api/v1/auth/signin",
            None,
            Some(&json!({"email": "ip@example.com", "password": PW})),
            &[("X-Forwarded-For", "198.51.100.1")],
        )
        .await;
    assert_eq!(
        r.status, 401,
        "a new spoofed address must not escape the lock: {}",
        r.text
    );
}

#[tokio::test]
async fn weak_passwords_list_every_broken_rule() {
    let app = TestApp::start().await;
    let r = app
        .post(
            "/api/v1/auth/signup",
            None,
            &json!({"email": "w@example.com", "password": "short"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(assert_error_shape(&r), "WEAK_PASSWORD");
    let reasons: Vec<String> = r.body["details"]["reasons"]
        .as_array()
        .expect("details.reasons")
        .iter()
        .map(|v| v.as_str().unwrap().into())
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}"); // length, upper-case, digit, special
    let count: i64 = app
        .admin
        .query_one("SELECT count(*) FROM auth.users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
}

#[tokio::test]
async fn users_cannot_escalate_through_patch_user() {
    let app = TestApp::start().await;
    let (token, id) = app.sign_up("self@example.com", PW).await;
    let before: String = app
        .admin
        .query_one(
            "SELECT row_to_json(u)::text FROM auth.users u WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    for body in [
        json!({"role": "service_role"}),
        json!({"app_metadata": {"admin": true}}),
        json!({"email_verified": true}),
        json!({"banned_until": null}),
        json!({"encrypted_password": "x"}),
        json!({"id": "00000000-0000-0000-0000-000000000000"}),
        json!({"user_metadata": {"a": 1}, "role": "admin"}),
        json!(["not", "an", "object"]),
        json!({"password": "Another-password-2"}),
    ] {
        let r = app
            .request(
                Method::PATCH,
                "/api/v1/auth/user",
                Some(&token),
                Some(&body),
                &[],
            )
            .await;
        assert!(
            r.status == 400 || r.status == 403,
            "{body}: {} {}",
            r.status,
            r.text
        );
        assert_error_shape(&r);
    }
    let after: String = app
        .admin
        .query_one(
            "SELECT row_to_json(u)::text FROM auth.users u WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, after, "a refused PATCH changed the account");
    let ok = app
        .request(
            Method::PATCH,
            "/api/v1/auth/user",
            Some(&token),
            Some(&json!({"user_metadata": {"theme": "dark"}})),
            &[],
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["user_metadata"]["theme"], "dark");
    let changed = app
        .request(
            Method::PATCH,
            "/api/v1/auth/user",
            Some(&token),
            Some(&json!({"password": "Another-password-2", "current_password": PW})),
            &[],
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(
        sign_in(&app, "self@example.com", "Another-password-2")
            .await
            .status,
        200
    );
}

fn reset_yaml(smtp_port: u16) -> String {
    format!(
        "auth:\n  smtp:\n    host: 127.0.0.1\n    port: {smtp_port}\n    from: fluxbase@example.com\n    tls: none\n  \
         password_reset:\n    base_url: http://app.example.com/reset\n    redirect_allowlist: [\"http://app.example.com/\"]\n"
    )
}

fn token_from_mail(mail: &str) -> String {
    let unfolded = mail.replace("=\r\n", "").replace("=3D", "=");
    let start = unfolded
        .find("token=")
        .expect("the e-mail carries a token link")
        + "token=".len();
    unfolded[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect()
}

#[tokio::test]
async fn password_reset_by_email_is_single_use_and_reveals_nothing() {
    let smtp = SmtpSink::start();
    let app = TestApp::start_with_yaml_extra(&reset_yaml(smtp.port)).await;
    let (old_token, _) = app.sign_up("reset@example.com", PW).await;

    let known = app
        .post(
            "/api/v1/auth/password/reset",
            None,
            &json!({"email": "Reset@Example.com"}),
        )
        .await;
    let unknown = app
        .post(
            "/api/v1/auth/password/reset",
            None,
            &json!({"email": "ghost@example.com"}),
        )
        .await;
    assert_eq!(known.status, 200, "{}", known.text);
    assert_eq!(
        (known.status, known.text.clone()),
        (unknown.status, unknown.text.clone())
    );
    let mails = smtp.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(smtp.count(), 1, "only the real account gets an e-mail");
    let token = token_from_mail(&mails[0]);
    assert_eq!(token.len(), 64, "{}", mails[0]);
    let stored_plain: i64 = app
        .admin
        .query_one(
            "SELECT count(*) FROM auth.one_time_tokens WHERE encode(token_hash, 'hex') = $1",
            &[&token],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored_plain, 0, "reset tokens must be stored hashed");

    let weak = app
        .post(
            "/api/v1/auth/password/reset/confirm",
            None,
            &json!({"token": token, "new_password": "weak"}),
        )
        .await;
    assert_eq!(weak.status, 400);
    assert_eq!(assert_error_shape(&weak), "WEAK_PASSWORD");

    // Two parallel confirmations of one token: exactly one wins.
    let confirm = |pw: &str| {
        let req = app
            .http
            .post(app.url("/api/v1/auth/password/reset/confirm"))
            .json(&json!({"token": token, "new_password": pw}));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let (a, b) = tokio::join!(confirm("Reset-password-A1"), confirm("Reset-password-B2"));
    let mut statuses = [a, b];
    statuses.sort();
    assert_eq!(
        statuses,
        [200, 400],
        "one confirmation must win, one must fail"
    );
    let again = app
        .post(
            "/api/v1/auth/password/reset/confirm",
            None,
            &json!({"token": token, "new_password": "Reset-password-C3"}),
        )
        .await;
    assert_eq!(again.status, 400);
    assert_error_shape(&again);
    assert_eq!(
        app.get("/api/v1/auth/user", Some(&old_token)).await.status,
        401,
        "sessions survive a reset"
    );
    let a_ok = sign_in(&app, "reset@example.com", "Reset-password-A1")
        .await
        .status
        == 200;
    let b_ok = sign_in(&app, "reset@example.com", "Reset-password-B2")
        .await
        .status
        == 200;
    assert!(a_ok ^ b_ok, "exactly the winning password works");

    let r = app
        .post(
            "/api/v1/auth/password/reset",
            None,
            &json!({"email": "reset@example.com", "redirect_to": "https://evil.example/"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_error_shape(&r);
}

async fn current_code(app: &TestApp, secret: &str) -> String {
    app.admin
        .query_one("SELECT fluxbase.totp_current_code($1)", &[&secret])
        .await
        .unwrap()
        .get(0)
}

async fn next_window(app: &TestApp, email: &str) {
    // Moves the factor's memory of the last used step back, as if 30 seconds had passed.
    app.admin
        .execute(
            "UPDATE auth.mfa_factors SET last_used_step = last_used_step - 10 \
             WHERE user_id = (SELECT id FROM auth.users WHERE email = $1)",
            &[&email],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn totp_two_factor_end_to_end() {
    let app = TestApp::start().await;
    let (token, _) = app.sign_up("totp@example.com", PW).await;
    let setup = app
        .request(
            Method::POST,
            "/api/v1/auth/2fa/setup",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(setup.status, 200, "{}", setup.text);
    assert_eq!(setup.body["type"], "totp");
    let secret = setup.body["totp"]["secret"].as_str().unwrap().to_owned();
    assert!(
        setup.body["totp"]["uri"]
            .as_str()
            .unwrap()
            .contains("totp%40example.com")
            || setup.body["totp"]["uri"]
                .as_str()
                .unwrap()
                .contains("totp@example.com")
    );
    let qr = setup.body["totp"]["qr_code"].as_str().unwrap();
    assert!(qr.starts_with("data:image/png;base64,"), "{qr:.40}");
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(&qr["data:image/png;base64,".len()..])
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let stored: String = app
        .admin
        .query_one("SELECT secret_encrypted FROM auth.mfa_factors", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        !stored.contains(&secret),
        "the TOTP secret is stored in clear"
    );

    let code = current_code(&app, &secret).await;
    let enabled = app
        .post(
            "/api/v1/auth/2fa/enable",
            Some(&token),
            &json!({"code": code, "password": PW}),
        )
        .await;
    assert_eq!(enabled.status, 200, "{}", enabled.text);
    let backup: Vec<String> = enabled.body["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().into())
        .collect();
    assert_eq!(backup.len(), 10);
    let status = app.get("/api/v1/auth/2fa/status", Some(&token)).await;
    assert_eq!(status.body["enabled"], true, "{}", status.text);

    // The password step alone gives no token.
    let step1 = sign_in(&app, "totp@example.com", PW).await;
    assert_eq!(step1.status, 200, "{}", step1.text);
    assert_eq!(step1.body["requires_2fa"], true);
    assert!(step1.body.get("access_token").is_none());
    let mfa_token = step1.body["mfa_token"].as_str().unwrap().to_owned();

    // Nothing else completes it: no challenge, a made-up one, or a replayed code.
    let r = app
        .post(
            "/api/v1/auth/2fa/verify",
            None,
            &json!({"mfa_token": "made-up", "code": code}),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = app
        .post(
            "/api/v1/auth/2fa/verify",
            None,
            &json!({"mfa_token": mfa_token, "code": code}),
        )
        .await;
    assert_eq!(r.status, 401, "the enable code was replayed: {}", r.text);
    next_window(&app, "totp@example.com").await;
    let code2 = current_code(&app, &secret).await;
    let done = app
        .post(
            "/api/v1/auth/2fa/verify",
            None,
            &json!({"mfa_token": mfa_token, "code": code2}),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    let aal2 = done.body["access_token"].as_str().unwrap().to_owned();
    let again = app
        .post(
            "/api/v1/auth/2fa/verify",
            None,
            &json!({"mfa_token": mfa_token, "code": code2}),
        )
        .await;
    assert_eq!(again.status, 401, "an mfa_token worked twice");
    let step1b = sign_in(&app, "totp@example.com", PW).await;
    let replay = app
        .post(
            "/api/v1/auth/2fa/verify",
            None,
            &json!({"mfa_token": step1b.body["mfa_token"], "code": code2}),
        )
        .await;
    assert_eq!(replay.status, 401, "a TOTP code worked twice");
    let backup_ok = app
        .post(
            "/api/v1/auth/2fa/verify",
            None,
            &json!({"mfa_token": step1b.body["mfa_token"], "code": backup[0]}),
        )
        .await;
    assert_eq!(backup_ok.status, 200, "{}", backup_ok.text);

    // Disabling needs the password and a current code.
    let r = app
        .post(
            "/api/v1/auth/2fa/disable",
            Some(&aal2),
            &json!({"password": PW, "code": "000000"}),
        )
        .await;
    assert!(r.status == 401 || r.status == 400, "{}", r.text);
    let r = app
        .post(
            "/api/v1/auth/2fa/disable",
            Some(&aal2),
            &json!({"password": PW, "code": backup[1]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn expired_passwords_only_allow_a_change() {
    let app = TestApp::start().await;
    app.sign_up("old@example.com", PW).await;
    app.admin
        .execute(
            "UPDATE auth.users SET password_changed_at = now() - interval '100 days'",
            &[],
        )
        .await
        .unwrap();
    let r = sign_in(&app, "old@example.com", PW).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["requires_password_change"], true);
    assert!(r.body.get("access_token").is_none());
    // The expired password itself is not a new one (found by a review: "changing" to it
    // made password_max_age_days do nothing); the refusal leaves the token usable.
    let same = app
        .post(
            "/api/v1/auth/password/change",
            None,
            &json!({"password_change_token": r.body["password_change_token"], "new_password": PW}),
        )
        .await;
    assert_eq!(same.status, 400, "{}", same.text);
    assert_eq!(same.body["code"], "WEAK_PASSWORD", "{}", same.text);
    assert!(
        same.text.contains("must differ from the expired password"),
        "{}",
        same.text
    );
    let change = app
        .post(
            "/api/v1/auth/password/change",
            None,
            &json!({"password_change_token": r.body["password_change_token"], "new_password": "Fresh-password-9"}),
        )
        .await;
    assert_eq!(change.status, 200, "{}", change.text);
    assert!(change.body["access_token"].is_string());
}

#[tokio::test]
async fn yaml_auth_settings_are_applied_at_start() {
    let app = TestApp::start_with_yaml_extra(
        "auth:\n  max_login_attempts: 2\n  password_min_length: 16\n  lockout_type: email\n",
    )
    .await;
    let v: String = app
        .admin
        .query_one("SELECT auth.setting('max_login_attempts')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "2");
    let cfg = app.get("/api/v1/auth/config", None).await;
    assert_eq!(cfg.status, 200, "{}", cfg.text);
    assert_eq!(cfg.body["password_min_length"], 16);
}

/// An admin without 2FA signs in to a session that may only enrol TOTP (require_2fa_for_admins).
/// It runs as `anon`, and it must not be the admin to any policy either: a policy without a
/// `TO` clause that reads `auth.uid()` (the demo's `notes_select`) handed it the admin's private
/// notes, and `auth.role()` said `admin` (found by a red-team review). Enrolling still works.
#[tokio::test]
async fn an_enrolment_only_session_sees_no_data_of_its_admin_and_can_still_enrol() {
    let app = TestApp::start().await;
    let password = "Admin-password-1";
    let admin_id: String = app
        .admin
        .query_one(
            "SELECT (auth.create_user('boss@example.com', $1, 'admin'))::text",
            &[&password],
        )
        .await
        .unwrap()
        .get(0);
    app.admin
        .execute(
            "INSERT INTO public.notes (user_id, title, is_public) VALUES ($1::text::uuid, 'ADMIN PRIVATE NOTE', false)",
            &[&admin_id],
        )
        .await
        .unwrap();
    let r = sign_in(&app, "boss@example.com", password).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["mfa_enrollment_required"], true, "{}", r.text);
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    // A refresh keeps saying so.
    let refreshed = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": r.body["refresh_token"]}),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(
        refreshed.body["mfa_enrollment_required"], true,
        "{}",
        refreshed.text
    );

    let notes = app
        .get("/api/v1/tables/notes?select=title", Some(&token))
        .await;
    assert_eq!(notes.status, 200, "{}", notes.text);
    assert!(
        !notes.text.contains("ADMIN PRIVATE NOTE"),
        "the enrolment-only session read its admin's private note: {}",
        notes.text
    );
    // What a function sees of the session: no user, the role it runs as, no claims, and a
    // PostgREST-style claims setting without the admin's id.
    app.admin
        .batch_execute(
            "CREATE FUNCTION public.whoami() RETURNS jsonb LANGUAGE sql AS $$
               SELECT jsonb_build_object('uid', auth.uid(), 'role', auth.role(), 'jwt', auth.jwt(),
                 'email', auth.email(), 'db_role', current_user,
                 'claims', current_setting('request.jwt.claims', true)) $$;
             GRANT EXECUTE ON FUNCTION public.whoami() TO anon;",
        )
        .await
        .unwrap();
    let mut seen = None;
    for _ in 0..50 {
        let r = app
            .post("/api/v1/rpc/whoami", Some(&token), &json!({}))
            .await;
        if r.status == 200 {
            seen = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let seen = seen.expect("whoami never became callable");
    assert_eq!(seen.body["uid"], Value::Null, "{}", seen.text);
    assert_eq!(seen.body["role"], "anon", "{}", seen.text);
    assert_eq!(seen.body["jwt"], Value::Null, "{}", seen.text);
    assert_eq!(seen.body["email"], Value::Null, "{}", seen.text);
    assert_eq!(seen.body["db_role"], "anon", "{}", seen.text);
    assert!(!seen.text.contains(&admin_id), "{}", seen.text);

    // Enrolment itself: setup, enable with a code; then a 2FA sign-in reads the note.
    let setup = app
        .request(
            Method::POST,
            "/api/v1/auth/2fa/setup",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(setup.status, 200, "{}", setup.text);
    assert!(
        setup.body["totp"]["uri"].as_str().unwrap().contains("boss"),
        "{}",
        setup.text
    );
    let secret = setup.body["totp"]["secret"].as_str().unwrap().to_owned();
    let status = app
        .request(
            Method::GET,
            "/api/v1/auth/2fa/status",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(status.status, 200, "{}", status.text);
    assert_eq!(status.body["pending"], true, "{}", status.text);
    let code = current_code(&app, &secret).await;
    // A stolen session alone cannot enable 2FA: the password is asked for (a review found
    // a thief could put their own authenticator on the account).
    let without = app
        .post(
            "/api/v1/auth/2fa/enable",
            Some(&token),
            &json!({"code": code}),
        )
        .await;
    assert_eq!(without.status, 401, "{}", without.text);
    let wrong = app
        .post(
            "/api/v1/auth/2fa/enable",
            Some(&token),
            &json!({"code": code, "password": "Not-the-password-1"}),
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.text);
    assert_eq!(wrong.body["code"], "INVALID_CREDENTIALS", "{}", wrong.text);
    let enabled = app
        .post(
            "/api/v1/auth/2fa/enable",
            Some(&token),
            &json!({"code": code, "password": password}),
        )
        .await;
    assert_eq!(enabled.status, 200, "{}", enabled.text);
    assert_eq!(
        enabled.body["backup_codes"].as_array().map(Vec::len),
        Some(10)
    );
    let step1 = sign_in(&app, "boss@example.com", password).await;
    assert_eq!(step1.body["requires_2fa"], true, "{}", step1.text);
    next_window(&app, "boss@example.com").await;
    let step2 = app
        .post(
            "/api/v1/auth/2fa/verify",
            None,
            &json!({"mfa_token": step1.body["mfa_token"], "code": current_code(&app, &secret).await}),
        )
        .await;
    assert_eq!(step2.status, 200, "{}", step2.text);
    let full = step2.body["access_token"].as_str().unwrap();
    let notes = app
        .get("/api/v1/tables/notes?select=title", Some(full))
        .await;
    assert!(notes.text.contains("ADMIN PRIVATE NOTE"), "{}", notes.text);

    // The enrolment-only session can still sign out (a review found it refused): its token
    // is refused afterwards, the full session goes on.
    let out = app
        .request(
            Method::POST,
            "/api/v1/auth/signout",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert!(
        out.status == 200 || out.status == 204,
        "{} {}",
        out.status,
        out.text
    );
    let after = app
        .get("/api/v1/tables/notes?select=title", Some(&token))
        .await;
    assert_eq!(after.status, 401, "{}", after.text);
    let still = app
        .get("/api/v1/tables/notes?select=title", Some(full))
        .await;
    assert_eq!(still.status, 200, "{}", still.text);
    // The anon key has no session to end.
    let anon = app
        .request(Method::POST, "/api/v1/auth/signout", None, None, &[])
        .await;
    assert!(
        (400..500).contains(&anon.status),
        "{} {}",
        anon.status,
        anon.text
    );
}
