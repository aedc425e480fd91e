//! The black-box test harness.
//!
//! `scripts/test.sh` starts one throwaway cluster (`scripts/cluster.sh init .fluxbase/test
//! fluxbase_template`) and points `FLUXBASE_TEST_STATE` at its state folder. Each test then
//! gets its own database cloned from `fluxbase_template` (extension + demo schema) and its
//! own real server on 127.0.0.1:0, so tests run in parallel without seeing each other.
pub mod tls;

use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_postgres::{Client, NoTls};

/// What `scripts/cluster.sh` wrote about the test cluster.
pub struct Cluster {
    pub port: u16,
    pub socket_dir: String,
    pub jwt_secret: String,
    pub server_password: String,
}

impl Cluster {
    pub fn from_env() -> Cluster {
        let state = PathBuf::from(std::env::var("FLUXBASE_TEST_STATE").expect(
            "FLUXBASE_TEST_STATE is not set: run the black-box tests through `make test` (scripts/test.sh)",
        ));
        let read = |name: &str| {
            std::fs::read_to_string(state.join(name))
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", state.join(name).display()))
                .trim()
                .to_owned()
        };
        let env = read("server.env");
        let password = env
            .lines()
            .find_map(|l| l.strip_prefix("FLUXBASE_DB_PASSWORD="))
            .expect("server.env names FLUXBASE_DB_PASSWORD")
            .to_owned();
        Cluster {
            port: read("port").parse().expect("port is a number"),
            socket_dir: read("socket_dir"),
            jwt_secret: read("jwt_secret"),
            server_password: password,
        }
    }

    /// A superuser connection (over the cluster's Unix socket) to `db`.
    pub async fn admin(&self, db: &str) -> Client {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host_path(&self.socket_dir)
            .port(self.port)
            .user("postgres")
            .dbname(db);
        let (client, conn) = cfg
            .connect(NoTls)
            .await
            .expect("superuser connection to the test cluster");
        tokio::spawn(conn);
        client
    }

    /// The URL the server uses: the low-privilege login role over TCP with its password.
    pub fn server_url(&self, db: &str) -> String {
        format!(
            "postgres://fluxbase_server:{}@127.0.0.1:{}/{db}",
            self.server_password, self.port
        )
    }

    /// A connection as the server's own login role, to try attacks in SQL directly.
    pub async fn as_server_role(&self, db: &str) -> Client {
        let (client, conn) = tokio_postgres::connect(&self.server_url(db), NoTls)
            .await
            .expect("connection as fluxbase_server");
        tokio::spawn(conn);
        client
    }
}

/// One test's world: a fresh database and a real server bound to a free port.
pub struct TestApp {
    pub cluster: Cluster,
    pub db: String,
    pub base: String,
    pub http: reqwest::Client,
    pub admin: Client,
    server: tokio::task::JoinHandle<()>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// The running server's state (for a metrics listener, see [`TestApp::spawn_metrics`]).
    pub state: fluxbase_server::AppState,
    /// The YAML the server was started with (for [`TestApp::another_server`]).
    pub yaml: String,
}

/// A second server (same database), stopped when dropped.
pub struct Server {
    pub base: String,
    pub state: fluxbase_server::AppState,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    pub async fn start() -> TestApp {
        TestApp::start_with_yaml_extra("").await
    }

    /// Starts with extra YAML appended to the generated config (for config-dependent tests).
    pub async fn start_with_yaml_extra(extra: &str) -> TestApp {
        TestApp::start_with("", extra).await
    }

    /// As [`TestApp::start_with`], with `server_keys` as indented YAML lines (e.g.
    /// `"  trusted_proxies: [\"127.0.0.1/32\"]\n"`).
    pub async fn start_with_server_keys(server_keys: &str, extra: &str) -> TestApp {
        let keys: String = server_keys
            .lines()
            .map(|line| format!("{}\n", line.strip_prefix("  ").unwrap_or(line)))
            .collect();
        TestApp::start_with(&keys, extra).await
    }

