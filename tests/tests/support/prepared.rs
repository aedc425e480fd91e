//! A [`fluxbase_tests::TestApp`]-like world whose database gets a fixture (SQL run as
//! superuser) *before* the server starts, so the server's caches see the fixture at start
//! exactly as in production (no reload on a miss involved).
//!
//! Included by the test files that need it with `#[path = "support/prepared.rs"] mod
//! prepared;` (a folder, so cargo does not take it for a test crate of its own).
#![allow(dead_code)]
use fluxbase_tests::{into_response, spawn_server, Cluster, Response};
use serde_json::{json, Value};
use tokio_postgres::Client;

pub struct PreparedApp {
    pub cluster: Cluster,
    pub db: String,
    pub base: String,
    pub http: reqwest::Client,
    pub admin: Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for PreparedApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl PreparedApp {
    /// A fresh database cloned from the template, `fixture` run in it as superuser, then a
    /// real server on a free port.
    pub async fn start(fixture: &str) -> PreparedApp {
        PreparedApp::start_with(fixture, "", 4, "").await
    }

    /// As [`PreparedApp::start`], with `server_extra` (indented YAML lines) added to the
    /// `server` section, a pool of `max_connections`, and `extra` YAML appended to the config
    /// (sections other than `server` and `database`).
    pub async fn start_with(
        fixture: &str,
        server_extra: &str,
        max_connections: u32,
        extra: &str,
    ) -> PreparedApp {
        let cluster = Cluster::from_env();
        let db = format!("t_{}", uuid::Uuid::new_v4().simple());
        let postgres = cluster.admin("postgres").await;
        postgres
            .batch_execute(&format!("CREATE DATABASE {db} TEMPLATE fluxbase_template"))
            .await
            .expect("clone the template database");
        let admin = cluster.admin(&db).await;
        if let Err(e) = admin.batch_execute(fixture).await {
            panic!(
                "the fixture failed: {}",
                e.as_db_error().map(|d| d.message()).unwrap_or("?")
            );
        }
        let yaml = format!(
            "server:\n  host: 127.0.0.1\n  port: 0\n{server_extra}database:\n  url: \"{}\"\n  max_connections: {max_connections}\n{extra}",
            cluster.server_url(&db)
        );
        let (base, server) = spawn_server(&yaml).await;
        PreparedApp {
            cluster,
            db,
            base,
            http: reqwest::Client::new(),
            admin,
            server,
        }
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

    /// A POST with a raw body and content type.
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &str,
    ) -> Response {
        let mut req = self
            .http
            .post(self.url(path))
            .header("Content-Type", content_type)
            .body(body.to_owned());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        into_response(req.send().await.expect("HTTP request to the test server")).await
    }

    /// Any request: raw body bytes (sent as they are) and headers.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Response {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        into_response(req.send().await.expect("HTTP request to the test server")).await
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

    /// One value of a superuser query (for checking what changed).
    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        self.admin
            .query_one(sql, &[])
            .await
            .expect("admin query")
            .get(0)
    }
}
