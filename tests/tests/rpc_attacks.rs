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
    assert_eq!(
        after_failure.body["locks"],
        json!(0),
        "{}",
        after_failure.text
    );
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

// ---------------------------------------------------------------------------------------
// Session state and the reset inside the request's own COMMIT/ROLLBACK (pg_ext/src/
// session_reset.rs): one pooled connection, so every request below runs on the backend the
// previous one used.

/// `public.probe()`: what of the session a request could have left behind, as seen by the
/// next request. Granted to PUBLIC so that it also answers when a request did not
/// authenticate at all (see the prepared-statement attacks).
const PROBE: &str = "
    CREATE SEQUENCE public.probe_seq;
    GRANT USAGE, SELECT ON SEQUENCE public.probe_seq TO anon, authenticated;
    CREATE TABLE public.probe_marks (id serial PRIMARY KEY, note text);
    ALTER TABLE public.probe_marks ENABLE ROW LEVEL SECURITY;
    CREATE POLICY probe_marks_all ON public.probe_marks USING (true) WITH CHECK (true);
    GRANT SELECT, INSERT ON public.probe_marks TO anon, authenticated;
    GRANT USAGE ON SEQUENCE public.probe_marks_id_seq TO anon, authenticated;
    CREATE FUNCTION public.probe() RETURNS json LANGUAGE plpgsql VOLATILE AS $$
    DECLARE
      last bigint;
      cur bigint;
    BEGIN
      BEGIN last := pg_catalog.lastval(); EXCEPTION WHEN others THEN last := NULL; END;
      BEGIN cur := pg_catalog.currval('public.probe_seq'); EXCEPTION WHEN others THEN cur := NULL; END;
      RETURN pg_catalog.json_build_object(
        'user', current_user,
        'uid', auth.uid(),
        'claims', pg_catalog.current_setting('request.jwt.claims', true),
        'setting', pg_catalog.current_setting('app.leftover', true),
        'search_path', pg_catalog.current_setting('search_path'),
        'read_only', pg_catalog.current_setting('transaction_read_only'),
        'isolation', pg_catalog.current_setting('transaction_isolation'),
        'default_read_only', pg_catalog.current_setting('default_transaction_read_only'),
        'default_isolation', pg_catalog.current_setting('default_transaction_isolation'),
        'statement_timeout', pg_catalog.current_setting('statement_timeout'),
        'lock_timeout', pg_catalog.current_setting('lock_timeout'),
        'datestyle', pg_catalog.current_setting('DateStyle'),
        'timezone', pg_catalog.current_setting('TimeZone'),
        'temp_objects', (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c
                         WHERE c.relnamespace = pg_catalog.pg_my_temp_schema()),
        'locks', (SELECT pg_catalog.count(*) FROM pg_catalog.pg_locks
                  WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()),
        'listening', (SELECT pg_catalog.count(*) FROM pg_catalog.pg_listening_channels()),
        'cursors', (SELECT pg_catalog.count(*) FROM pg_catalog.pg_cursors WHERE name <> ''),
        'sql_prepared', (SELECT pg_catalog.count(*) FROM pg_catalog.pg_prepared_statements
                         WHERE from_sql),
        'lastval', last,
        'currval', cur);
    END $$;
    GRANT EXECUTE ON FUNCTION public.probe() TO PUBLIC;
";

/// Asserts that `probe` (an answer of `public.probe()`) shows a clean session, equal to
/// `clean` (an answer before any request left anything) in every setting.
fn assert_clean(probe: &Response, clean: &Response, after: &str) {
    assert_eq!(probe.status, 200, "{after}: {}", probe.text);
    let p = &probe.body;
    assert!(
        p["setting"] == Value::Null || p["setting"] == json!(""),
        "{after}: a session setting leaked: {}",
        probe.text
    );
    for key in [
        "user",
        "search_path",
        "default_read_only",
        "default_isolation",
        "statement_timeout",
        "lock_timeout",
        "datestyle",
        "timezone",
    ] {
        assert_eq!(
            p[key], clean.body[key],
            "{after}: {key} leaked: {}",
            probe.text
        );
    }
    for key in [
        "temp_objects",
        "locks",
        "listening",
        "cursors",
        "sql_prepared",
    ] {
        assert_eq!(p[key], json!(0), "{after}: {key} leaked: {}", probe.text);
    }
    assert_eq!(
        p["lastval"],
        Value::Null,
        "{after}: lastval leaked: {}",
        probe.text
    );
    assert_eq!(
        p["currval"],
        Value::Null,
        "{after}: currval leaked: {}",
        probe.text
    );
}