    /// Starts with `server_keys` added to the generated `server:` section (one key per line,
    /// unindented, e.g. `max_body_bytes: 10`) and `extra` appended to the file. With
    /// `tls: { enabled: true, … }` the base URL is `https://127.0.0.1:<port>`.
    /// Rate limiting is off unless `extra` has a `rate_limiting:` section: the suites send
    /// many requests from one address (16 parallel sign-ins, …) that the default budgets would
    /// refuse; `tests/tests/rate_limiting.rs` tests the limits themselves.
    pub async fn start_with(server_keys: &str, extra: &str) -> TestApp {
        let cluster = Cluster::from_env();
        let db = format!("t_{}", uuid::Uuid::new_v4().simple());
        let postgres = cluster.admin("postgres").await;
        postgres
            .batch_execute(&format!("CREATE DATABASE {db} TEMPLATE fluxbase_template"))
            .await
            .expect("clone the template database");
        let admin = cluster.admin(&db).await;
        let limits = if extra.contains("rate_limiting:") {
            ""
        } else {
            "rate_limiting: { enabled: false }\n"
        };
        let server_keys: String = server_keys
            .lines()
            .map(|line| format!("  {line}\n"))
            .collect();
        let yaml = format!(
            "server:\n  host: 127.0.0.1\n  port: 0\n{server_keys}database:\n  url: \"{}\"\n  max_connections: 4\n{limits}{extra}",
            cluster.server_url(&db)
        );
        let config =
            fluxbase_server::config::Config::from_yaml_str(&yaml).expect("test config is valid");
        let state = fluxbase_server::build_state(&config)
            .await
            .expect("server state");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (base, server) = spawn_with_state_until(state.clone(), async move {
            let _ = stopped.await;
        })
        .await;
        TestApp {
            cluster,
            db,
            base,
            http: reqwest::Client::new(),
            admin,
            server,
            shutdown: Some(stop),
            state,
            yaml,
        }
    }

    /// A second real server on the same database with the same configuration.
    pub async fn another_server(&self) -> Server {
        let (base, state, handle) = spawn_server_with_state(&self.yaml).await;
        Server {
            base,
            state,
            handle,
        }
    }

    /// Starts the metrics listener of this server on a free port; returns its base URL.
    /// The task ends with the test's runtime.
    pub async fn spawn_metrics(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let addr = listener.local_addr().expect("local addr");
        let state = self.state.clone();
        tokio::spawn(async move {
            let _ = fluxbase_server::metrics::serve(listener, state).await;
        });
        format!("http://{addr}")
    }

    /// Starts the server's graceful shutdown (what SIGTERM does).
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
    }

    /// Waits up to `limit` for the server task to end; whether it did.
    pub async fn wait_stopped(&mut self, limit: std::time::Duration) -> bool {
        tokio::time::timeout(limit, &mut self.server).await.is_ok()
    }

    /// The server's address (`127.0.0.1:<port>`).
    pub fn addr(&self) -> String {
        self.base
            .split_once("://")
            .map(|(_, a)| a.to_owned())
            .unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        into_response(req.send().await.expect("HTTP request to the test server")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request(reqwest::Method::GET, path, token, None, &[])
            .await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.request(reqwest::Method::POST, path, token, Some(body), &[])
            .await
    }

    /// Signs a user up over HTTP and returns (access token, user id).
    pub async fn sign_up(&self, email: &str, password: &str) -> (String, String) {
        let r = self
            .post(
                "/api/v1/auth/signup",
                None,
                &json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(r.status, 200, "sign-up of {email} failed: {}", r.text);
        (
            r.body["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            r.body["user"]["id"].as_str().expect("user.id").to_owned(),
        )
    }

    /// A token signed with the cluster's real secret and the given claims merged over valid ones.
    pub fn forge(&self, overrides: Value) -> String {
        forge_with(
            &self.cluster.jwt_secret,
            jsonwebtoken::Algorithm::HS256,
            overrides,
        )
    }
}

/// A real SMTP server on loopback (mailin-embedded) that keeps every message it receives.
pub struct SmtpSink {
    pub port: u16,
    messages: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

#[derive(Clone)]
struct SinkHandler {
    current: Vec<u8>,
    messages: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl mailin_embedded::Handler for SinkHandler {
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.extend_from_slice(buf);
        Ok(())
    }
    fn data_end(&mut self) -> mailin_embedded::Response {
        let message = String::from_utf8_lossy(&std::mem::take(&mut self.current)).into_owned();
        self.messages.lock().unwrap().push(message);
        mailin_embedded::response::OK
    }
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind SMTP sink");
        let port = listener.local_addr().unwrap().port();
        let messages = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let handler = SinkHandler {
            current: Vec::new(),
            messages: messages.clone(),
        };
        std::thread::spawn(move || {
            let mut server = mailin_embedded::Server::new(handler);
            server
                .with_name("sink.test")
                .with_num_threads(2)
                .with_tcp_listener(listener);
            let _ = server.serve();
        });
        SmtpSink { port, messages }
    }

    /// Waits (up to 10 s) until at least `n` messages arrived and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        for _ in 0..200 {
            let got = self.messages.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "expected {n} e-mail(s), got {}",
            self.messages.lock().unwrap().len()
        );
    }

    pub fn count(&self) -> usize {
        self.messages.lock().unwrap().len()
    }
}

