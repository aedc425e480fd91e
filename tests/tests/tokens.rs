//! Security property 1 over HTTP: no forged, expired, not-yet-valid, wrong-audience,
//! wrong-issuer, `alg: none`, wrongly-typed or foreign-key token gets past
//! `auth.authenticate`, on any route that takes a token, and nothing is written.
use base64::Engine;
use fluxbase_tests::*;
use reqwest::Method;
use serde_json::json;

fn b64(v: &serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Every kind of bad token, named, built against this app's real secret where that matters.
fn bad_tokens(app: &TestApp, real: &str) -> Vec<(&'static str, String)> {
    let parts: Vec<&str> = real.split('.').collect();
    let mut sig = parts[2].to_owned();
    let first = if sig.starts_with('A') { "B" } else { "A" };
    sig.replace_range(0..1, first);
    let other_payload = b64(&claims(json!({"role": "service_role"})));
    vec![
        (
            "tampered signature",
            format!("{}.{}.{sig}", parts[0], parts[1]),
        ),
        (
            "tampered payload",
            format!("{}.{other_payload}.{}", parts[0], parts[2]),
        ),
        (
            "expired",
            app.forge(json!({"exp": now_secs() - 60, "iat": now_secs() - 660})),
        ),
        ("not yet valid", app.forge(json!({"nbf": now_secs() + 600}))),
        ("wrong audience", app.forge(json!({"aud": "someone-else"}))),
        (
            "wrong issuer",
            app.forge(json!({"iss": "https://evil.example"})),
        ),
        (
            "refresh used as access",
            app.forge(json!({"token_type": "refresh"})),
        ),
        ("no token type", app.forge(json!({"token_type": null}))),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                b64(&claims(json!({"role": "service_role"})))
            ),
        ),
        (
            "HS512 with the real secret",
            forge_with(
                &app.cluster.jwt_secret,
                jsonwebtoken::Algorithm::HS512,
                json!({}),
            ),
        ),
        (
            "another secret",
            forge_with(
                "an-entirely-different-secret-of-enough-length",
                jsonwebtoken::Algorithm::HS256,
                json!({}),
            ),
        ),
        ("garbage", "not-a-jwt".to_owned()),
        ("empty segments", "..".to_owned()),
    ]
}

#[tokio::test]
async fn bad_tokens_get_401_on_every_route_and_change_nothing() {
    let app = TestApp::start().await;
    let (real, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    let note = json!({"title": "should never be written"});
    let metadata = json!({"user_metadata": {"pwned": true}});
    let code = json!({"code": "123456"});
    let disable = json!({"password": "Alice-password-1", "code": "123456"});
    let routes: Vec<(Method, &str, Option<&serde_json::Value>)> = vec![
        (Method::GET, "/api/v1/auth/user", None),
        (Method::GET, "/api/v1/tables/notes", None),
        (Method::GET, "/api/v1/tables/public/notes", None),
        (Method::POST, "/api/v1/tables/notes", Some(&note)),
        (Method::PATCH, "/api/v1/tables/notes?id=eq.1", Some(&note)),
        (Method::DELETE, "/api/v1/tables/notes?id=eq.1", None),
        (Method::PATCH, "/api/v1/auth/user", Some(&metadata)),
        (Method::POST, "/api/v1/auth/signout", None),
        (Method::POST, "/api/v1/auth/logout?scope=global", None),
        (Method::POST, "/api/v1/auth/2fa/setup", None),
        (Method::POST, "/api/v1/auth/2fa/enable", Some(&code)),
        (Method::POST, "/api/v1/auth/2fa/disable", Some(&disable)),
        (Method::GET, "/api/v1/auth/2fa/status", None),
    ];
    for (name, token) in bad_tokens(&app, &real) {
        for (method, path, body) in &routes {
            let r = app
                .request(method.clone(), path, Some(&token), *body, &[])
                .await;
            assert_eq!(r.status, 401, "{name} on {method} {path}: {}", r.text);
            assert_eq!(
                assert_error_shape(&r),
                "INVALID_TOKEN",
                "{name} on {method} {path}"
            );
            // One generic message: the reason stays in the database log.
            assert_eq!(r.body["message"], "Invalid or expired token", "{name}");
        }
    }
    let count: i64 = app
        .admin
        .query_one("SELECT count(*) FROM public.notes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0, "a refused request wrote a row");
}

#[tokio::test]
async fn the_real_token_works_on_the_same_routes() {
    // The control for the test above: the same routes accept the genuine token.
    let app = TestApp::start().await;
    let (real, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    assert_eq!(app.get("/api/v1/auth/user", Some(&real)).await.status, 200);
    assert_eq!(
        app.get("/api/v1/tables/notes", Some(&real)).await.status,
        200
    );
    let r = app
        .post("/api/v1/tables/notes", Some(&real), &json!({"title": "ok"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn a_non_bearer_authorization_header_is_refused() {
    let app = TestApp::start().await;
    for value in ["Basic YWxpY2U6cHc=", "Bearer", "Bearer  ", "token abc"] {
        let r = app
            .request(
                Method::GET,
                "/api/v1/tables/notes",
                None,
                None,
                &[("Authorization", value)],
            )
            .await;
        assert_eq!(r.status, 401, "Authorization: {value:?}: {}", r.text);
        assert_error_shape(&r);
    }
}

#[tokio::test]
async fn user_endpoint_without_a_token_is_401() {
    let app = TestApp::start().await;
    let r = app.get("/api/v1/auth/user", None).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_error_shape(&r);
}

#[tokio::test]
async fn a_forged_service_role_token_cannot_bypass_rls() {
    // The payload claims service_role; the signature belongs to a normal user's token.
    let app = TestApp::start().await;
    let (alice, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    app.post(
        "/api/v1/tables/notes",
        Some(&alice),
        &json!({"title": "secret"}),
    )
    .await;
    let parts: Vec<&str> = alice.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(&claims(json!({"role": "service_role"}))),
        parts[2]
    );
    let r = app.get("/api/v1/tables/notes", Some(&forged)).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(!r.text.contains("secret"));
}