async fn probe(app: &PreparedApp) -> Response {
    app.post("/api/v1/rpc/probe", None, &json!({})).await
}

/// A server on PROBE plus `fixture` with ONE pooled connection (so every request reuses the
/// same backend, and whatever one leaves the next meets), and a probe of its clean session.
async fn start_probed(fixture: &str) -> (PreparedApp, Response) {
    let app = PreparedApp::start_with(&format!("{PROBE}\n{fixture}"), "", 1, "").await;
    let clean = probe(&app).await;
    assert_eq!(clean.status, 200, "{}", clean.text);
    (app, clean)
}

/// Session-level defaults a function sets (`default_transaction_read_only`,
/// `default_transaction_isolation`, `statement_timeout`, …) are gone before the next
/// request's `BEGIN`, whether the request committed, failed, or only read (GET through a
/// policy), and the next request can still write.
#[tokio::test]
async fn session_defaults_set_by_a_request_never_reach_the_next_begin() {
    let fixture = "
        CREATE FUNCTION public.set_defaults() RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          PERFORM pg_catalog.set_config('default_transaction_read_only', 'on', false);
          PERFORM pg_catalog.set_config('default_transaction_isolation', 'serializable', false);
          PERFORM pg_catalog.set_config('statement_timeout', '1', false);
          PERFORM pg_catalog.set_config('lock_timeout', '1', false);
          PERFORM pg_catalog.set_config('DateStyle', 'SQL, DMY', false);
          PERFORM pg_catalog.set_config('TimeZone', 'Pacific/Chatham', false);
          PERFORM pg_catalog.set_config('search_path', 'pg_temp, public', false);
          PERFORM pg_catalog.set_config('app.leftover', 'defaults', false);
          EXECUTE 'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY';
        END $$;
        CREATE FUNCTION public.set_defaults_and_fail() RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          PERFORM public.set_defaults();
          RAISE EXCEPTION 'this request fails';
        END $$;
        CREATE FUNCTION public.set_defaults_while_reading() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          PERFORM public.set_defaults();
          RETURN true;
        END $$;
        CREATE TABLE public.watched (id int PRIMARY KEY);
        INSERT INTO public.watched VALUES (1);
        ALTER TABLE public.watched ENABLE ROW LEVEL SECURITY;
        CREATE POLICY watched_read ON public.watched FOR SELECT
          USING (public.set_defaults_while_reading());
        GRANT SELECT ON public.watched TO anon, authenticated;
        CREATE FUNCTION public.write_mark() RETURNS json LANGUAGE sql VOLATILE AS $$
          INSERT INTO public.probe_marks (note) VALUES ('written') RETURNING pg_catalog.json_build_object(
            'read_only', pg_catalog.current_setting('transaction_read_only'),
            'isolation', pg_catalog.current_setting('transaction_isolation'))
        $$;
        GRANT EXECUTE ON FUNCTION public.set_defaults(), public.set_defaults_and_fail(),
          public.set_defaults_while_reading(), public.write_mark() TO anon, authenticated;
        ";
    let (app, clean) = start_probed(fixture).await;

    let r = app.post("/api/v1/rpc/set_defaults", None, &json!({})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let write = app.post("/api/v1/rpc/write_mark", None, &json!({})).await;
    assert_eq!(
        write.status, 200,
        "the next request could not write: {}",
        write.text
    );
    assert_eq!(write.body["read_only"], "off", "{}", write.text);
    assert_eq!(write.body["isolation"], "read committed", "{}", write.text);
    assert_clean(&probe(&app).await, &clean, "a committed request");

    let failed = app
        .post("/api/v1/rpc/set_defaults_and_fail", None, &json!({}))
        .await;
    assert_eq!(failed.status, 400, "{}", failed.text);
    let write = app.post("/api/v1/rpc/write_mark", None, &json!({})).await;
    assert_eq!(write.status, 200, "after a failed request: {}", write.text);
    assert_eq!(write.body["isolation"], "read committed", "{}", write.text);
    assert_clean(&probe(&app).await, &clean, "a failed request");

    let read = app.get("/api/v1/tables/watched?select=id", None).await;
    assert_eq!(read.body, json!([{"id": 1}]), "{}", read.text);
    let write = app.post("/api/v1/rpc/write_mark", None, &json!({})).await;
    assert_eq!(write.status, 200, "after a read: {}", write.text);
    assert_eq!(write.body["read_only"], "off", "{}", write.text);
    assert_clean(&probe(&app).await, &clean, "a read");
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM public.probe_marks")
            .await,
        3
    );
}

