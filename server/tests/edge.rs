//! The edge rules through the router, without a database: security headers, CORS, the body
//! limit and the request timeout. Every route used here answers before the first SQL
//! statement (or is refused by the edge before it could reach one).
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use fluxbase_server::{app, AppState, Config};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const BASE: &str = r#"
database: { url: "postgres://fluxbase_server:unit-test-password@127.0.0.1:1/fluxbase", max_connections: 2 }
"#;

fn router_with(extra: &str) -> Router {
    let config = Config::from_yaml_str(&format!("{BASE}{extra}")).expect("test config");
    app(AppState::lazy(&config).expect("lazy state"))
}

async fn send_to(router: Router, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = router.oneshot(req).await.expect("infallible");
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

async fn send(req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    send_to(router_with(""), req).await
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().expect("ASCII header"))
}

/// The error shape with `code`, its request id equal to `X-Request-Id`.
fn assert_error(headers: &HeaderMap, body: &Value, code: &str) {
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["error"], body["message"]);
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(body["details"].is_null() && body["hint"].is_null());
    assert_eq!(
        body["request_id"].as_str(),
        header(headers, "x-request-id"),
        "{body}"
    );
    assert_eq!(header(headers, "content-type"), Some("application/json"));
}

fn assert_default_security_headers(headers: &HeaderMap, what: &str) {
    assert_eq!(
        header(headers, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        header(headers, "referrer-policy"),
        Some("strict-origin-when-cross-origin"),
        "{what}"
    );
    assert_eq!(header(headers, "x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        header(headers, "content-security-policy"),
        Some("default-src 'none'; frame-ancestors 'none'"),
        "{what}"
    );
    // No TLS: never HSTS.
    assert!(headers.get("strict-transport-security").is_none(), "{what}");
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn post_json(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

#[tokio::test]
async fn security_headers_on_every_kind_of_response() {
    let cases = [
        (get("/nope"), StatusCode::NOT_FOUND),
        (
            Request::put("/api/v1/auth/signin")
                .body(Body::empty())
                .unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            post_json("/api/v1/auth/signin", "{"),
            StatusCode::BAD_REQUEST,
        ),
        (get("/api/v1/auth/user"), StatusCode::UNAUTHORIZED),
        // The database is down: a 503 (and /health's own, non-error-shaped body).
        (get("/api/v1/tables/posts"), StatusCode::SERVICE_UNAVAILABLE),
        (get("/health"), StatusCode::SERVICE_UNAVAILABLE),
        // OPTIONS without CORS configured is an ordinary (405) request.
        (
            Request::options("/api/v1/auth/signin")
                .header(header::ORIGIN, "https://app.example.com")
                .body(Body::empty())
                .unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (req, expected) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let (status, headers, _) = send(req).await;
        assert_eq!(status, expected, "{what}");
        assert_default_security_headers(&headers, &what);
    }
    // A 2xx too: a CORS preflight answered by the edge itself.
    let router =
        router_with("server: { cors: { allowed_origins: [\"https://app.example.com\"] } }\n");
    let (status, headers, _) = send_to(router, preflight("https://app.example.com", "POST")).await;
    assert_eq!(status, StatusCode::OK);
    assert_default_security_headers(&headers, "preflight");
}

#[tokio::test]
async fn security_headers_follow_the_config() {
    let router = router_with(
        "security:\n  headers:\n    content_security_policy: \"default-src 'self'\"\n    x_frame_options: SAMEORIGIN\n    referrer_policy: no-referrer\n    hsts: { max_age: 600 }\n",
    );
    let (status, headers, body) = send_to(router, get("/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&headers, &body, "NOT_FOUND");
    assert_eq!(
        header(&headers, "content-security-policy"),
        Some("default-src 'self'")
    );
    assert_eq!(header(&headers, "x-frame-options"), Some("SAMEORIGIN"));
    assert_eq!(header(&headers, "referrer-policy"), Some("no-referrer"));
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    // Configured, but there is no TLS: still no HSTS.
    assert!(headers.get("strict-transport-security").is_none());
}

#[tokio::test]
async fn no_cors_headers_by_default() {
    let req = Request::get("/nope")
        .header(header::ORIGIN, "https://app.example.com")
        .body(Body::empty())
        .unwrap();
    let (_, headers, _) = send(req).await;
    let cors: Vec<_> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "{cors:?}");
}

const CORS: &str = r#"server:
  cors:
    allowed_origins: ["https://app.example.com", "http://localhost:3000"]
    allowed_methods: [GET, POST]
    allowed_headers: [authorization, content-type]
    allow_credentials: true
    max_age: 1234
"#;

fn with_origin(mut req: Request<Body>, origin: &str) -> Request<Body> {
    req.headers_mut()
        .insert(header::ORIGIN, origin.parse().unwrap());
    req
}

fn preflight(origin: &str, method: &str) -> Request<Body> {
    Request::options("/api/v1/auth/signin")
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, method)
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization,content-type",
        )
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn cors_allows_listed_origins_exactly() {
    let router = router_with(CORS);
    for origin in ["https://app.example.com", "http://localhost:3000"] {
        let (status, headers, body) =
            send_to(router.clone(), with_origin(get("/nope"), origin)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // The error body is readable by the allowed page: CORS headers on errors too.
        assert_error(&headers, &body, "NOT_FOUND");
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            Some(origin)
        );
        assert_eq!(
            header(&headers, "access-control-allow-credentials"),
            Some("true")
        );
        let exposed = header(&headers, "access-control-expose-headers").unwrap();
        assert!(exposed.contains("x-request-id"), "{exposed}");
        assert!(header(&headers, "vary").unwrap().contains("origin"));
    }
    for origin in [
        "https://evil.example.com",
        "https://app.example.com.evil.test",
        "https://APP.example.com",
        "https://app.example.com:443",
        "http://app.example.com",
        "null",
    ] {
        let (_, headers, _) = send_to(router.clone(), with_origin(get("/nope"), origin)).await;
        assert!(
            headers.get("access-control-allow-origin").is_none(),
            "{origin}: {headers:?}"
        );
        assert!(
            headers.get("access-control-allow-credentials").is_none(),
            "{origin}: {headers:?}"
        );
        let (_, headers, _) = send_to(router.clone(), preflight(origin, "POST")).await;
        assert!(
            headers.get("access-control-allow-origin").is_none(),
            "preflight {origin}: {headers:?}"
        );
    }
}

#[tokio::test]
async fn cors_preflight_answers_with_the_config() {
    let (status, headers, body) = send_to(
        router_with(CORS),
        preflight("https://app.example.com", "POST"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_null(), "a preflight has no body: {body}");
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        header(&headers, "access-control-allow-methods"),
        Some("GET,POST")
    );
    assert_eq!(
        header(&headers, "access-control-allow-headers"),
        Some("authorization,content-type")
    );
    assert_eq!(header(&headers, "access-control-max-age"), Some("1234"));
    assert!(headers.get("x-request-id").is_some());
}

#[tokio::test]
async fn cors_wildcard_without_credentials() {
    let router = router_with("server: { cors: { allowed_origins: [\"*\"] } }\n");
    let (_, headers, _) = send_to(router, with_origin(get("/nope"), "https://any.test")).await;
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
    assert!(headers.get("access-control-allow-credentials").is_none());
}

const SMALL_LIMIT: &str = "server: { max_body_bytes: 64 }\n";

#[tokio::test]
async fn too_large_bodies_are_413_in_the_shape() {
    let big = format!(
        r#"{{"email":"{}@example.com","password":"pw"}}"#,
        "a".repeat(100)
    );
    for uri in [
        "/api/v1/auth/signin",
        "/api/v1/auth/signup",
        "/api/v1/tables/posts",
        "/api/v1/auth/signout",
    ] {
        // With a Content-Length: refused by the limit layer before any handler runs.
        let (status, headers, body) =
            send_to(router_with(SMALL_LIMIT), post_json(uri, big.clone())).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}: {body}");
        assert_error(&headers, &body, "PAYLOAD_TOO_LARGE");
        assert_default_security_headers(&headers, uri);
    }
    // Just under the limit: read, and then refused for what it is (not JSON), not its size.
    let (status, _, body) = send_to(
        router_with(SMALL_LIMIT),
        post_json("/api/v1/auth/signin", "x".repeat(64)),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_JSON"))
    );
}

#[tokio::test]
async fn a_chunked_body_is_stopped_at_the_limit() {
    // No Content-Length: the body is cut off while being read.
    let (mut tx, channel) = http_body_util::channel::Channel::<Bytes>::new(4);
    tokio::spawn(async move {
        for _ in 0..8 {
            if tx.send_data(Bytes::from(vec![b' '; 32])).await.is_err() {
                break;
            }
        }
    });
    let req = post_json("/api/v1/tables/posts", Body::new(channel));
    assert!(req.headers().get(header::CONTENT_LENGTH).is_none());
    let (status, headers, body) = send_to(router_with(SMALL_LIMIT), req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_error(&headers, &body, "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn the_default_limit_is_one_mebibyte() {
    let config = Config::from_yaml_str(BASE).unwrap();
    assert_eq!(config.server.max_body_bytes, 1_048_576);
    let (status, headers, body) =
        send(post_json("/api/v1/auth/signin", vec![b' '; 1_048_577])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&headers, &body, "PAYLOAD_TOO_LARGE");
    // Exactly at the limit is read (and is then not JSON).
    let (status, _, body) = send(post_json("/api/v1/auth/signin", vec![b' '; 1_048_576])).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_JSON"))
    );
}

#[tokio::test]
async fn a_stalled_request_times_out_in_the_shape() {
    // A body that never arrives: the handler waits for it until the timeout.
    let (tx, channel) = http_body_util::channel::Channel::<Bytes>::new(1);
    let req = post_json("/api/v1/auth/signin", Body::new(channel));
    let started = std::time::Instant::now();
    let (status, headers, body) =
        send_to(router_with("server: { request_timeout_seconds: 1 }\n"), req).await;
    let elapsed = started.elapsed();
    drop(tx);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_error(&headers, &body, "REQUEST_TIMEOUT");
    assert_default_security_headers(&headers, "timeout");
    assert!(
        elapsed >= std::time::Duration::from_millis(900)
            && elapsed < std::time::Duration::from_secs(10),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn cors_headers_on_a_413_too() {
    let router = router_with(
        "server:\n  max_body_bytes: 8\n  cors: { allowed_origins: [\"https://app.example.com\"] }\n",
    );
    let req = with_origin(
        post_json("/api/v1/auth/signin", "{\"email\": \"x\"}"),
        "https://app.example.com",
    );
    let (status, headers, body) = send_to(router, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&headers, &body, "PAYLOAD_TOO_LARGE");
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
}

/// Through the real server on a socket: a Content-Length over the limit is refused in the
/// error shape, with the security headers, before the body is sent.
#[tokio::test]
async fn serve_refuses_a_large_body_on_a_socket() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = Config::from_yaml_str(&format!("{BASE}{SMALL_LIMIT}")).unwrap();
    let state = AppState::lazy(&config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(fluxbase_server::serve(listener, state));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /api/v1/auth/signin HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    server.abort();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    let lower = response.to_ascii_lowercase();
    assert!(
        lower.contains("x-content-type-options: nosniff"),
        "{response}"
    );
    assert!(lower.contains("x-frame-options: deny"), "{response}");
    assert!(
        response.contains("\"code\":\"PAYLOAD_TOO_LARGE\""),
        "{response}"
    );
}
