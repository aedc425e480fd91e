//! `GET /health`: 200 "ok" with a live database, 503 "degraded" without one.
use fluxbase_tests::*;

#[tokio::test]
async fn health_reports_the_database() {
    let app = TestApp::start().await;
    let r = app.get("/health", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "ok");
    assert_eq!(r.body["services"]["database"], "ok");
    assert!(r.body["timestamp"]
        .as_str()
        .is_some_and(|t| t.contains('T')));
}

#[tokio::test]
async fn health_is_503_degraded_when_the_database_is_down() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yaml = format!(
        "server:\n  host: 127.0.0.1\n  port: 0\ndatabase:\n  url: \"postgres://fluxbase_server:not-the-password@127.0.0.1:{port}/nope\"\n"
    );
    let (base, server) = spawn_lazy_server(&yaml).await;
    let resp = reqwest::get(format!("{base}/health")).await.unwrap();
    let r = into_response(resp).await;
    server.abort();
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["status"], "degraded");
    assert_ne!(r.body["services"]["database"], "ok");
}