/// Standard valid access-token claims for a random user, `overrides` merged on top.
pub fn claims(overrides: Value) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut c = json!({
        "sub": uuid::Uuid::new_v4().to_string(), "role": "authenticated", "email": "x@example.com",
        "iat": now, "exp": now + 600, "iss": "fluxbase", "aud": "authenticated",
        "jti": uuid::Uuid::new_v4().to_string(), "token_type": "access"
    });
    if let (Some(base), Some(extra)) = (c.as_object_mut(), overrides.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    c
}

pub fn forge_with(secret: &str, alg: jsonwebtoken::Algorithm, overrides: Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).expect("HMAC key");
    jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims(overrides), &key).expect("encode")
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub async fn into_response(resp: reqwest::Response) -> Response {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("response body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Response {
        status,
        headers,
        body,
        text,
    }
}

/// Starts the real server (the same code `fluxbase serve` runs) on a free port.
pub async fn spawn_server(yaml: &str) -> (String, tokio::task::JoinHandle<()>) {
    let (base, _, handle) = spawn_server_with_state(yaml).await;
    (base, handle)
}

/// As [`spawn_server`], also returning the server's state.
pub async fn spawn_server_with_state(
    yaml: &str,
) -> (
    String,
    fluxbase_server::AppState,
    tokio::task::JoinHandle<()>,
) {
    let config =
        fluxbase_server::config::Config::from_yaml_str(yaml).expect("test config is valid");
    let state = fluxbase_server::build_state(&config)
        .await
        .expect("server state");
    let (base, handle) = spawn_with_state(state.clone()).await;
    (base, state, handle)
}

/// Starts the real server with a pool that connects only on demand (for a dead database).
pub async fn spawn_lazy_server(yaml: &str) -> (String, tokio::task::JoinHandle<()>) {
    let config =
        fluxbase_server::config::Config::from_yaml_str(yaml).expect("test config is valid");
    spawn_with_state(fluxbase_server::AppState::lazy(&config).expect("lazy state")).await
}

async fn spawn_with_state(
    state: fluxbase_server::AppState,
) -> (String, tokio::task::JoinHandle<()>) {
    spawn_with_state_until(state, std::future::pending()).await
}

/// Serves until `shutdown` completes (then drains, as `fluxbase serve` on SIGTERM).
pub async fn spawn_with_state_until(
    state: fluxbase_server::AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let addr = listener.local_addr().expect("local addr");
    let scheme = if state.config().server.tls.enabled {
        "https"
    } else {
        "http"
    };
    let handle = tokio::spawn(async move {
        fluxbase_server::serve_with_shutdown(listener, state, shutdown)
            .await
            .expect("the server runs");
    });
    (format!("{scheme}://{addr}"), handle)
}

/// Asserts the project's error shape and returns the code.
pub fn assert_error_shape(r: &Response) -> String {
    let b = &r.body;
    assert!(b.is_object(), "error body is not JSON: {:?}", r.text);
    for key in ["error", "message", "code", "details", "hint", "request_id"] {
        assert!(b.get(key).is_some(), "error body lacks {key}: {}", r.text);
    }
    assert_eq!(b["error"], b["message"], "{}", r.text);
    let code = b["code"].as_str().expect("code is a string").to_owned();
    assert!(
        code.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
        "code {code} is not UPPER_SNAKE"
    );
    assert!(
        b["request_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{}",
        r.text
    );
    assert_no_leak(&r.text);
    code
}

/// Fails when a response body carries SQL, a stack trace or internals.
pub fn assert_no_leak(text: &str) {
    let lower = text.to_lowercase();
    for needle in [
        "select ",
        "insert into",
        "update \"",
        "delete from",
        "syntax error",
        "pg_catalog.format_type",
        "sqlstate",
        "panicked",
        "stack backtrace",
        "tokio_postgres",
        "db error",
        "relation \"",
        "argon2",
        "$argon2",
        "json_populate",
    ] {
        assert!(!lower.contains(needle), "response leaks {needle:?}: {text}");
    }
}
