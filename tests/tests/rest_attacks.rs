//! `/api/v1/tables` as an attacker sees it: injection through every query parameter and
//! header, resource exhaustion, RLS through embedding, counts and `!inner` as oracles,
//! writes that try to reach other users' rows, hidden schemas and relations, and
//! PostgREST's schema headers. Each probe must answer a 4xx in the error shape (never a
//! 5xx, never SQL) and change nothing. The fixture is tests/sql/attacks_fixture.sql.
#[path = "support/prepared.rs"]
mod prepared;

use fluxbase_tests::{assert_error_shape, assert_no_leak, Response};
use prepared::PreparedApp;
use reqwest::Method;
use serde_json::{json, Value};

const FIXTURE: &str = include_str!("../sql/attacks_fixture.sql");

/// The fixture's users and their rows.
struct World {
    app: PreparedApp,
    alice: String,
    bob: String,
}

async fn world_with(server_extra: &str, max_connections: u32, extra: &str) -> World {
    let app = PreparedApp::start_with(FIXTURE, server_extra, max_connections, extra).await;
    let (alice, alice_id) = app.sign_up("alice@example.com", "Alice-password-1").await;
    let (bob, bob_id) = app.sign_up("bob@example.com", "Bob-password-1!x").await;
    app.admin
        .batch_execute(&format!(
            "INSERT INTO public.docs (id, owner, is_public, title, data, tags) VALUES
               (1, '{alice_id}', true,  'alice public',  '{{\"k\": \"v\"}}', '{{a,b}}'),
               (2, '{alice_id}', false, 'alice private', NULL, NULL),
               (3, '{bob_id}',   false, 'bob private',   NULL, NULL),
               (4, '{bob_id}',   true,  'bob public',    NULL, NULL);
             INSERT INTO public.secrets (id, doc_id, owner, value) VALUES
               (1, 1, '{alice_id}', 'alice-secret'),
               (2, 4, '{bob_id}', 'bob-secret'),
               (3, 1, '{bob_id}', 'bob-on-alice-doc'),
               (4, 2, '{bob_id}', 'bob-on-alice-private');
             INSERT INTO public.labels VALUES (1, 'visible-label', false), (2, 'hidden-label', true);
             INSERT INTO public.doc_labels VALUES (1, 1), (1, 2), (4, 2);"
        ))
        .await
        .expect("seed");
    World { app, alice, bob }
}

async fn world() -> World {
    world_with("", 4, "").await
}

/// Every table's rows, as text: what "changes nothing" compares.
async fn fingerprint(app: &PreparedApp) -> String {
    let mut out = String::new();
    for table in [
        "docs",
        "secrets",
        "labels",
        "doc_labels",
        "dropbox",
        "open_table",
        "hijack_rows",
        "attack_log",
    ] {
        let row = app
            .admin
            .query_one(
                &format!("SELECT coalesce(string_agg(t::text, '|' ORDER BY t::text), '') FROM public.{table} t"),
                &[],
            )
            .await
            .expect("fingerprint");
        let rows: String = row.get(0);
        out.push_str(&format!("{table}: {rows}\n"));
    }
    out
}

