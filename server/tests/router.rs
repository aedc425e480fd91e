//! The router without a database: everything decided before the first SQL statement.
//!
//! The pool points at a port nothing listens on; deadpool only connects on demand, so the
//! router builds, and routes that would need the database answer 503 in the error shape.
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use fluxbase_server::{app, AppState, Config};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const CONFIG: &str = r#"
server: { host: 127.0.0.1, port: 0 }
database: { url: "postgres://fluxbase_server:unit-test-password@127.0.0.1:1/fluxbase", max_connections: 2 }
api: { exposed_schemas: ["public", "app"] }
"#;

fn router() -> Router {
    let config = Config::from_yaml_str(CONFIG).expect("test config");
    app(AppState::lazy(&config).expect("lazy state"))
}

async fn send(req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = router().oneshot(req).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    (status, headers, body)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn post_json(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// The error shape, with the request id matching the `X-Request-Id` header.
fn assert_error_shape(headers: &axum::http::HeaderMap, body: &Value, code: &str) {
    let obj = body
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {body}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["code", "details", "error", "hint", "message", "request_id"]
    );
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["error"], body["message"]);
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(body["details"].is_null() && body["hint"].is_null());
    let id = headers
        .get("x-request-id")
        .expect("X-Request-Id")
        .to_str()
        .unwrap();
    assert_eq!(body["request_id"], id);
    assert!(
        uuid::Uuid::parse_str(id).is_ok(),
        "request id is a UUID: {id}"
    );
    assert_eq!(
        headers.get(header::CONTENT_TYPE).unwrap(),
        "application/json"
    );
}

#[tokio::test]
async fn unknown_route_is_404_in_the_shape() {
    for uri in [
        "/nope",
        "/api/v1/nope",
        "/api/v1/tables",
        "/api/v1/tables/a/b/c",
    ] {
        let (status, headers, body) = send(get(uri)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_error_shape(&headers, &body, "NOT_FOUND");
    }
}

#[tokio::test]
async fn request_ids_are_fresh_and_not_taken_from_the_client() {
    let req = Request::get("/nope")
        .header("x-request-id", "forged")
        .body(Body::empty())
        .unwrap();
    let (_, h1, b1) = send(req).await;
    let (_, h2, _) = send(get("/nope")).await;
    assert_ne!(b1["request_id"], "forged");
    assert_ne!(h1.get("x-request-id"), h2.get("x-request-id"));
}

#[tokio::test]
async fn wrong_method_is_405_in_the_shape() {
    let req = Request::builder()
        .method(Method::PUT)
        .uri("/api/v1/auth/signin")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = send(req).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error_shape(&headers, &body, "METHOD_NOT_ALLOWED");
    let req = Request::builder()
        .method(Method::PUT)
        .uri("/api/v1/tables/posts")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(req).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn malformed_json_is_400_invalid_json() {
    for body in ["{", "not json", "", "{\"email\": }"] {
        let (status, headers, json) = send(post_json("/api/v1/auth/signin", body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_error_shape(&headers, &json, "INVALID_JSON");
    }
    let (status, _, json) = send(post_json("/api/v1/tables/posts", "[1,")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["code"], "INVALID_JSON");
}

#[tokio::test]
async fn wrong_content_type_is_400_invalid_json() {
    let req = Request::post("/api/v1/auth/signup")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("{\"email\":\"a@b.co\",\"password\":\"x\"}"))
        .unwrap();
    let (status, headers, body) = send(req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_shape(&headers, &body, "INVALID_JSON");
    let req = Request::post("/api/v1/auth/signin")
        .body(Body::from("{}"))
        .unwrap();
    let (status, _, body) = send(req).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_JSON"))
    );
}

#[tokio::test]
async fn unknown_body_fields_are_refused() {
    let (status, headers, body) = send(post_json(
        "/api/v1/auth/signup",
        r#"{"email":"a@b.co","password":"pw","role":"service_role"}"#,
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_shape(&headers, &body, "VALIDATION_ERROR");
    assert!(body["message"].as_str().unwrap().contains("role"));
    let (status, _, body) = send(post_json(
        "/api/v1/auth/login",
        r#"{"email":5,"password":"pw"}"#,
    ))
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("VALIDATION_ERROR"))
    );
}

#[tokio::test]
async fn current_user_needs_a_bearer_token() {
    let (status, headers, body) = send(get("/api/v1/auth/user")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error_shape(&headers, &body, "UNAUTHORIZED");
    assert_eq!(headers.get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
    for auth in ["Basic dXNlcjpwdw==", "Bearer", "Token abc", "Bearer a b"] {
        let req = Request::get("/api/v1/auth/user")
            .header(header::AUTHORIZATION, auth)
            .body(Body::empty())
            .unwrap();
        let (status, headers, body) = send(req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth}");
        assert_error_shape(&headers, &body, "INVALID_TOKEN");
    }
}

#[tokio::test]
async fn malformed_authorization_is_refused_on_tables_too() {
    let req = Request::get("/api/v1/tables/posts")
        .header(header::AUTHORIZATION, "Basic abc")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(req).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("INVALID_TOKEN"))
    );
}

#[tokio::test]
async fn unexposed_schemas_are_not_found() {
    for uri in [
        "/api/v1/tables/auth/users",
        "/api/v1/tables/fluxbase/anything",
        "/api/v1/tables/pg_catalog/pg_authid",
        "/api/v1/tables/information_schema/tables",
        "/api/v1/tables/other/posts",
    ] {
        let (status, headers, body) = send(get(uri)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_error_shape(&headers, &body, "TABLE_NOT_FOUND");
    }
    let req = Request::delete("/api/v1/tables/auth/users")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(req).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("TABLE_NOT_FOUND"))
    );
}

#[tokio::test]
async fn database_down_is_503_in_the_shape() {
    let (status, headers, body) = send(get("/api/v1/tables/posts")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_error_shape(&headers, &body, "DATABASE_UNAVAILABLE");
    let (status, _, body) = send(post_json(
        "/api/v1/auth/signin",
        r#"{"email":"a@b.co","password":"pw"}"#,
    ))
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "DATABASE_UNAVAILABLE");
    assert!(!body["message"].as_str().unwrap().contains("pw"));
}

#[tokio::test]
async fn health_reports_degraded_without_database() {
    let started = std::time::Instant::now();
    let (status, headers, body) = send(get("/health")).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["services"]["database"], "unavailable");
    let ts = body["timestamp"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).is_ok(),
        "{ts}"
    );
    assert!(headers.get("x-request-id").is_some());
}