/// A request whose COMMIT itself fails (a DEFERRABLE INITIALLY DEFERRED constraint violated
/// after the function ran) leaves none of the session state the function made: the abort
/// undoes it, or releases it (session advisory locks, sequence values).
#[tokio::test]
async fn state_of_a_request_whose_commit_fails_never_reaches_the_next() {
    let fixture = "
        CREATE TABLE public.unique_later (v int UNIQUE DEFERRABLE INITIALLY DEFERRED);
        INSERT INTO public.unique_later VALUES (1);
        GRANT INSERT ON public.unique_later TO anon;
        CREATE FUNCTION public.leave_state_then_fail_at_commit() RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          PERFORM pg_catalog.set_config('app.leftover', 'from a failed commit', false);
          PERFORM pg_catalog.set_config('default_transaction_read_only', 'on', false);
          PERFORM pg_catalog.set_config('search_path', 'pg_temp, public', false);
          PERFORM pg_catalog.pg_advisory_lock(7);
          PERFORM pg_catalog.nextval('public.probe_seq');
          CREATE TEMPORARY TABLE leftover (x int);
          LISTEN leftover_channel;
          EXECUTE 'DECLARE leftover_cursor CURSOR WITH HOLD FOR SELECT 1';
          INSERT INTO public.unique_later VALUES (1);
        END $$;
        GRANT EXECUTE ON FUNCTION public.leave_state_then_fail_at_commit() TO anon;
        ";
    let (app, clean) = start_probed(fixture).await;
    let r = app
        .post(
            "/api/v1/rpc/leave_state_then_fail_at_commit",
            None,
            &json!({}),
        )
        .await;
    assert!(
        (400..500).contains(&r.status),
        "the COMMIT should fail with a 4xx: {} {}",
        r.status,
        r.text
    );
    assert_clean(&probe(&app).await, &clean, "a failed COMMIT");
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM public.unique_later")
            .await,
        1
    );
}

/// Deferred constraint triggers run inside COMMIT, before the pre-commit reset: whatever
/// session state they make (a setting, a lock, LISTEN, a temporary table, a holdable
/// cursor, a sequence value) is reset by that same COMMIT. Reached through the tables API.
#[tokio::test]
async fn state_made_by_deferred_triggers_at_commit_never_reaches_the_next() {
    let fixture = "
        CREATE TABLE public.deferred_notes (id int PRIMARY KEY, body text);
        ALTER TABLE public.deferred_notes ENABLE ROW LEVEL SECURITY;
        CREATE POLICY deferred_notes_all ON public.deferred_notes USING (true) WITH CHECK (true);
        GRANT SELECT, INSERT ON public.deferred_notes TO anon;
        CREATE FUNCTION public.notes_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_catalog.set_config('app.leftover', 'from a deferred trigger', false);
          PERFORM pg_catalog.set_config('statement_timeout', '1', false);
          PERFORM pg_catalog.pg_advisory_lock(8);
          PERFORM pg_catalog.nextval('public.probe_seq');
          CREATE TEMPORARY TABLE IF NOT EXISTS leftover (x int);
          LISTEN leftover_channel;
          EXECUTE 'DECLARE leftover_cursor CURSOR WITH HOLD FOR SELECT 1';
          RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER notes_at_commit AFTER INSERT ON public.deferred_notes
          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.notes_at_commit();
        ";
    let (app, clean) = start_probed(fixture).await;
    let r = app
        .post(
            "/api/v1/tables/deferred_notes",
            None,
            &json!({"id": 1, "body": "x"}),
        )
        .await;
    assert!(
        (200..300).contains(&r.status),
        "the insert should commit: {} {}",
        r.status,
        r.text
    );
    assert_clean(&probe(&app).await, &clean, "a deferred trigger");
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM public.deferred_notes")
            .await,
        1
    );
}

