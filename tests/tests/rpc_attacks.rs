//! `/api/v1/rpc` as an attacker sees it: hostile function and argument names and values,
//! hidden schemas, functions that try to switch the role or forge the claims, volatile
//! functions through GET, and the pooled connection after a signed-in call. The fixture is
//! tests/sql/attacks_fixture.sql.
#[path = "support/prepared.rs"]
mod prepared;

use fluxbase_tests::{assert_error_shape, Response};
use prepared::PreparedApp;
use reqwest::Method;
use serde_json::{json, Value};

const FIXTURE: &str = include_str!("../sql/attacks_fixture.sql");

fn refused(r: &Response, what: &str) -> String {
    assert!(
        (400..500).contains(&r.status),
        "{what}: expected a 4xx, got {}: {}",
        r.status,
        r.text
    );
    let code = assert_error_shape(r);
    for needle in ["nowhere_at_all", "_args", "json_to_record", "::text"] {
        assert!(
            !r.text.contains(needle),
            "{what}: leaks {needle}: {}",
            r.text
        );
    }
    code
}

fn enc(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

async fn log_rows(app: &PreparedApp) -> i64 {
    app.scalar_i64("SELECT count(*) FROM public.attack_log")
        .await
}

#[tokio::test]
async fn hostile_names_and_values_are_4xx() {
    let app = PreparedApp::start(FIXTURE).await;
    let (alice, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    for path in [
        "/api/v1/rpc/echo;drop",
        "/api/v1/rpc/%22echo%22",
        "/api/v1/rpc/ECHO",
        "/api/v1/rpc/echo%00",
        "/api/v1/rpc/auth/authenticate",
        "/api/v1/rpc/auth/sign_in",
        "/api/v1/rpc/AUTH/sign_in",
        "/api/v1/rpc/authenticate",
        "/api/v1/rpc/sign_in",
        "/api/v1/rpc/pg_catalog/pg_sleep",
        "/api/v1/rpc/pg_sleep",
        "/api/v1/rpc/fluxbase/sign_token",
        "/api/v1/rpc/sign_token",
        "/api/v1/rpc/audit/enable",
        "/api/v1/rpc/information_schema/_pg_expandarray",
        "/api/v1/rpc/user_rows",
        "/api/v1/rpc/public.echo",
    ] {
        for token in [None, Some(alice.as_str())] {
            let r = app.post(path, token, &json!({"t": "x"})).await;
            refused(&r, path);
            let r = app.get(path, token).await;
            refused(&r, path);
        }
    }
    let before = log_rows(&app).await;
    for (body, what) in [
        (json!({"t;drop": "x"}), "hostile argument name"),
        (json!({"t": "x", "u": 1}), "unknown argument"),
        (json!({"\"t\"": "x"}), "quoted argument name"),
        (json!({"t": "a\u{0}b"}), "NUL in a value"),
    ] {
        let r = app.post("/api/v1/rpc/echo", None, &body).await;
        refused(&r, what);
    }
    for (body, what) in [
        (json!({"xs": "not an array"}), "not an array"),
        (json!({"xs": [1, "two"]}), "a string in an int array"),
        (json!({"xs": "{1,2"}), "a broken array literal"),
    ] {
        let r = app.post("/api/v1/rpc/sum_ints", None, &body).await;
        refused(&r, what);
    }
    // Values that look like SQL are data.
    let evil = "'); DELETE FROM public.docs; --";
    let r = app
        .post("/api/v1/rpc/echo", None, &json!({"t": evil}))
        .await;
    assert_eq!(r.body, json!(evil), "{}", r.text);
    let r = app
        .get(&format!("/api/v1/rpc/echo?t={}", enc(evil)), None)
        .await;
    assert_eq!(r.body, json!(evil), "{}", r.text);
    for q in [
        "t=x&select=t;drop",
        "t=x&order=v;drop",
        "t=x&limit=-1",
        "t=x&t=y",
        "t=%00",
        "xs=1",
    ] {
        let r = app.get(&format!("/api/v1/rpc/echo?{q}"), None).await;
        refused(&r, q);
    }
    let r = app.get("/api/v1/rpc/sum_ints?xs=%7B1,2%7D", None).await;
    assert_eq!(r.body, json!(3), "{}", r.text);
    let r = app.get("/api/v1/rpc/sum_ints?xs=nope", None).await;
    refused(&r, "bad array by GET");
    // Bodies.
    for (ct, body, what) in [
        ("text/plain", b"{\"t\": \"x\"}".to_vec(), "text/plain"),
        ("application/json", b"{\"t\": ".to_vec(), "truncated"),
        ("application/json", vec![b'{', 0xff, b'}'], "invalid UTF-8"),
        ("application/json", b"[1]".to_vec(), "an array"),
        (
            "application/json",
            format!("{{\"t\": \"{}\"}}", "x".repeat(3_000_000)).into_bytes(),
            "over the body limit",
        ),
    ] {
        let r = app
            .send(
                Method::POST,
                "/api/v1/rpc/echo",
                None,
                &[("Content-Type", ct)],
                Some(body),
            )
            .await;
        refused(&r, what);
    }
    // A PostgreSQL error raised inside the function (its query quoted in the server's
    // error) reaches the client as a code, not as the query.
    let r = app.post("/api/v1/rpc/broken_sql", None, &json!({})).await;
    refused(&r, "broken function");
    assert_eq!(log_rows(&app).await, before);
}

#[tokio::test]
async fn functions_cannot_switch_role_or_forge_claims() {
    let app = PreparedApp::start_with(FIXTURE, "", 1, "").await;
    let (alice, alice_id) = app.sign_up("alice@example.com", "Alice-password-1").await;
    let (_bob, bob_id) = app.sign_up("bob@example.com", "Bob-password-1!x").await;
    app.admin
        .batch_execute(&format!(
            "INSERT INTO public.docs (id, owner) VALUES (1, '{bob_id}');
             INSERT INTO public.secrets VALUES (1, 1, '{bob_id}', 'bob-secret');"
        ))
        .await
        .unwrap();
    // Forged claims: auth.uid() stays alice.
    let r = app
        .post(
            "/api/v1/rpc/forge_claims",
            Some(&alice),
            &json!({"sub": bob_id}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["uid"], json!(alice_id), "{}", r.text);
    assert_eq!(r.body["role"], "authenticated", "{}", r.text);
    // Role switches by set_config, SET ROLE and a SET clause: refused (role guard).
    for f in [
        "become_service_role",
        "set_role_service",
        "set_clause_service",
    ] {
        for token in [Some(alice.as_str()), None] {
            let r = app
                .post(&format!("/api/v1/rpc/{f}"), token, &json!({}))
                .await;
            let code = refused(&r, f);
            assert!(
                code == "FORBIDDEN" || code == "UNAUTHORIZED",
                "{f}: {code} {}",
                r.text
            );
        }
    }
    // The next request without a token on the only pooled connection is anon, no uid.
    let r = app
        .post(
            "/api/v1/rpc/forge_claims",
            Some(&alice),
            &json!({"sub": bob_id}),
        )
        .await;
    assert_eq!(r.status, 200);
    for method in [Method::GET, Method::POST] {
        let r = app
            .request(method, "/api/v1/rpc/whoami", None, Some(&json!({})), &[])
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["uid"], Value::Null, "{}", r.text);
        assert_eq!(r.body["db_role"], "anon", "{}", r.text);
        assert_eq!(r.body["role"], "anon", "{}", r.text);
        let claims = r.body["claims"].as_str().unwrap_or("");
        assert!(
            !claims.contains(&alice_id) && !claims.contains(&bob_id),
            "{}",
            r.text
        );
    }
    let r = app.post("/api/v1/rpc/my_secrets", None, &json!({})).await;
    assert_eq!(r.body, json!([]), "{}", r.text);
}

#[tokio::test]
async fn volatile_functions_never_run_in_a_read() {
    let app = PreparedApp::start(FIXTURE).await;
    let before = log_rows(&app).await;
    for path in ["/api/v1/rpc/write_log", "/api/v1/rpc/write_log?what=x"] {
        let r = app.get(path, None).await;
        assert_eq!(r.status, 405, "{path}: {}", r.text);
        assert_error_shape(&r);
        let r = app.request(Method::HEAD, path, None, None, &[]).await;
        assert_eq!(r.status, 405, "HEAD {path}");
    }
    // A function that says STABLE but writes: PostgreSQL refuses the write in a
    // non-volatile function (0A000), and the READ ONLY transaction would anyway.
    for method in [Method::GET, Method::POST] {
        let r = app
            .request(
                method,
                "/api/v1/rpc/sneaky_stable",
                None,
                Some(&json!({})),
                &[],
            )
            .await;
        refused(&r, "sneaky_stable");
    }
    assert_eq!(log_rows(&app).await, before);
    // Paging is capped.
    let r = app
        .post("/api/v1/rpc/my_secrets?limit=999999999", None, &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn profile_headers_on_rpc() {
    let app = PreparedApp::start(FIXTURE).await;
    let r = app
        .request(
            Method::POST,
            "/api/v1/rpc/echo",
            None,
            Some(&json!({"t": "x"})),
            &[("Content-Profile", "public")],
        )
        .await;
    assert_eq!(r.body, json!("x"), "{}", r.text);
    for schema in ["auth", "nope"] {
        let r = app
            .request(
                Method::POST,
                "/api/v1/rpc/sign_in",
                None,
                Some(&json!({})),
                &[("Content-Profile", schema)],
            )
            .await;
        assert_eq!(r.status, 406, "{schema}: {}", r.text);
        assert_eq!(assert_error_shape(&r), "INVALID_SCHEMA");
        let r = app
            .request(
                Method::GET,
                "/api/v1/rpc/whoami",
                None,
                None,
                &[("Accept-Profile", schema)],
            )
            .await;
        assert_eq!(r.status, 406, "{schema}: {}", r.text);
    }
}

#[tokio::test]
async fn a_timed_out_request_stops_its_query() {
    let app = PreparedApp::start_with(FIXTURE, "  request_timeout_seconds: 1\n", 1, "").await;
    let started = std::time::Instant::now();
    let r = app
        .post("/api/v1/rpc/slow", None, &json!({"secs": 30}))
        .await;
    assert!(r.status == 503 || r.status == 504, "{}", r.text);
    assert_error_shape(&r);
    assert!(started.elapsed().as_secs() < 5);
    // PostgreSQL has stopped it too (statement_timeout), and the only pooled connection
    // serves the next request at once.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let running = app
        .scalar_i64(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%\"slow\"%' AND pid <> pg_backend_pid()",
        )
        .await;
    assert_eq!(running, 0, "the slow query still runs");
    let started = std::time::Instant::now();
    let r = app.post("/api/v1/rpc/echo", None, &json!({"t": "x"})).await;
    assert_eq!(r.body, json!("x"), "{}", r.text);
    assert!(started.elapsed().as_secs() < 2);
}

/// Session state a function leaves behind (a session-level `set_config`, a session-level
/// `SET`, a temporary table, an advisory lock, a `LISTEN`, a holdable cursor) is reset before
/// the connection serves anyone else: with one pooled connection, the next request sees none
/// of it — after a request that committed (an RPC), one that failed (rolled back: the
/// advisory lock outlives an abort by itself), and a plain table read whose row policy calls
/// the function (the one-round-trip read path).
#[tokio::test]
async fn session_state_left_by_a_request_never_reaches_the_next() {
    let fixture = "
        CREATE FUNCTION public.leave_state() RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          PERFORM pg_catalog.set_config('app.leftover', 'from the last request', false);
          PERFORM pg_catalog.set_config('search_path', 'pg_temp, public', false);
          CREATE TEMPORARY TABLE IF NOT EXISTS leftover (x int);
          PERFORM pg_catalog.pg_advisory_lock(42);
          LISTEN leftover_channel;
          EXECUTE 'DECLARE leftover_cursor CURSOR WITH HOLD FOR SELECT 1';
        END $$;
        CREATE FUNCTION public.leave_state_and_fail() RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          PERFORM pg_catalog.pg_advisory_lock(43);
          PERFORM pg_catalog.set_config('app.leftover', 'from a failed request', false);
          RAISE EXCEPTION 'this request fails';
        END $$;
        CREATE FUNCTION public.leave_state_while_reading() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          PERFORM pg_catalog.set_config('app.leftover', 'from a read', false);
          PERFORM pg_catalog.pg_advisory_lock(44);
          RETURN true;
        END $$;
        CREATE TABLE public.watched (id int PRIMARY KEY);
        INSERT INTO public.watched VALUES (1);
        ALTER TABLE public.watched ENABLE ROW LEVEL SECURITY;
        CREATE POLICY watched_read ON public.watched FOR SELECT USING (public.leave_state_while_reading());
        GRANT SELECT ON public.watched TO anon, authenticated;
        CREATE FUNCTION public.read_state() RETURNS json LANGUAGE sql VOLATILE AS $$
          SELECT pg_catalog.json_build_object(
            'setting', pg_catalog.current_setting('app.leftover', true),
            'search_path', pg_catalog.current_setting('search_path'),
            'temp_tables', (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c
                            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                            WHERE n.oid = pg_catalog.pg_my_temp_schema() AND c.relname = 'leftover'),
            'locks', (SELECT pg_catalog.count(*) FROM pg_catalog.pg_locks
                      WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()),
            'listening', (SELECT pg_catalog.count(*) FROM pg_catalog.pg_listening_channels()),
            -- The unnamed portal is this very statement (pg_cursors lists protocol portals too).
            'cursors', (SELECT pg_catalog.count(*) FROM pg_catalog.pg_cursors WHERE name <> ''))
        $$;
        GRANT EXECUTE ON FUNCTION public.leave_state(), public.leave_state_and_fail(),
          public.leave_state_while_reading(), public.read_state() TO anon, authenticated;
    ";
    let app = PreparedApp::start_with(fixture, "", 1, "").await;
    let before = app.post("/api/v1/rpc/read_state", None, &json!({})).await;
    assert_eq!(before.status, 200, "{}", before.text);
    let r = app.post("/api/v1/rpc/leave_state", None, &json!({})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let after = app.post("/api/v1/rpc/read_state", None, &json!({})).await;
    assert_eq!(after.status, 200, "{}", after.text);
    // A custom setting, once defined, stays defined with an empty value after RESET ALL: the
    // value is what must not survive.
    assert!(
        after.body["setting"] == Value::Null || after.body["setting"] == json!(""),
        "session state leaked to the next request: {}",
        after.text
    );
    assert_eq!(after.body["search_path"], before.body["search_path"]);
    assert_eq!(after.body["temp_tables"], json!(0));
    assert_eq!(after.body["locks"], json!(0));
    assert_eq!(after.body["listening"], json!(0));
    assert_eq!(after.body["cursors"], json!(0), "{}", after.text);

    let failed = app
        .post("/api/v1/rpc/leave_state_and_fail", None, &json!({}))
        .await;
    assert_eq!(failed.status, 400, "{}", failed.text);
    let after_failure = app.post("/api/v1/rpc/read_state", None, &json!({})).await;
    assert_eq!(after_failure.body["locks"], json!(0), "{}", after_failure.text);
    assert!(
        after_failure.body["setting"] == Value::Null || after_failure.body["setting"] == json!(""),
        "{}",
        after_failure.text
    );

    let read = app.get("/api/v1/tables/watched?select=id", None).await;
    assert_eq!(read.body, json!([{"id": 1}]), "{}", read.text);
    let after_read = app.post("/api/v1/rpc/read_state", None, &json!({})).await;
    assert_eq!(after_read.body["locks"], json!(0), "{}", after_read.text);
    assert!(
        after_read.body["setting"] == Value::Null || after_read.body["setting"] == json!(""),
        "session state of a read leaked: {}",
        after_read.text
    );
}