/// The real server on port 0: a raw HTTP/1.1 request over TCP.
#[tokio::test]
async fn serve_answers_on_a_socket() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = Config::from_yaml_str(CONFIG).unwrap();
    let state = AppState::lazy(&config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(fluxbase_server::serve(listener, state));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"GET /definitely-not-here HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    server.abort();
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    assert!(response.to_ascii_lowercase().contains("x-request-id:"));
    assert!(response.contains("\"code\":\"NOT_FOUND\""));
}

fn with_bearer(mut req: Request<Body>) -> Request<Body> {
    req.headers_mut().insert(
        header::AUTHORIZATION,
        "Bearer some.token.here".parse().unwrap(),
    );
    req
}

fn patch_json(uri: &str, body: &str) -> Request<Body> {
    Request::patch(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn account_routes_need_a_bearer_token() {
    let requests = [
        Request::post("/api/v1/auth/signout")
            .body(Body::empty())
            .unwrap(),
        Request::post("/api/v1/auth/logout?scope=global")
            .body(Body::empty())
            .unwrap(),
        Request::post("/api/v1/auth/2fa/setup")
            .body(Body::empty())
            .unwrap(),
        post_json("/api/v1/auth/2fa/enable", r#"{"code":"123456"}"#),
        post_json(
            "/api/v1/auth/2fa/disable",
            r#"{"password":"pw","code":"123456"}"#,
        ),
        get("/api/v1/auth/2fa/status"),
        patch_json("/api/v1/auth/user", r#"{"user_metadata":{}}"#),
    ];
    for req in requests {
        let uri = req.uri().to_string();
        let (status, headers, body) = send(req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_error_shape(&headers, &body, "UNAUTHORIZED");
        assert_eq!(headers.get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
    }
}

#[tokio::test]
async fn sign_out_parameters_are_checked_before_the_database() {
    let cases = [
        (
            Request::post("/api/v1/auth/signout?bogus=1")
                .body(Body::empty())
                .unwrap(),
            "INVALID_PARAMETER",
        ),
        (
            post_json("/api/v1/auth/signout?scope=local", r#"{"scope":"global"}"#),
            "VALIDATION_ERROR",
        ),
        (
            post_json("/api/v1/auth/signout", r#"{"scope":"global","extra":1}"#),
            "VALIDATION_ERROR",
        ),
        (
            post_json("/api/v1/auth/signout", r#"{"scope":"#),
            "INVALID_JSON",
        ),
        (
            Request::post("/api/v1/auth/signout")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("scope=global"))
                .unwrap(),
            "INVALID_JSON",
        ),
    ];
    for (req, code) in cases {
        let (status, headers, body) = send(with_bearer(req)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{code}: {body}");
        assert_error_shape(&headers, &body, code);
    }
    // A well-formed sign-out (empty body, or a JSON body) reaches the database: 503 here.
    for req in [
        Request::post("/api/v1/auth/signout?scope=global")
            .body(Body::empty())
            .unwrap(),
        post_json("/api/v1/auth/logout", r#"{"scope":"others"}"#),
        post_json("/api/v1/auth/logout", "  "),
    ] {
        let (status, _, body) = send(with_bearer(req)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
}

#[tokio::test]
async fn patch_user_takes_only_a_json_object() {
    for (text, code) in [
        ("[1,2]", "VALIDATION_ERROR"),
        ("\"role\"", "VALIDATION_ERROR"),
        ("null", "VALIDATION_ERROR"),
        ("{", "INVALID_JSON"),
    ] {
        let (status, headers, body) =
            send(with_bearer(patch_json("/api/v1/auth/user", text))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert_error_shape(&headers, &body, code);
    }
    // An object goes to auth.update_user (which refuses unknown keys itself): 503 here.
    let (status, _, _) = send(with_bearer(patch_json(
        "/api/v1/auth/user",
        r#"{"role":"service_role"}"#,
    )))
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn new_auth_bodies_refuse_unknown_fields() {
    for (uri, text) in [
        ("/api/v1/auth/refresh", r#"{"refresh_token":"t","x":1}"#),
        (
            "/api/v1/auth/2fa/verify",
            r#"{"mfa_token":"t","code":"1","aal":"aal2"}"#,
        ),
        (
            "/api/v1/auth/password/reset",
            r#"{"email":"a@b.co","role":"x"}"#,
        ),
        (
            "/api/v1/auth/password/reset/confirm",
            r#"{"token":"t","new_password":"p","email":"a@b.co"}"#,
        ),
        (
            "/api/v1/auth/password/change",
            r#"{"password_change_token":"t","new_password":"p","user_id":"u"}"#,
        ),
    ] {
        let (status, headers, body) = send(post_json(uri, text)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_error_shape(&headers, &body, "VALIDATION_ERROR");
    }
    let (status, _, body) = send(with_bearer(post_json(
        "/api/v1/auth/2fa/enable",
        r#"{"code":"1","secret":"s"}"#,
    )))
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("VALIDATION_ERROR"))
    );
}

#[tokio::test]
async fn password_reset_checks_redirect_before_the_database() {
    // No allowlist configured: any redirect_to is refused, before any database work (the
    // database is down here, so reaching it would be a 503).
    let (status, headers, body) = send(post_json(
        "/api/v1/auth/password/reset",
        r#"{"email":"a@example.com","redirect_to":"https://evil.test/"}"#,
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_shape(&headers, &body, "INVALID_REDIRECT");
    let (status, _, body) = send(post_json("/api/v1/auth/password/reset", "{}")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("VALIDATION_ERROR"))
    );
    let (status, _, body) = send(post_json(
        "/api/v1/auth/password/reset",
        r#"{"email":"a@example.com"}"#,
    ))
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

#[tokio::test]
async fn password_reset_allowlist_from_config() {
    let config = Config::from_yaml_str(&format!(
        "{CONFIG}auth:\n  password_reset:\n    redirect_allowlist: [\"https://app.example.com\"]\n"
    ))
    .unwrap();
    let router = app(AppState::lazy(&config).unwrap());
    let reset = |redirect: &str| {
        post_json(
            "/api/v1/auth/password/reset",
            &format!(r#"{{"email":"a@example.com","redirect_to":"{redirect}"}}"#),
        )
    };
    let refused = router
        .clone()
        .oneshot(reset("https://app.example.com.evil.test/"))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    // An allowed redirect passes the check and reaches the (down) database.
    let allowed = router
        .oneshot(reset("https://app.example.com/reset"))
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn anonymous_auth_routes_reach_the_database() {
    for req in [
        get("/api/v1/auth/config"),
        post_json("/api/v1/auth/refresh", r#"{"refresh_token":"t"}"#),
        post_json(
            "/api/v1/auth/2fa/verify",
            r#"{"mfa_token":"t","code":"123456"}"#,
        ),
        post_json(
            "/api/v1/auth/password/reset/confirm",
            r#"{"token":"t","new_password":"p"}"#,
        ),
        post_json(
            "/api/v1/auth/password/change",
            r#"{"password_change_token":"t","new_password":"p"}"#,
        ),
    ] {
        let uri = req.uri().to_string();
        let (status, headers, body) = send(req).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_error_shape(&headers, &body, "DATABASE_UNAVAILABLE");
    }
}

#[tokio::test]
async fn auth_route_methods() {
    for (method, uri) in [
        (Method::GET, "/api/v1/auth/2fa/setup"),
        (Method::POST, "/api/v1/auth/2fa/status"),
        (Method::GET, "/api/v1/auth/refresh"),
        (Method::POST, "/api/v1/auth/config"),
        (Method::DELETE, "/api/v1/auth/user"),
        (Method::GET, "/api/v1/auth/password/reset"),
    ] {
        let req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = send(req).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
    }
}

#[tokio::test]
async fn lazy_state_does_not_apply_auth_settings() {
    // The database is unreachable: a lazy state that tried to apply settings would fail.
    let config = Config::from_yaml_str(&format!(
        "{CONFIG}auth:\n  max_login_attempts: 3\n  lockout_type: email\n"
    ))
    .unwrap();
    assert_eq!(config.auth.database_settings().len(), 2);
    assert!(AppState::lazy(&config).is_ok());
    // build_state does apply them, so it needs the database.
    assert!(fluxbase_server::build_state(&config).await.is_err());
}

/// The tables API refuses bad headers and query strings before it needs the database (the
/// pool here points at nothing: anything reaching it would be 503).
#[tokio::test]
async fn tables_headers_are_checked_before_the_database() {
    let with = |name: &str, value: &str| {
        Request::get("/api/v1/tables/posts")
            .header(name, value)
            .body(Body::empty())
            .unwrap()
    };
    for (name, value, status, code) in [
        (
            "accept",
            "text/html",
            StatusCode::NOT_ACCEPTABLE,
            "NOT_ACCEPTABLE",
        ),
        (
            "accept",
            "application/json;q=0",
            StatusCode::NOT_ACCEPTABLE,
            "NOT_ACCEPTABLE",
        ),
        (
            "prefer",
            "handling=strict, nonsense",
            StatusCode::BAD_REQUEST,
            "INVALID_PREFERENCE",
        ),
        (
            "range",
            "0-9; drop table posts",
            StatusCode::BAD_REQUEST,
            "INVALID_RANGE",
        ),
        (
            "range",
            "9-0",
            StatusCode::RANGE_NOT_SATISFIABLE,
            "RANGE_NOT_SATISFIABLE",
        ),
        (
            "range-unit",
            "bytes",
            StatusCode::BAD_REQUEST,
            "INVALID_RANGE",
        ),
    ] {
        let (got, headers, body) = send(with(name, value)).await;
        assert_eq!(got, status, "{name}: {value}: {body}");
        assert_error_shape(&headers, &body, code);
    }
    // Lenient preferences and good headers get as far as the (absent) database.
    let (status, _, body) = send(with("prefer", "nonsense, count=exact")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("DATABASE_UNAVAILABLE")
        )
    );
}

/// HEAD is routed like GET.
#[tokio::test]
async fn tables_answer_head() {
    let req = Request::head("/api/v1/tables/auth/users")
        .body(Body::empty())
        .unwrap();
    let response = router().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
