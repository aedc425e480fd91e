//! Rate limiting over HTTP (issue 5): 429 in the error shape with `Retry-After` and the
//! `RateLimit-*` headers, endpoint budgets stricter than the global one (aliases sharing
//! them), `X-Forwarded-For` believed only from a trusted proxy (right-most untrusted hop),
//! per-user budgets that a forged token cannot touch, and the postgres store holding one limit
//! across two servers.
use fluxbase_tests::*;
use serde_json::json;
use std::time::{Duration, Instant};

const PW: &str = "Alice-password-1";

fn header(r: &Response, name: &str) -> Option<u64> {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

async fn get_with(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Response {
    app.request(reqwest::Method::GET, path, None, None, headers)
        .await
}

fn assert_429(r: &Response) {
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(assert_error_shape(r), "RATE_LIMITED");
    assert!(
        header(r, "retry-after").is_some_and(|s| s >= 1),
        "{:?}",
        r.headers
    );
    assert_eq!(header(r, "ratelimit-remaining"), Some(0));
}

#[tokio::test]
async fn refusal_is_429_with_headers_and_retry_after_is_the_real_wait() {
    // 20 a minute: one more every 3 s once the 20 are spent.
    let app = TestApp::start_with_yaml_extra(
        "rate_limiting:\n  per_minute: 1000\n  per_hour: 10000\n  endpoints:\n    /api/v1/auth/config: { per_minute: 20 }\n",
    )
    .await;
    for i in 0..20u64 {
        let r = app.get("/api/v1/auth/config", None).await;
        assert_eq!(r.status, 200, "request {i}: {}", r.text);
        assert_eq!(header(&r, "ratelimit-limit"), Some(20), "{:?}", r.headers);
        assert_eq!(header(&r, "ratelimit-remaining"), Some(19 - i));
        assert!(r.headers.get("retry-after").is_none());
    }
    let refused = app.get("/api/v1/auth/config", None).await;
    let refused_at = Instant::now();
    assert_429(&refused);
    assert_eq!(header(&refused, "ratelimit-limit"), Some(20));
    let retry_after = header(&refused, "retry-after").unwrap();
    assert!((2..=3).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&refused, "ratelimit-reset"), Some(retry_after));
    // A bit before the announced time: still refused.
    tokio::time::sleep(Duration::from_secs(retry_after) - Duration::from_millis(1200)).await;
    assert_429(&app.get("/api/v1/auth/config", None).await);
    // Then allowed, within a second of what Retry-After said.
    let allowed_after = loop {
        let r = app.get("/api/v1/auth/config", None).await;
        if r.status == 200 {
            break refused_at.elapsed();
        }
        assert_429(&r);
        assert!(
            refused_at.elapsed() < Duration::from_secs(10),
            "never allowed again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let announced = Duration::from_secs(retry_after);
    assert!(
        allowed_after + Duration::from_secs(1) >= announced
            && allowed_after <= announced + Duration::from_secs(1),
        "Retry-After said {retry_after} s, allowed after {allowed_after:?}"
    );
    // Other paths were never limited by that endpoint budget.
    assert_eq!(app.get("/api/v1/auth/2fa/status", None).await.status, 401);
}

#[tokio::test]
async fn the_login_budget_is_stricter_than_the_global_one_and_aliases_share_it() {
    // The default login budget (5 a minute); a global one of 40 an hour (per_hour, so no
    // refill during the test).
    let app =
        TestApp::start_with_yaml_extra("rate_limiting:\n  per_minute: 1000\n  per_hour: 40\n")
            .await;
    let creds = json!({"email": "nobody@example.com", "password": "Wrong-password-1"});
    for (i, path) in ["/api/v1/auth/login", "/api/v1/auth/signin"]
        .iter()
        .cycle()
        .take(5)
        .enumerate()
    {
        let r = app.post(path, None, &creds).await;
        assert_eq!(r.status, 401, "attempt {i} on {path}: {}", r.text);
        assert_eq!(header(&r, "ratelimit-limit"), Some(5));
    }
    for path in ["/api/v1/auth/login", "/api/v1/auth/signin"] {
        let r = app.post(path, None, &creds).await;
        assert_429(&r);
        assert_eq!(header(&r, "ratelimit-limit"), Some(5), "{path}");
        // The minute budget: up to a minute (GCRA: 12 s for the next attempt).
        assert!(header(&r, "retry-after").unwrap() <= 60);
    }
    // The global budget still has room: 5 counted, 35 left.
    for i in 0..35 {
        let r = app.get("/api/v1/auth/config", None).await;
        assert_eq!(r.status, 200, "config request {i}: {}", r.text);
        assert_eq!(header(&r, "ratelimit-limit"), Some(40));
    }
    let r = app.get("/api/v1/auth/config", None).await;
    assert_429(&r);
    assert_eq!(header(&r, "ratelimit-limit"), Some(40));
    assert!(header(&r, "retry-after").unwrap() > 60, "{:?}", r.headers);
    // /health is never limited (load balancers poll it).
    assert_eq!(app.get("/health", None).await.status, 200);
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_does_not_change_the_key() {
    let app = TestApp::start_with_server_keys(
        "  trusted_proxies: [\"10.0.0.0/8\"]\n",
        "rate_limiting:\n  endpoints:\n    /api/v1/auth/config: { per_hour: 3 }\n",
    )
    .await;
    for i in 0..3 {
        let spoofed = format!("203.0.113.{i}");
        let r = get_with(
            &app,
            "/api/v1/auth/config",
            &[
                ("x-forwarded-for", &spoofed),
                ("forwarded", &format!("for={spoofed}")),
            ],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = get_with(
        &app,
        "/api/v1/auth/config",
        &[("x-forwarded-for", "198.51.100.77")],
    )
    .await;
    assert_429(&r);
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_proxy_is_the_key_right_most_untrusted_hop() {
    let app = TestApp::start_with_server_keys(
        "  trusted_proxies: [\"127.0.0.1/32\"]\n",
        "rate_limiting:\n  endpoints:\n    /api/v1/auth/config: { per_hour: 3 }\n",
    )
    .await;
    for _ in 0..3 {
        let r = get_with(
            &app,
            "/api/v1/auth/config",
            &[("x-forwarded-for", "198.51.100.1")],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_429(
        &get_with(
            &app,
            "/api/v1/auth/config",
            &[("x-forwarded-for", "198.51.100.1")],
        )
        .await,
    );
    // The client of that proxy cannot escape by prepending made-up hops: the right-most
    // untrusted hop is still 198.51.100.1.
    assert_429(
        &get_with(
            &app,
            "/api/v1/auth/config",
            &[("x-forwarded-for", "6.6.6.6, 198.51.100.1")],
        )
        .await,
    );
    // Another client behind the proxy has its own budget; so does the proxy itself.
    let other = get_with(
        &app,
        "/api/v1/auth/config",
        &[("x-forwarded-for", "198.51.100.2")],
    )
    .await;
    assert_eq!(other.status, 200, "{}", other.text);
    assert_eq!(header(&other, "ratelimit-remaining"), Some(2));
    let direct = app.get("/api/v1/auth/config", None).await;
    assert_eq!(direct.status, 200, "{}", direct.text);
    // Only X-Forwarded-For (the default server.forwarded_header) is read: a Forwarded header
    // the client sent through the proxy does not pick the key.
    let forged = get_with(
        &app,
        "/api/v1/auth/config",
        &[
            ("forwarded", "for=9.9.8.1"),
            ("x-forwarded-for", "198.51.100.2"),
        ],
    )
    .await;
    assert_eq!(forged.status, 200);
    assert_eq!(header(&forged, "ratelimit-remaining"), Some(1));
    // An IPv6 client is one key for its whole /64: another address in it shares the budget.
    let v6 = get_with(
        &app,
        "/api/v1/auth/config",
        &[("x-forwarded-for", "2001:db8::5")],
    )
    .await;
    assert_eq!(header(&v6, "ratelimit-remaining"), Some(2));
    let same_64 = get_with(
        &app,
        "/api/v1/auth/config",
        &[("x-forwarded-for", "2001:db8::6")],
    )
    .await;
    assert_eq!(header(&same_64, "ratelimit-remaining"), Some(1));
    // The lockout counts the same client address: a sign-in through the proxy is recorded
    // under the forwarded IP.
    let r = app
        .request(
            reqwest::Method::POST,
            "/api/v1/auth/signin",
            None,
            Some(&json!({"email": "ghost@example.com", "password": "Wrong-password-1"})),
            &[("x-forwarded-for", "198.51.100.9")],
        )
        .await;
    assert_eq!(r.status, 401);
    let ip: String = app
        .admin
        .query_one(
            "SELECT host(ip) FROM auth.events WHERE event = 'auth.login' ORDER BY id DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ip, "198.51.100.9");
}

#[tokio::test]
async fn with_forwarded_header_forwarded_only_rfc_7239_is_read() {
    let app = TestApp::start_with_server_keys(
        "  trusted_proxies: [\"127.0.0.1/32\"]\n  forwarded_header: forwarded\n",
        "rate_limiting:\n  endpoints:\n    /api/v1/auth/config: { per_hour: 3 }\n",
    )
    .await;
    let first = get_with(
        &app,
        "/api/v1/auth/config",
        &[("forwarded", "for=\"[2001:db8::5]:4711\"")],
    )
    .await;
    assert_eq!(header(&first, "ratelimit-remaining"), Some(2));
    // The same client with a made-up X-Forwarded-For: still its Forwarded address.
    let second = get_with(
        &app,
        "/api/v1/auth/config",
        &[
            ("forwarded", "for=\"[2001:db8::5]:4711\""),
            ("x-forwarded-for", "203.0.113.9"),
        ],
    )
    .await;
    assert_eq!(header(&second, "ratelimit-remaining"), Some(1));
}

#[tokio::test]
async fn per_user_budget_follows_the_token_and_a_forged_one_cannot_spend_it() {
    // Clients come through the trusted local proxy from many addresses, so the IP budgets
    // never bind; the per-user one (5 an hour) does.
    let app = TestApp::start_with_server_keys(
        "  trusted_proxies: [\"127.0.0.1/32\"]\n",
        "rate_limiting:\n  per_user: { per_hour: 5 }\n",
    )
    .await;
    let (alice, alice_id) = app.sign_up("alice@example.com", PW).await;
    let (bob, _) = app.sign_up("bob@example.com", "Bob-password-22").await;
    // Tokens naming Alice, signed with a made-up key: refused, and counted elsewhere.
    for i in 0..8 {
        let forged = forge_with(
            "not-the-secret-not-the-secret-not-the-secret",
            jsonwebtoken::Algorithm::HS256,
            json!({"sub": alice_id, "jti": format!("forged-{i}")}),
        );
        let xff = format!("192.0.2.{}", 100 + i);
        let r = app
            .request(
                reqwest::Method::GET,
                "/api/v1/auth/user",
                Some(&forged),
                None,
                &[("x-forwarded-for", &xff)],
            )
            .await;
        assert_eq!(r.status, 401, "{}", r.text);
    }
    // Alice still has her whole budget, from any address.
    for i in 0..5 {
        let xff = format!("192.0.2.{i}");
        let r = app
            .request(
                reqwest::Method::GET,
                "/api/v1/auth/user",
                Some(&alice),
                None,
                &[("x-forwarded-for", &xff)],
            )
            .await;
        assert_eq!(r.status, 200, "request {i}: {}", r.text);
    }
    let r = app
        .request(
            reqwest::Method::GET,
            "/api/v1/auth/user",
            Some(&alice),
            None,
            &[("x-forwarded-for", "192.0.2.50")],
        )
        .await;
    assert_429(&r);
    assert_eq!(header(&r, "ratelimit-limit"), Some(5));
    // Bob, and anonymous requests from the same address, are untouched.
    let r = app
        .request(
            reqwest::Method::GET,
            "/api/v1/auth/user",
            Some(&bob),
            None,
            &[("x-forwarded-for", "192.0.2.50")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = get_with(
        &app,
        "/api/v1/tables/notes?select=title",
        &[("x-forwarded-for", "192.0.2.50")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Waits out the end of the hour when fewer than `margin` seconds are left (a fixed window
/// must not reset in the middle of a test), then returns the seconds left in it.
async fn seconds_left_in_hour(margin: i64) -> i64 {
    let left = 3600 - now_secs() % 3600;
    if left < margin {
        tokio::time::sleep(Duration::from_secs(left as u64 + 1)).await;
        return 3600 - now_secs() % 3600;
    }
    left
}

#[tokio::test]
async fn the_postgres_store_holds_one_limit_across_two_servers() {
    let app = TestApp::start_with_yaml_extra(
        "rate_limiting:\n  store: postgres\n  endpoints:\n    /api/v1/auth/config: { per_hour: 6 }\n",
    )
    .await;
    let second = app.another_server().await;
    seconds_left_in_hour(20).await;
    // 16 requests at once, spread over both servers: exactly 6 pass.
    let bases = [app.base.clone(), second.base.clone()];
    let requests = (0..16).map(|i| {
        let url = format!("{}/api/v1/auth/config", bases[i % 2]);
        let http = app.http.clone();
        async move { into_response(http.get(url).send().await.unwrap()).await }
    });
    let responses = futures::future::join_all(requests).await;
    let passed = responses.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        passed,
        6,
        "{:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in responses.iter().filter(|r| r.status != 200) {
        assert_429(r);
    }
    // Both servers refuse now, and Retry-After is the end of the hour's window.
    for base in &bases {
        let r = into_response(
            app.http
                .get(format!("{base}/api/v1/auth/config"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_429(&r);
        let left = 3600 - now_secs() % 3600;
        let retry = header(&r, "retry-after").unwrap() as i64;
        assert!(
            (retry - left).abs() <= 1,
            "Retry-After {retry}, window ends in {left}"
        );
    }
    // The counters name the budget and the address, never a token; only the server's role
    // may touch them.
    let keys: Vec<String> = app
        .admin
        .query("SELECT key FROM fluxbase.rate_limit_windows", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        keys.contains(&"ip:/api/v1/auth/config:127.0.0.1".to_owned()),
        "{keys:?}"
    );
    for role in ["anon", "authenticated", "service_role"] {
        let may: bool = app
            .admin
            .query_one(
                "SELECT has_function_privilege($1, 'fluxbase.rate_limit_hit(text, integer, integer)', 'EXECUTE') \
                 OR has_table_privilege($1, 'fluxbase.rate_limit_windows', 'SELECT, INSERT, UPDATE, DELETE')",
                &[&role],
            )
            .await
            .unwrap()
            .get(0);
        assert!(!may, "{role} may use the rate-limit counters");
    }
    // A request running as an API role cannot call it either (RPC is limited to exposed
    // schemas; from SQL, the role guard and the missing grant both refuse).
    let server_role = app.cluster.as_server_role(&app.db).await;
    let err = server_role
        .batch_execute(
            "BEGIN; SELECT auth.authenticate(NULL); SELECT fluxbase.rate_limit_hit('ip:global:1.2.3.4', 1, 60);",
        )
        .await;
    assert!(err.is_err(), "anon called rate_limit_hit");
}

#[tokio::test]
async fn a_browser_can_read_the_429_and_preflights_are_not_counted() {
    let app = TestApp::start_with_server_keys(
        "  cors: { allowed_origins: [\"https://app.example.com\"] }\n",
        "rate_limiting:\n  endpoints:\n    /api/v1/auth/config: { per_hour: 2 }\n",
    )
    .await;
    let origin = [("origin", "https://app.example.com")];
    for _ in 0..3 {
        let preflight = app
            .request(
                reqwest::Method::OPTIONS,
                "/api/v1/auth/config",
                None,
                None,
                &[
                    ("origin", "https://app.example.com"),
                    ("access-control-request-method", "GET"),
                ],
            )
            .await;
        assert!(preflight.status < 300, "{}", preflight.status);
    }
    for _ in 0..2 {
        let r = get_with(&app, "/api/v1/auth/config", &origin).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = get_with(&app, "/api/v1/auth/config", &origin).await;
    assert_429(&r);
    assert_eq!(
        r.headers
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://app.example.com"),
        "{:?}",
        r.headers
    );
    // The security headers are on it too.
    assert_eq!(
        r.headers
            .get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff")
    );
}