/// Asserts a 4xx in the error shape without leaks, and returns the code.
fn refused(r: &Response, what: &str) -> String {
    assert!(
        (400..500).contains(&r.status),
        "{what}: expected a 4xx, got {}: {}",
        r.status,
        r.text
    );
    let code = assert_error_shape(r);
    for needle in ["nowhere", "_t0", "::text", "json_agg", "coalesce("] {
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

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn hostile_query_parameters_are_4xx_and_change_nothing() {
    let w = world().await;
    let app = &w.app;
    let before = fingerprint(app).await;
    let evil = enc("x'); DELETE FROM public.docs; --");
    let long = "a".repeat(30_000);
    let deep_or = {
        let mut s = "id.eq.1".to_owned();
        for _ in 0..40 {
            s = format!("or({s})");
        }
        format!("or=({s})")
    };
    let many_ins = format!(
        "id=in.({})",
        (0..3_000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let queries: Vec<String> = vec![
        // select: names, casts, JSON paths, aliases, embeds, hints
        "select=id;delete%20from%20docs".into(),
        "select=id::regclass".into(),
        "select=id::text;drop".into(),
        "select=(select%201)".into(),
        format!("select={}", enc("data->>k')) FROM docs; --")),
        format!("select={}", enc("\"id\"")),
        format!("select={}", enc("a\"b:id")),
        format!("select={}", enc("a b:id")),
        "select=data->>%00".into(),
        "select=ti%00tle".into(),
        "select=title%ff".into(),
        "select=secrets!doc_id;drop(*)".into(),
        format!("select={}", enc("secrets!\"x\"(*)")),
        "select=secrets!nope(*)".into(),
        "select=users(*)".into(),
        "select=auth.users(*)".into(),
        format!("select={}", enc("*,auth_users:auth.users(*)")),
        "select=...secrets(*)".into(),
        "select=secrets(".into(),
        "select=secrets)".into(),
        format!("select={long}"),
        // order
        "order=id;delete".into(),
        "order=id.desc;--".into(),
        "order=id.desc.nullslast.x".into(),
        "order=secrets(value).desc".into(),
        "order=".into(),
        // filter names
        format!("{}=eq.1", enc("id;--")),
        format!("{}=eq.1", enc("\"id\"")),
        "nope=eq.1".into(),
        "id%00=eq.1".into(),
        "secrets.value=eq.x".into(),
        // filter values
        format!("id=eq.{evil}"),
        "id=eq.$1".into(),
        "id=eq.1;drop".into(),
        "title=eq.%00".into(),
        "title=like.a%00b".into(),
        "id=gt.99999999999999999999999".into(),
        "data=eq.not-json".into(),
        "tags=cs.{a".into(),
        "title=match.(".into(),
        "title=fts(nonexistent_config).x".into(),
        format!("title=fts({}).x", enc("english'")),
        // to_tsquery's own syntax errors (found by a red-team review: were 500s).
        format!("title=fts(english).{}", enc("a &&&")),
        format!("title=fts.{}", enc("!")),
        format!("title=fts.{}", enc("(")),
        format!("title=fts.{}", enc("a:*:")),
        format!("title=fts(simple).{}", enc("|")),
        format!("title=not.fts.{}", enc("a & (b")),
        format!("or=(title.fts.{})", enc("a &&&")),
        "title=is.maybe".into(),
        "id=eq(any).{1,2".into(),
        "id=in.(1,2".into(),
        format!("id=in.({evil})"),
        "title=eq.x&or=()".into(),
        "and=()".into(),
        "not.or=()".into(),
        "or=(id.eq.1,)".into(),
        "or=(id.eq.1))".into(),
        "or=id.eq.1".into(),
        format!("or=(title.eq.{evil},id.eq.$1)"),
        deep_or,
        // paging
        "limit=-1".into(),
        "limit=1e3".into(),
        "offset=abc".into(),
        "limit=99999999999999999999999".into(),
        // reserved parameters that mean nothing on GET
        "columns=id".into(),
        "on_conflict=id".into(),
        "count=everything".into(),
    ];
    // Every probe runs; the failures are reported together.
    let mut failures = Vec::new();
    for q in &queries {
        for token in [None, Some(w.alice.as_str())] {
            let r = app.get(&format!("/api/v1/tables/docs?{q}"), token).await;
            let shown: String = q.chars().take(80).collect();
            let text: String = r.text.chars().take(200).collect();
            match std::panic::catch_unwind(|| refused(&r, &shown)) {
                Ok(_) => {}
                Err(_) => failures.push(format!("{shown}: {} {text}", r.status)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A list as long as the query string allows is fine, and bounded.
    let r = app
        .get(&format!("/api/v1/tables/docs?{many_ins}"), None)
        .await;
    assert_eq!(r.status, 200, "{}", &r.text[..r.text.len().min(300)]);
    // A value as long as the query string allows is a value.
    let r = app
        .get(&format!("/api/v1/tables/docs?title=eq.{long}"), None)
        .await;
    assert_eq!(r.status, 200, "{}", &r.text[..r.text.len().min(300)]);
    assert_eq!(r.body, json!([]));
    // Quotes and SQL in a value are data: nothing matches, nothing breaks.
    let r = app
        .get(&format!("/api/v1/tables/docs?title=eq.{evil}"), None)
        .await;
    assert_eq!((r.status, r.body.clone()), (200, json!([])), "{}", r.text);
    // JSON path keys with quotes are keys.
    let r = app
        .get(
            &format!("/api/v1/tables/docs?select={}&id=eq.1", enc("data->>'k'")),
            None,
        )
        .await;
    assert_eq!(r.body, json!([{"'k'": null}]), "{}", r.text);
    let r = app
        .get(
            &format!(
                "/api/v1/tables/docs?select=id,x:data->>{}&id=eq.1",
                enc("k' OR '1'='1")
            ),
            None,
        )
        .await;
    assert_eq!(r.body, json!([{"id": 1, "x": null}]), "{}", r.text);
    assert_eq!(fingerprint(app).await, before);
}

#[tokio::test]
async fn hostile_headers_are_4xx() {
    let w = world().await;
    let app = &w.app;
    let before = fingerprint(app).await;
    let cases: Vec<(&str, String)> = vec![
        ("Range", "abc".into()),
        ("Range", "5-1".into()),
        ("Range", "-5".into()),
        ("Range", "0-99999999999999999999999".into()),
        ("Range", "0-1;drop".into()),
        ("Range-Unit", "bytes".into()),
        ("Accept", "application/xml".into()),
        ("Accept", "text/html".into()),
        ("Accept", "application/json;q=0".into()),
        ("Accept-Profile", "auth".into()),
        ("Accept-Profile", "pg_catalog".into()),
        ("Accept-Profile", "nope".into()),
        ("Accept-Profile", "public;drop".into()),
        ("Prefer", "handling=strict, count=lots".into()),
        ("Prefer", format!("handling=strict, {}", "x".repeat(5000))),
    ];
    for (name, value) in &cases {
        let r = app
            .request(
                Method::GET,
                "/api/v1/tables/docs",
                None,
                None,
                &[(name, value.as_str())],
            )
            .await;
        refused(&r, &format!("{name}: {}", &value[..value.len().min(60)]));
    }
    // Writes: bodies and content types.
    let posts: Vec<(&str, Vec<u8>, &str)> = vec![
        ("text/plain", b"{\"id\": 50}".to_vec(), "text/plain"),
        (
            "application/x-www-form-urlencoded",
            b"id=50".to_vec(),
            "form",
        ),
        (
            "application/json",
            b"{\"id\": 50".to_vec(),
            "truncated JSON",
        ),
        ("application/json", vec![b'"', 0xff, b'"'], "invalid UTF-8"),
        ("application/json", b"[1, 2]".to_vec(), "array of numbers"),
        ("application/json", b"42".to_vec(), "a number"),
        (
            "application/json",
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            "deep nesting",
        ),
        (
            "application/json",
            b"{\"id\": 50, \"title\": \"a\\u0000b\"}".to_vec(),
            "NUL in a string",
        ),
        (
            "application/json",
            b"{\"id\": 50, \"id;drop\": 1}".to_vec(),
            "hostile key",
        ),
        (
            "application/json",
            b"{\"id\": \"fifty\"}".to_vec(),
            "wrong type",
        ),
        (
            "application/json",
            format!("[{}]", vec!["{\"id\": 60}"; 200_000].join(",")).into_bytes(),
            "a body over the limit",
        ),
    ];
    for (ct, body, what) in posts {
        let r = app
            .send(
                Method::POST,
                "/api/v1/tables/docs",
                Some(&w.alice),
                &[("Content-Type", ct)],
                Some(body),
            )
            .await;
        refused(&r, what);
    }
    for (q, what) in [
        ("on_conflict=id;drop", "on_conflict injection"),
        ("on_conflict=title", "on_conflict without a unique key"),
        ("columns=id,%22title", "columns with a stray quote"),
        ("columns=id;drop", "columns injection"),
    ] {
        let r = app
            .request(
                Method::POST,
                &format!("/api/v1/tables/docs?{q}"),
                Some(&w.alice),
                Some(&json!({"id": 70})),
                &[("Prefer", "resolution=merge-duplicates")],
            )
            .await;
        refused(&r, what);
    }
    let r = app
        .request(
            Method::POST,
            "/api/v1/tables/docs?on_conflict=id",
            Some(&w.alice),
            Some(&json!({"id": 70})),
            &[],
        )
        .await;
    refused(&r, "on_conflict without a resolution");
    assert_eq!(fingerprint(app).await, before);
}

#[tokio::test]
async fn exhaustion_is_bounded() {
    let w = world_with("", 4, "api: { max_rows: 3 }\n").await;
    let app = &w.app;
    app.admin
        .batch_execute(
            "INSERT INTO public.docs (id, is_public, title) SELECT g, true, 'bulk' FROM generate_series(100, 120) g;
             INSERT INTO public.secrets (id, doc_id, owner, value)
               SELECT g, 1, (SELECT owner FROM public.docs WHERE id = 1), 'many' FROM generate_series(100, 120) g;",
        )
        .await
        .unwrap();
    // max_rows caps the top level and every embed, whatever limit is asked for.
    let r = app.get("/api/v1/tables/docs?limit=999999999", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body.as_array().unwrap().len(), 3);
    let r = app
        .get(
            "/api/v1/tables/docs?select=id,secrets(id)&id=eq.1&secrets.limit=999999999",
            Some(&w.alice),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body[0]["secrets"].as_array().unwrap().len(),
        3,
        "{}",
        r.text
    );
    let r = app
        .request(
            Method::GET,
            "/api/v1/tables/docs",
            None,
            None,
            &[("Range", "0-999999")],
        )
        .await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(3), "{}", r.text);
    // Thousands of columns or embeds: a clear 4xx, not a 500.
    let columns = vec!["id"; 3000].join(",");
    let r = app
        .get(&format!("/api/v1/tables/docs?select={columns}"), None)
        .await;
    refused(&r, "3000 columns");
    let embeds: Vec<String> = (0..2000).map(|i| format!("e{i}:secrets(id)")).collect();
    let r = app
        .get(
            &format!("/api/v1/tables/docs?select={}", embeds.join(",")),
            None,
        )
        .await;
    refused(&r, "2000 embeds");
    // Deep embeds beyond the depth limit.
    let mut deep = "id".to_owned();
    for _ in 0..20 {
        deep = format!("id,docs(id,secrets({deep}))");
    }
    let r = app
        .get(&format!("/api/v1/tables/secrets?select={deep}"), None)
        .await;
    refused(&r, "deep embeds");
}

#[tokio::test]
async fn rls_holds_through_embeds_inner_joins_and_counts() {
    let w = world().await;
    let app = &w.app;
    let anon: Option<&str> = None;
    // To-many: a hidden secret is never nested (anon sees none, alice only hers).
    let r = app
        .get(
            "/api/v1/tables/docs?select=id,secrets(value)&order=id&secrets.order=id",
            anon,
        )
        .await;
    assert_eq!(
        r.body,
        json!([{"id": 1, "secrets": []}, {"id": 4, "secrets": []}]),
        "{}",
        r.text
    );
    let r = app
        .get(
            "/api/v1/tables/docs?select=id,secrets(value)&order=id&secrets.order=id",
            Some(&w.alice),
        )
        .await;
    assert_eq!(
        r.body,
        json!([
            {"id": 1, "secrets": [{"value": "alice-secret"}]},
            {"id": 2, "secrets": []},
            {"id": 4, "secrets": []}
        ]),
        "{}",
        r.text
    );
    // To-one: bob's secret on alice's private doc shows no doc.
    let r = app
        .get(
            "/api/v1/tables/secrets?select=id,docs(title)&order=id",
            Some(&w.bob),
        )
        .await;
    assert_eq!(
        r.body,
        json!([
            {"id": 2, "docs": {"title": "bob public"}},
            {"id": 3, "docs": {"title": "alice public"}},
            {"id": 4, "docs": null}
        ]),
        "{}",
        r.text
    );
    // Many-to-many: the hidden label is not there, though the junction row is visible.
    let r = app
        .get("/api/v1/tables/docs?select=id,labels(name)&order=id", anon)
        .await;
    assert_eq!(
        r.body,
        json!([{"id": 1, "labels": [{"name": "visible-label"}]}, {"id": 4, "labels": []}]),
        "{}",
        r.text
    );
    // !inner and embedded filters are no oracle for hidden rows: the same answer whether
    // the hidden value exists or not.
    for (q, token) in [
        (
            "select=id,secrets!inner(id)&secrets.value=eq.bob-secret",
            anon,
        ),
        (
            "select=id,secrets!inner(id)&secrets.value=eq.bob-secret",
            Some(w.alice.as_str()),
        ),
        (
            "select=id,secrets!inner()&secrets.value=eq.bob-on-alice-doc",
            Some(w.alice.as_str()),
        ),
        (
            "select=id,labels!inner(id)&labels.name=eq.hidden-label",
            anon,
        ),
        (
            "select=id,secrets!inner(id)&secrets.or=(value.eq.bob-secret,value.like.bob*)",
            anon,
        ),
    ] {
        for prefer in ["count=exact", "count=planned", "count=estimated"] {
            let r = app
                .request(
                    Method::GET,
                    &format!("/api/v1/tables/docs?{q}"),
                    token,
                    None,
                    &[("Prefer", prefer)],
                )
                .await;
            assert_eq!(
                (r.status, r.body.clone()),
                (200, json!([])),
                "{q} {prefer}: {}",
                r.text
            );
            assert_eq!(header(&r, "content-range"), Some("*/0"), "{q} {prefer}");
        }
    }
    let r = app
        .get(
            "/api/v1/tables/docs?select=id,secrets(id)&secrets.value=eq.bob-secret&order=id",
            anon,
        )
        .await;
    assert_eq!(
        r.body,
        json!([{"id": 1, "secrets": []}, {"id": 4, "secrets": []}])
    );
}

#[tokio::test]
async fn planned_and_estimated_counts_do_not_describe_hidden_rows() {
    let w = world().await;
    let app = &w.app;
    // Thousands of rows nobody but their owner (bob) may see, and fresh statistics.
    app.admin
        .batch_execute(
            "INSERT INTO public.secrets (id, doc_id, owner, value)
               SELECT g, 3, (SELECT owner FROM public.docs WHERE id = 3), 'hidden ' || g
               FROM generate_series(1000, 6000) g;
             ANALYZE public.secrets;",
        )
        .await
        .unwrap();
    for token in [None, Some(w.alice.as_str())] {
        for prefer in ["count=planned", "count=estimated"] {
            for q in ["", "value=like.hidden*", "value=eq.hidden%201500"] {
                let r = app
                    .request(
                        Method::GET,
                        &format!("/api/v1/tables/secrets?select=id&{q}"),
                        token,
                        None,
                        &[("Prefer", prefer)],
                    )
                    .await;
                assert!(r.status == 200 || r.status == 206, "{}", r.text);
                let visible = r.body.as_array().unwrap().len();
                let range = header(&r, "content-range").unwrap_or_default().to_owned();
                let total: usize = range
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap_or(usize::MAX);
                assert_eq!(
                    total, visible,
                    "{prefer} {q} (token: {}): Content-Range {range} describes rows the caller cannot see",
                    token.is_some()
                );
            }
        }
    }
    // service_role sees everything anyway: its planned count is the planner's.
    let service: String = app
        .admin
        .query_one(
            "SELECT auth.issue_api_key('service_role', 'attacks test')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let r = app
        .request(
            Method::GET,
            "/api/v1/tables/secrets?select=id&limit=1",
            Some(&service),
            None,
            &[("Prefer", "count=planned")],
        )
        .await;
    assert_eq!(r.status, 206, "{}", r.text);
    let range = header(&r, "content-range").unwrap().to_owned();
    let total: i64 = range.rsplit('/').next().unwrap().parse().unwrap();
    assert!(total > 4000, "{range}");
}

#[tokio::test]
async fn writes_cannot_reach_other_users_rows() {
    let w = world().await;
    let app = &w.app;
    let before = fingerprint(app).await;
    // PATCH/DELETE with only embedded filters, an empty or, none at all.
    for (method, q) in [
        (Method::PATCH, "select=*,secrets(*)&secrets.id=eq.1"),
        (Method::DELETE, "select=*,secrets(*)&secrets.id=eq.1"),
        (Method::PATCH, "secrets.id=eq.1"),
        (Method::DELETE, "or=()"),
        (Method::DELETE, ""),
        (Method::PATCH, ""),
        (Method::DELETE, "limit=1"),
    ] {
        let body = (method == Method::PATCH).then(|| json!({"title": "pwned"}));
        let r = app
            .request(
                method.clone(),
                &format!("/api/v1/tables/docs?{q}"),
                Some(&w.alice),
                body.as_ref(),
                &[],
            )
            .await;
        refused(&r, &format!("{method} {q}"));
    }
    // An always-true filter changes only what RLS lets the caller change.
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/tables/docs?id=not.is.null",
            Some(&w.alice),
            Some(&json!({"title": "mine"})),
            &[
                ("Prefer", "return=representation"),
                ("Prefer", "tx=rollback"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body.as_array().unwrap().len(), 2, "{}", r.text);
    // Upserts onto bob's rows: visible (4) or not (3), merge or ignore.
    for id in [3, 4] {
        for resolution in ["merge-duplicates", "ignore-duplicates"] {
            for body in [
                json!({"id": id, "title": "pwned"}),
                json!({"id": id, "title": "pwned", "owner": null}),
                json!([{"id": 90, "title": "fine"}, {"id": id, "title": "pwned"}]),
            ] {
                let r = app
                    .request(
                        Method::POST,
                        "/api/v1/tables/docs",
                        Some(&w.alice),
                        Some(&body),
                        &[(
                            "Prefer",
                            &format!("resolution={resolution},return=representation"),
                        )],
                    )
                    .await;
                assert!(r.status < 500, "{}", r.text);
                assert_no_leak(&r.text);
                if r.status >= 400 {
                    assert_error_shape(&r);
                }
                assert!(!r.text.contains("bob"), "{}", r.text);
                app.admin
                    .batch_execute("DELETE FROM public.docs WHERE id = 90")
                    .await
                    .unwrap();
            }
        }
    }
    // Updating one's own row to belong to bob.
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/tables/docs?id=eq.2",
            Some(&w.alice),
            Some(&json!({"owner": null})),
            &[],
        )
        .await;
    refused(&r, "give a row away");
    assert_eq!(fingerprint(app).await, before);
    // tx=rollback: the answer, then nothing written.
    let r = app
        .request(
            Method::POST,
            "/api/v1/tables/docs",
            Some(&w.alice),
            Some(&json!([{"id": 10}, {"id": 11, "title": "t"}])),
            &[(
                "Prefer",
                "missing=default, return=representation, tx=rollback",
            )],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    assert_eq!(r.body[0]["title"], "untitled", "{}", r.text);
    assert!(r.body[0]["owner"].is_string(), "{}", r.text);
    assert_eq!(fingerprint(app).await, before);
    // Insert-only table: minimal works, a representation is refused and writes nothing.
    let r = app
        .request(
            Method::POST,
            "/api/v1/tables/dropbox",
            None,
            Some(&json!({"note": "n"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let count = app.scalar_i64("SELECT count(*) FROM public.dropbox").await;
    let r = app
        .request(
            Method::POST,
            "/api/v1/tables/dropbox",
            None,
            Some(&json!({"note": "n"})),
            &[("Prefer", "return=representation")],
        )
        .await;
    refused(&r, "representation without SELECT");
    let r = app
        .request(
            Method::POST,
            "/api/v1/tables/dropbox",
            None,
            Some(&json!({"note": "n"})),
            &[("Prefer", "return=headers-only")],
        )
        .await;
    refused(&r, "headers-only without SELECT");
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM public.dropbox").await,
        count
    );
}

#[tokio::test]
async fn hidden_schemas_and_unprotected_relations_do_not_exist() {
    let w = world().await;
    let app = &w.app;
    for path in [
        "/api/v1/tables/auth/users",
        "/api/v1/tables/AUTH/users",
        "/api/v1/tables/%61uth/users",
        "/api/v1/tables/%22auth%22/users",
        "/api/v1/tables/auth.users",
        "/api/v1/tables/users",
        "/api/v1/tables/public/..%2Fauth%2Fusers",
        "/api/v1/tables/pg_catalog/pg_authid",
        "/api/v1/tables/pg_catalog/pg_roles",
        "/api/v1/tables/information_schema/tables",
        "/api/v1/tables/audit/log",
        "/api/v1/tables/fluxbase/settings",
        "/api/v1/tables/open_table",
        "/api/v1/tables/owner_view",
        "/api/v1/tables/invoker_open_view",
        "/api/v1/tables/public/open_table",
        "/api/v1/tables/Docs",
        "/api/v1/tables/docs%00",
    ] {
        for token in [None, Some(w.alice.as_str())] {
            let r = app.get(path, token).await;
            let code = refused(&r, path);
            assert!(
                code == "TABLE_NOT_FOUND" || code == "INVALID_PATH",
                "{path}: {code}"
            );
            assert!(!r.text.contains("\"open\""), "{path}: {}", r.text);
        }
    }
    // Embedding cannot reach them either.
    for q in [
        "select=*,open_table(*)",
        "select=*,users(*)",
        "select=*,owner_view(*)",
    ] {
        let r = app.get(&format!("/api/v1/tables/docs?{q}"), None).await;
        refused(&r, q);
    }
    // A security_invoker view over an RLS table is exposed, under that RLS.
    let r = app
        .get("/api/v1/tables/invoker_secrets_view", Some(&w.alice))
        .await;
    assert_eq!(
        r.body,
        json!([{"id": 1, "value": "alice-secret"}]),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn profile_headers_choose_an_exposed_schema_or_are_refused() {
    let w = world().await;
    let app = &w.app;
    // postgrest-js `.schema('x')` sends Accept-Profile (reads) / Content-Profile (writes).
    let r = app
        .request(
            Method::GET,
            "/api/v1/tables/docs?select=id&order=id",
            None,
            None,
            &[("Accept-Profile", "public")],
        )
        .await;
    assert_eq!(r.body, json!([{"id": 1}, {"id": 4}]), "{}", r.text);
    for schema in ["auth", "nope", "pg_catalog", "AUTH"] {
        let r = app
            .request(
                Method::GET,
                "/api/v1/tables/users",
                None,
                None,
                &[("Accept-Profile", schema)],
            )
            .await;
        assert_eq!(r.status, 406, "{schema}: {}", r.text);
        assert_eq!(assert_error_shape(&r), "INVALID_SCHEMA");
        let r = app
            .request(
                Method::POST,
                "/api/v1/tables/docs",
                Some(&w.alice),
                Some(&json!({"id": 77})),
                &[("Content-Profile", schema)],
            )
            .await;
        assert_eq!(r.status, 406, "{schema}: {}", r.text);
    }
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM public.docs WHERE id = 77")
            .await,
        0
    );
}

#[tokio::test]
async fn reads_stay_read_only_and_defaults_cannot_switch_roles() {
    let w = world_with("", 1, "").await;
    let app = &w.app;
    let before = fingerprint(app).await;
    // A column default that tries set_config('role', 'service_role'): refused, nothing
    // written, and the next request on the (only) connection is itself.
    let r = app
        .request(
            Method::POST,
            "/api/v1/tables/hijack_rows",
            Some(&w.alice),
            Some(&json!({})),
            &[],
        )
        .await;
    assert!(r.status == 403 || r.status == 401, "{}", r.text);
    assert_error_shape(&r);
    assert_eq!(fingerprint(app).await, before);
    let r = app.post("/api/v1/rpc/whoami", None, &json!({})).await;
    assert_eq!(r.body["db_role"], "anon", "{}", r.text);
    assert_eq!(r.body["uid"], Value::Null, "{}", r.text);
    // HEAD and GET never write, whatever the query.
    let r = app
        .request(Method::HEAD, "/api/v1/tables/docs?id=eq.1", None, None, &[])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(fingerprint(app).await, before);
}