/// `currval`/`lastval` after `nextval`, in a committed and in a failed request, are unknown
/// to the next request.
#[tokio::test]
async fn sequence_values_of_a_request_never_reach_the_next() {
    let fixture = "
        CREATE FUNCTION public.take_number() RETURNS bigint LANGUAGE sql VOLATILE AS $$
          SELECT pg_catalog.nextval('public.probe_seq')
        $$;
        CREATE FUNCTION public.take_number_and_fail() RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          PERFORM pg_catalog.nextval('public.probe_seq');
          RAISE EXCEPTION 'this request fails';
        END $$;
        GRANT EXECUTE ON FUNCTION public.take_number(), public.take_number_and_fail() TO anon;
        ";
    let (app, clean) = start_probed(fixture).await;
    let r = app.post("/api/v1/rpc/take_number", None, &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_clean(&probe(&app).await, &clean, "a committed nextval");
    let r = app
        .post("/api/v1/rpc/take_number_and_fail", None, &json!({}))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_clean(&probe(&app).await, &clean, "a failed nextval");
    // A new table row through the API uses the same sequence machinery (a serial default).
    let r = app
        .post("/api/v1/tables/probe_marks", None, &json!({"note": "n"}))
        .await;
    assert!((200..300).contains(&r.status), "{}", r.text);
    assert_clean(&probe(&app).await, &clean, "a serial default");
}

/// Advisory locks, LISTEN and temporary tables made inside exception blocks (a
/// subtransaction that is rolled back, or released): session advisory locks survive a
/// subtransaction's rollback, so this is where a reset that only trusted the abort would miss
/// them. Committed and failed requests.
#[tokio::test]
async fn state_made_in_subtransactions_never_reaches_the_next() {
    let fixture = "
        CREATE FUNCTION public.state_in_subtransactions() RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          BEGIN
            PERFORM pg_catalog.pg_advisory_lock(9);
            PERFORM pg_catalog.pg_advisory_lock_shared(10);
            PERFORM pg_catalog.set_config('app.leftover', 'from a subtransaction', false);
            CREATE TEMPORARY TABLE rolled_back (x int);
            RAISE EXCEPTION 'roll the block back';
          EXCEPTION WHEN others THEN NULL;
          END;
          BEGIN
            CREATE TEMPORARY TABLE kept (x int) ON COMMIT DELETE ROWS;
            CREATE INDEX ON kept (x);
            LISTEN kept_channel;
            PERFORM pg_catalog.set_config('app.leftover', 'from a released subtransaction', false);
          END;
        END $$;
        CREATE FUNCTION public.state_in_subtransactions_and_fail() RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          BEGIN
            PERFORM pg_catalog.pg_advisory_lock(11);
            LISTEN failing_channel;
            RAISE EXCEPTION 'roll the block back';
          EXCEPTION WHEN others THEN NULL;
          END;
          PERFORM pg_catalog.pg_advisory_lock(12);
          RAISE EXCEPTION 'this request fails';
        END $$;
        GRANT EXECUTE ON FUNCTION public.state_in_subtransactions(),
          public.state_in_subtransactions_and_fail() TO anon;
        ";
    let (app, clean) = start_probed(fixture).await;
    let r = app
        .post("/api/v1/rpc/state_in_subtransactions", None, &json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_clean(&probe(&app).await, &clean, "subtransactions, committed");
    let r = app
        .post(
            "/api/v1/rpc/state_in_subtransactions_and_fail",
            None,
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_clean(&probe(&app).await, &clean, "subtransactions, failed");
}

/// Temporary objects of every kind, with ON COMMIT actions, a holdable cursor over a
/// temporary table (still open when the reset drops it), and a temporary table shadowing a
/// real one through `search_path = pg_temp, public`: the COMMIT that resets succeeds, and
/// the next request reads the real table.
#[tokio::test]
async fn temporary_objects_never_reach_the_next_request() {
    let fixture = "
        CREATE TABLE public.watched (id int PRIMARY KEY);
        INSERT INTO public.watched VALUES (1);
        ALTER TABLE public.watched ENABLE ROW LEVEL SECURITY;
        CREATE POLICY watched_read ON public.watched FOR SELECT USING (true);
        GRANT SELECT ON public.watched TO anon;
        CREATE FUNCTION public.shadow() RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          CREATE TEMPORARY TABLE dropped_at_commit (x int) ON COMMIT DROP;
          CREATE TEMPORARY TABLE emptied_at_commit (x int) ON COMMIT DELETE ROWS;
          INSERT INTO emptied_at_commit VALUES (1);
          CREATE TEMPORARY SEQUENCE leftover_seq;
          PERFORM pg_catalog.nextval('leftover_seq');
          CREATE TEMPORARY TABLE watched (id int);
          INSERT INTO pg_temp.watched VALUES (666);
          CREATE TEMPORARY VIEW watched_view AS SELECT id FROM pg_temp.watched;
          PERFORM pg_catalog.set_config('search_path', 'pg_temp, public', false);
          EXECUTE 'DECLARE over_temp CURSOR WITH HOLD FOR SELECT * FROM pg_temp.watched';
        END $$;
        CREATE FUNCTION public.read_watched() RETURNS SETOF int LANGUAGE sql STABLE AS $$
          SELECT id FROM watched
        $$;
        GRANT EXECUTE ON FUNCTION public.shadow(), public.read_watched() TO anon;
        ";
    let (app, clean) = start_probed(fixture).await;
    let r = app.post("/api/v1/rpc/shadow", None, &json!({})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let read = app.get("/api/v1/rpc/read_watched", None).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(
        read.body,
        json!([1]),
        "a temporary table leaked: {}",
        read.text
    );
    let table = app.get("/api/v1/tables/watched?select=id", None).await;
    assert_eq!(table.body, json!([{"id": 1}]), "{}", table.text);
    assert_clean(&probe(&app).await, &clean, "temporary objects");
}

/// Attempts to keep a role past the request: a session-level `SET ROLE` to the verified role
/// itself (the guard allows it inside the request), `set_config('role', …, false)`, and
/// `SET SESSION AUTHORIZATION`, `RESET ROLE` followed by a statement. The next request, anonymous or signed in, runs as its own
/// role with its own claims.
#[tokio::test]
async fn role_changes_never_reach_the_next_request() {
    let fixture = "
        CREATE FUNCTION public.keep_role() RETURNS json LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
          refused text[] := '{}';
        BEGIN
          EXECUTE 'SET SESSION ROLE ' || pg_catalog.quote_ident(current_user::text);
          PERFORM pg_catalog.set_config('role', current_user::text, false);
          BEGIN PERFORM pg_catalog.set_config('role', 'service_role', false);
          EXCEPTION WHEN others THEN refused := refused || 'service_role'::text; END;
          BEGIN EXECUTE 'SET SESSION AUTHORIZATION service_role';
          EXCEPTION WHEN others THEN refused := refused || 'session_authorization'::text; END;
          -- RESET takes the setting's reset value without its check hook, so the role
          -- guard's executor hook is what refuses the next statement.
          BEGIN EXECUTE 'RESET ROLE'; PERFORM 1 FROM pg_catalog.pg_class LIMIT 1;
          EXCEPTION WHEN others THEN refused := refused || 'reset_role'::text; END;
          RETURN pg_catalog.json_build_object('refused', refused);
        END $$;
        GRANT EXECUTE ON FUNCTION public.keep_role() TO anon, authenticated;
        ";
    let (app, clean) = start_probed(fixture).await;
    let (token, user_id) = app
        .sign_up("keeper@example.com", "Correct horse battery 9")
        .await;
    assert_eq!(clean.body["user"], "anon");

    let r = app
        .post("/api/v1/rpc/keep_role", Some(&token), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["refused"],
        json!(["service_role", "session_authorization", "reset_role"]),
        "{}",
        r.text
    );
    assert_clean(&probe(&app).await, &clean, "a signed-in role change");

    let r = app.post("/api/v1/rpc/keep_role", None, &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let signed_in = app
        .post("/api/v1/rpc/probe", Some(&token), &json!({}))
        .await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    assert_eq!(
        signed_in.body["user"], "authenticated",
        "{}",
        signed_in.text
    );
    assert_eq!(signed_in.body["uid"], json!(user_id), "{}", signed_in.text);
    assert_clean(&probe(&app).await, &clean, "an anonymous role change");
}

/// A request refused inside `auth.authenticate` (a forged signature, an expired token, a
/// token for a user that does not exist, garbage), over RPC and over a plain table read (the
/// one-round-trip pipeline), leaves nothing behind, and neither does the request before it.
#[tokio::test]
async fn a_request_refused_by_authenticate_leaves_nothing_behind() {
    let fixture = "
        CREATE FUNCTION public.leave_state() RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          PERFORM pg_catalog.set_config('app.leftover', 'before a refused token', false);
          PERFORM pg_catalog.pg_advisory_lock(13);
          PERFORM pg_catalog.nextval('public.probe_seq');
          CREATE TEMPORARY TABLE IF NOT EXISTS leftover (x int);
          LISTEN leftover_channel;
        END $$;
        GRANT EXECUTE ON FUNCTION public.leave_state() TO anon;
        ";
    let (app, clean) = start_probed(fixture).await;
    let (token, _) = app
        .sign_up("victim@example.com", "Correct horse battery 9")
        .await;
    let mut forged = token.clone();
    let last = forged.pop().expect("a token");
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let now = fluxbase_tests::now_secs();
    let expired = fluxbase_tests::forge_with(
        &app.cluster.jwt_secret,
        jsonwebtoken::Algorithm::HS256,
        json!({"iat": now - 7200, "exp": now - 3600}),
    );
    let unknown_user = fluxbase_tests::forge_with(
        &app.cluster.jwt_secret,
        jsonwebtoken::Algorithm::HS256,
        json!({}),
    );
    for bad in [
        forged.as_str(),
        expired.as_str(),
        unknown_user.as_str(),
        "garbage",
    ] {
        let r = app.post("/api/v1/rpc/leave_state", None, &json!({})).await;
        assert_eq!(r.status, 204, "{}", r.text);
        let refused = app
            .post("/api/v1/rpc/leave_state", Some(bad), &json!({}))
            .await;
        assert_eq!(refused.status, 401, "{}", refused.text);
        let refused_read = app.get("/api/v1/tables/probe_marks", Some(bad)).await;
        assert_eq!(refused_read.status, 401, "{}", refused_read.text);
        assert_clean(&probe(&app).await, &clean, "a refused token");
    }
}

/// `setseed()` fixes the backend's `random()` sequence for the rest of the session: a
/// request that seeds must not decide what `random()` returns in the next request (a default
/// or a function that draws with it would be predictable to whoever seeded).
#[tokio::test]
async fn a_random_seed_set_by_a_request_never_reaches_the_next() {
    let fixture = "
        CREATE FUNCTION public.seed() RETURNS void LANGUAGE sql VOLATILE AS $$
          SELECT pg_catalog.setseed(0.25)
        $$;
        CREATE FUNCTION public.draw() RETURNS float8 LANGUAGE sql VOLATILE AS $$
          SELECT pg_catalog.random()
        $$;
        GRANT EXECUTE ON FUNCTION public.seed(), public.draw() TO anon;
    ";
    let app = PreparedApp::start_with(fixture, "", 1, "").await;
    let mut draws = Vec::new();
    for _ in 0..2 {
        let r = app.post("/api/v1/rpc/seed", None, &json!({})).await;
        assert_eq!(r.status, 204, "{}", r.text);
        let r = app.post("/api/v1/rpc/draw", None, &json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        draws.push(r.body.clone());
    }
    assert_ne!(
        draws[0], draws[1],
        "the seed of one request decided the next request's random(): {draws:?}"
    );
}

/// SQL-level prepared statements (`EXECUTE 'PREPARE …'` in a function) are session state
/// that neither COMMIT nor ROLLBACK undoes: the next request must not find (or run) them.
#[tokio::test]
async fn sql_prepared_statements_never_reach_the_next_request() {
    let fixture = "
        CREATE FUNCTION public.leave_prepared() RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          EXECUTE 'PREPARE leftover_committed AS SELECT ''from the last request''::text';
        END $$;
        CREATE FUNCTION public.leave_prepared_and_fail() RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          EXECUTE 'PREPARE leftover_failed AS SELECT ''from a failed request''::text';
          RAISE EXCEPTION 'this request fails';
        END $$;
        CREATE FUNCTION public.run_leftover(name text) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
          got text;
        BEGIN
          EXECUTE 'EXECUTE ' || pg_catalog.quote_ident(name) INTO got;
          RETURN got;
        EXCEPTION WHEN invalid_sql_statement_name THEN
          RETURN NULL;
        END $$;
        GRANT EXECUTE ON FUNCTION public.leave_prepared(), public.leave_prepared_and_fail(),
          public.run_leftover(text) TO anon;
        ";
    let (app, clean) = start_probed(fixture).await;
    // The extension refuses PREPARE, EXECUTE and DEALLOCATE in request transactions (42501).
    let r = app
        .post("/api/v1/rpc/leave_prepared", None, &json!({}))
        .await;
    assert_refused(&r);
    let ran = app
        .post(
            "/api/v1/rpc/run_leftover",
            None,
            &json!({"name": "leftover_committed"}),
        )
        .await;
    assert_refused(&ran);
    let r = app
        .post("/api/v1/rpc/leave_prepared_and_fail", None, &json!({}))
        .await;
    assert_refused(&r);
    let ran = app
        .post(
            "/api/v1/rpc/run_leftover",
            None,
            &json!({"name": "leftover_failed"}),
        )
        .await;
    assert_refused(&ran);
    assert_clean(&probe(&app).await, &clean, "PREPARE");
}

/// `DEALLOCATE ALL` in a function drops the server's own protocol-level statements
/// (`auth.authenticate`'s and the cached generated ones share the session's namespace of
/// prepared statements): the next requests on that connection must still work.
#[tokio::test]
async fn a_request_that_deallocates_everything_does_not_break_the_next() {
    let fixture = "
        CREATE FUNCTION public.forget_everything() RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          EXECUTE 'DEALLOCATE ALL';
        END $$;
        GRANT EXECUTE ON FUNCTION public.forget_everything() TO anon;
        ";
    let (app, _) = start_probed(fixture).await;
    let r = app
        .post("/api/v1/rpc/forget_everything", None, &json!({}))
        .await;
    assert_refused(&r);
    for _ in 0..3 {
        let after = probe(&app).await;
        assert_eq!(
            after.status, 200,
            "the pooled connection is broken for every later request: {}",
            after.text
        );
    }
}

/// The server's prepared statement for `SELECT auth.authenticate($1::text)` is named in
/// `pg_prepared_statements`; SQL an anonymous request runs (a function with dynamic SQL)
/// replaces it with one of its own under the same name. The next request, a signed-in
/// user's, must still authenticate as that user, and its bearer token must not reach the
/// attacker's next request.
#[tokio::test]
async fn a_request_cannot_replace_the_servers_authenticate_statement() {
    let fixture = "
        -- Runs as whatever role executes the replaced statement (the login role: nothing
        -- authenticated): keeps the token it is given as a prepared statement of the session.
        CREATE FUNCTION public.keep_token(token text) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          EXECUTE pg_catalog.format('PREPARE stolen_token AS SELECT %L::text', coalesce(token, '(none)'));
        EXCEPTION WHEN duplicate_prepared_statement THEN NULL;
        END $$;
        GRANT EXECUTE ON FUNCTION public.keep_token(text) TO PUBLIC;
        CREATE FUNCTION public.hijack() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
          target text;
        BEGIN
          SELECT name INTO target FROM pg_catalog.pg_prepared_statements
            WHERE NOT from_sql AND statement = 'SELECT auth.authenticate($1::text)';
          IF target IS NULL THEN
            RETURN NULL;
          END IF;
          EXECUTE pg_catalog.format('DEALLOCATE %I', target);
          EXECUTE pg_catalog.format('PREPARE %I(text) AS SELECT public.keep_token($1)', target);
          RETURN target;
        END $$;
        CREATE FUNCTION public.loot() RETURNS text LANGUAGE sql VOLATILE AS $$
          SELECT statement FROM pg_catalog.pg_prepared_statements WHERE name = 'stolen_token'
        $$;
        GRANT EXECUTE ON FUNCTION public.hijack() TO anon;
        GRANT EXECUTE ON FUNCTION public.loot() TO PUBLIC;
        ";
    let (app, _) = start_probed(fixture).await;
    let (token, user_id) = app
        .sign_up("victim@example.com", "Correct horse battery 9")
        .await;
    let r = app.post("/api/v1/rpc/hijack", None, &json!({})).await;
    assert_refused(&r);
    let victim = app
        .post("/api/v1/rpc/probe", Some(&token), &json!({}))
        .await;
    let loot = app.post("/api/v1/rpc/loot", None, &json!({})).await;
    assert!(
        !loot.text.contains(&token),
        "the attacker's request read the next request's bearer token: {}",
        loot.text
    );
    assert_eq!(victim.status, 200, "{}", victim.text);
    assert_eq!(
        victim.body["user"], "authenticated",
        "the signed-in request did not run as its role: {}",
        victim.text
    );
    assert_eq!(victim.body["uid"], json!(user_id), "{}", victim.text);
}

/// A request refused by the extension's guard: 401 (anonymous) in the error shape, no SQL text.
fn assert_refused(r: &Response) {
    assert_eq!(r.status, 401, "{}", r.text);
    assert_error_shape(r);
    assert!(
        !r.text.contains("PREPARE") && !r.text.contains("DEALLOCATE"),
        "{}",
        r.text
    );
}

/// `RESET ROLE` skips the `role` setting's check hook in PostgreSQL, so
/// the guard refuses it as a statement once a transaction has authenticated: a function
/// cannot drop back to the server's login role (whose grants include the auth.* functions
/// only the server may call) for the rest of a request.
#[tokio::test]
async fn a_request_cannot_reset_its_role() {
    let fixture = "
        CREATE FUNCTION public.reset_my_role(how text) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          EXECUTE how;
          RETURN current_user;
        END $$;
        GRANT EXECUTE ON FUNCTION public.reset_my_role(text) TO anon;
    ";
    let app = PreparedApp::start_with(fixture, "", 1, "").await;
    for how in ["RESET ROLE", "RESET role", "reset \"role\""] {
        let r = app
            .post("/api/v1/rpc/reset_my_role", None, &json!({ "how": how }))
            .await;
        assert_refused(&r);
    }
    // The connection serves the next request as usual.
    let r = app
        .post(
            "/api/v1/rpc/reset_my_role",
            None,
            &json!({ "how": "SELECT 1" }),
        )
        .await;
    assert_eq!(r.body, json!("anon"), "{}", r.text);
}
