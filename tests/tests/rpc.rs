//! `/api/v1/rpc/{fn}` against a real cluster and server: PostgREST's calling conventions,
//! and the security properties (the caller's role and claims inside the function, EXECUTE
//! privileges, hidden schemas, names and values that try to be SQL, nothing half-written).
//! The functions are in tests/sql/rpc_fixture.sql.
#[path = "support/prepared.rs"]
mod prepared;

use fluxbase_tests::{assert_error_shape, assert_no_leak, Response};
use prepared::PreparedApp;
use reqwest::Method;
use serde_json::{json, Value};

const FIXTURE: &str = include_str!("../sql/rpc_fixture.sql");

async fn start() -> PreparedApp {
    PreparedApp::start(FIXTURE).await
}

fn assert_status(r: &Response, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text);
}

/// Asserts an error of `status` in the error shape, and returns its code.
fn assert_error(r: &Response, status: u16, what: &str) -> String {
    assert_status(r, status, what);
    assert_error_shape(r)
}

async fn log_rows(app: &PreparedApp) -> i64 {
    app.scalar_i64("SELECT count(*) FROM public.rpc_log").await
}

#[tokio::test]
async fn scalars_by_post_and_get_with_defaults() {
    let app = start().await;
    let r = app
        .post("/api/v1/rpc/add_them", None, &json!({"a": 1, "b": 2}))
        .await;
    assert_status(&r, 200, "add_them");
    assert_eq!(r.body, json!(3));
    let r = app
        .post("/api/v1/rpc/add_them", None, &json!({"a": 5}))
        .await;
    assert_eq!((r.status, r.body.clone()), (200, json!(15)), "default b");
    let r = app.get("/api/v1/rpc/add_them?a=1&b=2", None).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!(3)),
        "GET: {}",
        r.text
    );
    // Numbers are passed exactly, never through a float.
    let r = app
        .post_raw(
            "/api/v1/rpc/plus_one",
            None,
            "application/json",
            r#"{"n": 12345678901234567890.123456789}"#,
        )
        .await;
    assert_status(&r, 200, "plus_one");
    assert_eq!(r.text.trim(), "12345678901234567891.123456789");
    // Arrays and objects reach array and jsonb arguments as themselves.
    let r = app
        .post(
            "/api/v1/rpc/describe",
            None,
            &json!({"tags": ["a", "b,c"], "meta": {"k": [1, null]}}),
        )
        .await;
    assert_status(&r, 200, "describe");
    assert_eq!(
        r.body,
        json!({"n_tags": 2, "first": "a", "meta": {"k": [1, null]}})
    );
    // An empty body is no arguments; so is {}.
    let r = app
        .post_raw("/api/v1/rpc/whoami", None, "application/json", "")
        .await;
    assert_status(&r, 200, "empty body");
    let r = app
        .request(Method::POST, "/api/v1/rpc/whoami", None, None, &[])
        .await;
    assert_status(&r, 200, "no body, no content type");
}

#[tokio::test]
async fn wrong_or_extra_arguments_are_400_and_named() {
    let app = start().await;
    let r = app.post("/api/v1/rpc/add_them", None, &json!({})).await;
    assert_eq!(assert_error(&r, 400, "missing a"), "MISSING_ARGUMENT");
    assert!(
        r.body["message"].as_str().unwrap().contains("\"a\""),
        "{}",
        r.text
    );
    let r = app
        .post(
            "/api/v1/rpc/add_them",
            None,
            &json!({"a": 1, "c": 2, "zz": 3}),
        )
        .await;
    assert_eq!(assert_error(&r, 400, "extra c"), "UNKNOWN_ARGUMENT");
    let message = r.body["message"].as_str().unwrap();
    assert!(
        message.contains("\"c\"") && message.contains("\"zz\""),
        "{message}"
    );
    let r = app.get("/api/v1/rpc/add_them?b=1", None).await;
    assert_eq!(assert_error(&r, 400, "GET missing a"), "MISSING_ARGUMENT");
    let r = app.get("/api/v1/rpc/add_them?a=1&a=2", None).await;
    assert_error(&r, 400, "GET a twice");
    for (body, content_type) in [
        ("[1, 2]", "application/json"),
        ("\"a\"", "application/json"),
        ("{\"a\": ", "application/json"),
        ("not json", "application/json"),
        ("{\"a\": 1}", "text/plain"),
    ] {
        let r = app
            .post_raw("/api/v1/rpc/add_them", None, content_type, body)
            .await;
        assert_error(&r, 400, body);
    }
    // A value of the wrong type: the database refuses it, and the answer says only what kind.
    let r = app
        .post("/api/v1/rpc/add_them", None, &json!({"a": "seven"}))
        .await;
    assert_eq!(assert_error(&r, 400, "a = seven"), "INVALID_VALUE");
    assert!(!r.text.contains("seven"), "{}", r.text);
    let r = app.get("/api/v1/rpc/add_them?a=1.5", None).await;
    assert_eq!(assert_error(&r, 400, "a = 1.5"), "INVALID_VALUE");
}

#[tokio::test]
async fn injection_in_names_and_values_stays_data() {
    let app = start().await;
    let (alice, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    app.post(
        "/api/v1/tables/notes",
        Some(&alice),
        &json!({"title": "keep me"}),
    )
    .await;
    for path in [
        "/api/v1/rpc/add_them;drop%20table%20notes",
        "/api/v1/rpc/add_them()",
        "/api/v1/rpc/add_them(1,2)",
        "/api/v1/rpc/%22add_them%22",
        "/api/v1/rpc/ADD_THEM",
        "/api/v1/rpc/add_them%22%3B%20drop%20table%20notes%3B--",
        "/api/v1/rpc/public.add_them",
        "/api/v1/rpc/pg_sleep",
        "/api/v1/rpc/public/pg_sleep",
        "/api/v1/rpc/%20add_them",
        "/api/v1/rpc/public/..%2Fauth%2Fsign_in",
        "/api/v1/rpc/public%22.%22add_them",
    ] {
        for token in [None, Some(alice.as_str())] {
            let r = app.post(path, token, &json!({"a": 1})).await;
            assert_eq!(assert_error(&r, 404, path), "FUNCTION_NOT_FOUND");
        }
    }
    // Argument names that try to be SQL are unknown names, and not echoed.
    for name in [
        "a\" => 1); DROP TABLE public.notes; --",
        "a => 1, b",
        "a::text",
        "\"a\"",
        "A",
        "",
    ] {
        let r = app
            .post("/api/v1/rpc/add_them", None, &json!({ name: 1, "a": 1 }))
            .await;
        assert_eq!(assert_error(&r, 400, name), "UNKNOWN_ARGUMENT");
        assert!(!r.text.contains("DROP"), "{}", r.text);
    }
    let r = app
        .get("/api/v1/rpc/add_them?a=1&b%22%3Bselect%201--=2", None)
        .await;
    assert_error(&r, 400, "GET injected name");
    // Values that look like SQL are values.
    for value in [
        "x'); DROP TABLE public.notes; --",
        "$1",
        "'; SELECT pg_sleep(10); --",
        "\\\"",
    ] {
        let r = app
            .post("/api/v1/rpc/echo_text", None, &json!({"t": value}))
            .await;
        assert_status(&r, 200, value);
        assert_eq!(r.body, json!(value));
        let r = app
            .post("/api/v1/rpc/add_them", None, &json!({"a": value}))
            .await;
        assert_error(&r, 400, value);
    }
    let r = app
        .get(
            "/api/v1/rpc/echo_text?t=x%27%29%3B%20DROP%20TABLE%20public.notes%3B%20--",
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!("x'); DROP TABLE public.notes; --"))
    );
    assert_eq!(app.scalar_i64("SELECT count(*) FROM public.notes").await, 1);
}

#[tokio::test]
async fn functions_outside_the_exposed_schemas_do_not_exist() {
    let app = start().await;
    let (alice, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    for path in [
        "/api/v1/rpc/authenticate",
        "/api/v1/rpc/sign_in",
        "/api/v1/rpc/uid",
        "/api/v1/rpc/auth/sign_in",
        "/api/v1/rpc/auth/authenticate",
        "/api/v1/rpc/auth/create_user",
        "/api/v1/rpc/AUTH/sign_in",
        "/api/v1/rpc/%22auth%22/sign_in",
        "/api/v1/rpc/auth.sign_in",
        "/api/v1/rpc/fluxbase/sign_token",
        "/api/v1/rpc/pg_catalog/pg_sleep",
        "/api/v1/rpc/pg_catalog/set_config",
        "/api/v1/rpc/information_schema/_pg_expandarray",
        "/api/v1/rpc/private/secret",
        "/api/v1/rpc/all_users",
        "/api/v1/rpc/secret",
        "/api/v1/rpc/nope",
    ] {
        for token in [None, Some(alice.as_str())] {
            let r = app
                .post(
                    path,
                    token,
                    &json!({"email": "alice@example.com", "password": "Alice-password-1"}),
                )
                .await;
            assert_eq!(assert_error(&r, 404, path), "FUNCTION_NOT_FOUND");
            assert!(r.body.get("access_token").is_none());
            let r = app.get(path, token).await;
            assert_eq!(assert_error(&r, 404, path), "FUNCTION_NOT_FOUND");
        }
    }
}

#[tokio::test]
async fn the_function_runs_as_the_verified_caller() {
    let app = start().await;
    let (alice, alice_id) = app.sign_up("alice@example.com", "Alice-password-1").await;
    let r = app
        .post("/api/v1/rpc/whoami", Some(&alice), &json!({}))
        .await;
    assert_status(&r, 200, "whoami");
    assert_eq!(
        r.body,
        json!({"uid": alice_id, "role": "authenticated", "db_role": "authenticated"})
    );
    let r = app.get("/api/v1/rpc/whoami", None).await;
    assert_eq!(
        r.body,
        json!({"uid": null, "role": "anon", "db_role": "anon"}),
        "{}",
        r.text
    );
    // A bad token is refused before the function runs.
    let r = app
        .post("/api/v1/rpc/touch", Some(&format!("{alice}x")), &json!({}))
        .await;
    assert_eq!(assert_error(&r, 401, "bad token"), "INVALID_TOKEN");
    let forged = fluxbase_tests::forge_with(
        "not-the-secret-not-the-secret-not-the-secret",
        jsonwebtoken::Algorithm::HS256,
        json!({"sub": alice_id}),
    );
    let r = app
        .post("/api/v1/rpc/whoami", Some(&forged), &json!({}))
        .await;
    assert_eq!(assert_error(&r, 401, "forged token"), "INVALID_TOKEN");
    assert_eq!(log_rows(&app).await, 0);
}

#[tokio::test]
async fn execute_privileges_decide_401_or_403() {
    let app = start().await;
    let (alice, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    let r = app.post("/api/v1/rpc/members_only", None, &json!({})).await;
    assert_eq!(assert_error(&r, 401, "anon members_only"), "UNAUTHORIZED");
    let r = app.get("/api/v1/rpc/members_only", None).await;
    assert_error(&r, 401, "anon GET members_only");
    let r = app
        .post("/api/v1/rpc/members_only", Some(&alice), &json!({}))
        .await;
    assert_eq!((r.status, r.body.clone()), (200, json!("welcome")));
    let r = app
        .post("/api/v1/rpc/service_only", Some(&alice), &json!({}))
        .await;
    assert_eq!(assert_error(&r, 403, "user service_only"), "FORBIDDEN");
    let r = app.post("/api/v1/rpc/service_only", None, &json!({})).await;
    assert_error(&r, 401, "anon service_only");
}

#[tokio::test]
async fn row_level_security_applies_inside_invoker_functions_not_definer_ones() {
    let app = start().await;
    let (alice, alice_id) = app.sign_up("alice@example.com", "Alice-password-1").await;
    let (bob, _) = app.sign_up("bob@example.com", "Bob-password-22").await;
    for (title, public) in [("alice private", false), ("alice public", true)] {
        let r = app
            .post(
                "/api/v1/tables/notes",
                Some(&alice),
                &json!({"title": title, "is_public": public}),
            )
            .await;
        assert_status(&r, 201, title);
    }
    app.post(
        "/api/v1/tables/notes",
        Some(&bob),
        &json!({"title": "bob private"}),
    )
    .await;
    let titles = |r: &Response| -> Vec<String> {
        r.body
            .as_array()
            .unwrap_or_else(|| panic!("an array: {}", r.text))
            .iter()
            .map(|n| n["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = app
        .post("/api/v1/rpc/visible_notes", Some(&alice), &json!({}))
        .await;
    assert_status(&r, 200, "alice visible_notes");
    assert_eq!(titles(&r), ["alice private", "alice public"]);
    assert!(r
        .body
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["user_id"] == alice_id));
    let r = app
        .post("/api/v1/rpc/visible_notes", Some(&bob), &json!({}))
        .await;
    assert_eq!(titles(&r), ["alice public", "bob private"]);
    let r = app.get("/api/v1/rpc/note_titles", None).await;
    assert_status(&r, 200, "anon note_titles");
    assert_eq!(titles(&r), ["alice public"]);
    // SECURITY DEFINER: runs as its owner, so it counts what the caller cannot see.
    let r = app
        .post("/api/v1/rpc/count_all_notes", Some(&bob), &json!({}))
        .await;
    assert_eq!((r.status, r.body.clone()), (200, json!(3)), "{}", r.text);
    let r = app
        .post("/api/v1/rpc/count_all_notes", None, &json!({}))
        .await;
    assert_error(&r, 401, "anon count_all_notes");
}

#[tokio::test]
async fn set_results_take_select_filters_order_limit_and_count() {
    let app = start().await;
    let (alice, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    for i in 1..=5 {
        app.post(
            "/api/v1/tables/notes",
            Some(&alice),
            &json!({"title": format!("note {i}"), "is_public": i % 2 == 0}),
        )
        .await;
    }
    let r = app
        .get(
            "/api/v1/rpc/note_titles?select=title&is_public=eq.false&order=id.desc&limit=2",
            Some(&alice),
        )
        .await;
    assert_status(&r, 200, "shaped GET");
    assert_eq!(r.body, json!([{"title": "note 5"}, {"title": "note 3"}]));
    assert_eq!(
        r.headers.get("content-range").and_then(|v| v.to_str().ok()),
        Some("0-1/*")
    );
    let r = app
        .request(
            Method::POST,
            "/api/v1/rpc/visible_notes?select=name:title&title=like.note*&offset=1&limit=2&order=id",
            Some(&alice),
            Some(&json!({"min_id": 2})),
            &[("Prefer", "count=exact")],
        )
        .await;
    // 206: the count shows a row past this page (as for tables).
    assert_status(&r, 206, "shaped POST");
    assert_eq!(r.body, json!([{"name": "note 3"}, {"name": "note 4"}]));
    assert_eq!(
        r.headers.get("content-range").and_then(|v| v.to_str().ok()),
        Some("1-2/4")
    );
    let r = app
        .get(
            "/api/v1/rpc/note_titles?title=in.(note%201,%22note%204%22)&select=title",
            Some(&alice),
        )
        .await;
    assert_eq!(
        r.body,
        json!([{"title": "note 1"}, {"title": "note 4"}]),
        "{}",
        r.text
    );
    // Sets of scalars: an array of values; limit applies, columns do not exist.
    let r = app.get("/api/v1/rpc/count_up?upto=4&limit=3", None).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!([1, 2, 3])),
        "{}",
        r.text
    );
    let r = app.get("/api/v1/rpc/count_up?upto=0", None).await;
    assert_eq!((r.status, r.body.clone()), (200, json!([])));
    let r = app.get("/api/v1/rpc/count_up?upto=3&select=x", None).await;
    assert_error(&r, 400, "select on a scalar set");
    for path in [
        "/api/v1/rpc/note_titles?nope=eq.1",
        "/api/v1/rpc/note_titles?select=title,nope",
        "/api/v1/rpc/note_titles?order=nope",
        "/api/v1/rpc/note_titles?id=eq.not-a-number",
        "/api/v1/rpc/note_titles?id=regex.x",
        "/api/v1/rpc/note_titles?select=title%22%3Bdrop%20table%20notes--",
        "/api/v1/rpc/add_them?a=1&limit=1",
    ] {
        let r = app.get(path, Some(&alice)).await;
        assert_error(&r, 400, path);
    }
    assert_eq!(app.scalar_i64("SELECT count(*) FROM public.notes").await, 5);
}

#[tokio::test]
async fn single_objects_and_composites() {
    let app = start().await;
    let (alice, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    let r = app
        .request(
            Method::POST,
            "/api/v1/tables/notes",
            Some(&alice),
            Some(&json!({"title": "only one"})),
            &[("Prefer", "return=representation")],
        )
        .await;
    let id = r.body[0]["id"].as_i64().expect("id");
    let single = [("Accept", "application/vnd.pgrst.object+json")];
    let r = app
        .request(
            Method::POST,
            "/api/v1/rpc/note_titles?select=title",
            Some(&alice),
            Some(&json!({})),
            &single,
        )
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({"title": "only one"})),
        "{}",
        r.text
    );
    let r = app
        .request(
            Method::POST,
            "/api/v1/rpc/note_titles",
            None,
            Some(&json!({})),
            &single,
        )
        .await;
    assert_eq!(assert_error(&r, 406, "no rows"), "NOT_SINGLE_OBJECT");
    assert_eq!(r.body["details"], json!("The result contains 0 rows"));
    let r = app
        .request(
            Method::GET,
            "/api/v1/rpc/count_up?upto=2",
            None,
            None,
            &single,
        )
        .await;
    assert_error(&r, 406, "two rows");
    // A single-object request that fails rolls back what the function did.
    let r = app
        .request(
            Method::POST,
            "/api/v1/rpc/log_many",
            None,
            Some(&json!({"n": 2})),
            &single,
        )
        .await;
    assert_error(&r, 406, "two rows written");
    assert_eq!(log_rows(&app).await, 0, "rolled back");
    let r = app
        .request(
            Method::POST,
            "/api/v1/rpc/log_many",
            None,
            Some(&json!({"n": 1})),
            &single,
        )
        .await;
    assert_status(&r, 200, "one row written");
    assert!(r.body.is_i64(), "{}", r.text);
    assert_eq!(log_rows(&app).await, 1);
    // A composite return is one object.
    let r = app
        .post(
            "/api/v1/rpc/one_note",
            Some(&alice),
            &json!({"note_id": id}),
        )
        .await;
    assert_status(&r, 200, "one_note");
    assert_eq!(r.body["title"], "only one");
    assert!(r.body.is_object());
    let r = app
        .get(
            &format!("/api/v1/rpc/one_note?note_id={id}&select=title"),
            Some(&alice),
        )
        .await;
    assert_eq!(r.body, json!({"title": "only one"}), "{}", r.text);
}

#[tokio::test]
async fn volatile_functions_need_post_and_void_is_204() {
    let app = start().await;
    let r = app
        .post("/api/v1/rpc/touch", None, &json!({"what": "hello"}))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    assert_eq!(log_rows(&app).await, 1);
    for path in ["/api/v1/rpc/touch", "/api/v1/rpc/log_and_count?what=x"] {
        let r = app.get(path, None).await;
        assert_eq!(assert_error(&r, 405, path), "METHOD_NOT_ALLOWED");
    }
    let r = app
        .post("/api/v1/rpc/log_and_count", None, &json!({"what": "again"}))
        .await;
    assert_eq!((r.status, r.body.clone()), (200, json!(2)), "{}", r.text);
    assert_eq!(log_rows(&app).await, 2);
    // STABLE runs READ ONLY, by GET and by POST: a write hidden behind it is refused.
    let r = app.get("/api/v1/rpc/sneaky_write", None).await;
    assert_error(&r, 405, "GET sneaky_write");
    let r = app.post("/api/v1/rpc/sneaky_write", None, &json!({})).await;
    assert_error(&r, 405, "POST sneaky_write");
    assert_eq!(log_rows(&app).await, 2);
}

#[tokio::test]
async fn raised_errors_keep_their_message_and_roll_back() {
    let app = start().await;
    let r = app
        .post(
            "/api/v1/rpc/fail_loudly",
            None,
            &json!({"reason": "no such luck"}),
        )
        .await;
    assert_eq!(assert_error(&r, 400, "fail_loudly"), "RAISED");
    assert_eq!(r.body["message"], "no such luck");
    let r = app
        .post("/api/v1/rpc/write_then_fail", None, &json!({}))
        .await;
    assert_eq!(assert_error(&r, 400, "write_then_fail"), "RAISED");
    assert_eq!(log_rows(&app).await, 0, "nothing half-written");
}

#[tokio::test]
async fn ddl_a_function_gets_wrong_is_a_client_error_not_a_500() {
    let app = start().await;
    let (alice, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    for (twice, status, code) in [
        (false, 400, "INVALID_DEFINITION"),
        (true, 409, "ALREADY_EXISTS"),
    ] {
        for token in [None, Some(alice.as_str())] {
            let r = app
                .post("/api/v1/rpc/scratch_table", token, &json!({"twice": twice}))
                .await;
            assert_eq!(assert_error(&r, status, "scratch_table"), code);
            let text = r.body.to_string();
            assert!(
                !text.contains("rpc_scratch") && !text.contains("PRIMARY"),
                "{text}"
            );
        }
    }
    // Nothing was left behind: the next call fails the same way, not on a leftover table.
    let r = app
        .post("/api/v1/rpc/scratch_table", None, &json!({"twice": true}))
        .await;
    assert_eq!(assert_error(&r, 409, "again"), "ALREADY_EXISTS");
}

#[tokio::test]
async fn accept_is_negotiated_and_nothing_runs_for_a_format_not_produced() {
    let app = start().await;
    for accept in ["text/csv", "text/html", "application/xml, image/png"] {
        let r = app
            .request(
                Method::POST,
                "/api/v1/rpc/log_many",
                None,
                Some(&json!({"n": 3})),
                &[("Accept", accept)],
            )
            .await;
        assert_eq!(assert_error(&r, 406, accept), "NOT_ACCEPTABLE");
        let r = app
            .request(
                Method::GET,
                "/api/v1/rpc/count_up?upto=3",
                None,
                None,
                &[("Accept", accept)],
            )
            .await;
        assert_eq!(assert_error(&r, 406, accept), "NOT_ACCEPTABLE");
    }
    // q is read case-insensitively: `Q=0` refuses JSON too.
    let r = app
        .request(
            Method::POST,
            "/api/v1/rpc/log_many",
            None,
            Some(&json!({"n": 3})),
            &[("Accept", "application/json;Q=0")],
        )
        .await;
    assert_eq!(assert_error(&r, 406, "Q=0"), "NOT_ACCEPTABLE");
    assert!(
        !r.text.contains("text/csv"),
        "406 names only what a function gives: {}",
        r.text
    );
    assert_eq!(log_rows(&app).await, 0, "the function never ran");
    // What postgrest-js sends still works, JSON is preferred by q, and a format a function
    // cannot produce falls through to the client's next choice.
    for accept in [
        "application/json",
        "*/*",
        "text/csv;q=0.5, application/json",
        "text/csv, application/json;q=0.5",
        "application/json;q=0.5, text/csv;q=0.9",
        "text/*, */*;q=0.1",
    ] {
        let r = app
            .request(
                Method::GET,
                "/api/v1/rpc/count_up?upto=2",
                None,
                None,
                &[("Accept", accept)],
            )
            .await;
        assert_eq!((r.status, r.body.clone()), (200, json!([1, 2])), "{accept}");
    }
}

#[tokio::test]
async fn a_range_header_pages_a_set_result_like_a_table() {
    let app = start().await;
    let get = |range: &'static str, count: bool| {
        let app = &app;
        async move {
            let mut headers = vec![("Range", range)];
            if count {
                headers.push(("Prefer", "count=exact"));
            }
            app.request(
                Method::GET,
                "/api/v1/rpc/count_up?upto=10",
                None,
                None,
                &headers,
            )
            .await
        }
    };
    for (range, count, status, body, content_range) in [
        ("2-4", false, 200, json!([3, 4, 5]), "2-4/*"),
        ("items=8-", true, 200, json!([9, 10]), "8-9/10"),
        // More rows past the page: partial content.
        ("0-1", true, 206, json!([1, 2]), "0-1/10"),
    ] {
        let r = get(range, count).await;
        assert_eq!(
            (r.status, r.body.clone()),
            (status, body),
            "{range}: {}",
            r.text
        );
        assert_eq!(r.headers["content-range"], content_range, "{range}");
    }
    // Intersected with limit/offset, as for tables.
    let r = app
        .request(
            Method::GET,
            "/api/v1/rpc/count_up?upto=10&offset=1&limit=5",
            None,
            None,
            &[("Range", "3-")],
        )
        .await;
    assert_eq!(r.body, json!([4, 5, 6]), "{}", r.text);
    // Past the end with a count: 416 in the error shape; a malformed range: 416 too.
    let r = get("20-30", true).await;
    assert_error(&r, 416, "past the end");
    let r = get("5-2", false).await;
    assert_error(&r, 416, "backwards");
    let r = get("abc", false).await;
    assert!(r.status >= 400 && r.status < 500, "{}", r.text);
    assert_error_shape(&r);
    // A function without rows ignores it, well-formed or not.
    for range in ["0-0", "garbage", "5-2"] {
        let r = app
            .request(
                Method::GET,
                "/api/v1/rpc/add_them?a=1&b=2",
                None,
                None,
                &[("Range", range)],
            )
            .await;
        assert_eq!(
            (r.status, r.body.clone()),
            (200, json!(3)),
            "{range}: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn overloads_whole_body_and_variadic() {
    let app = start().await;
    let call = |body: Value| {
        let app = &app;
        async move { app.post("/api/v1/rpc/pick", None, &body).await }
    };
    assert_eq!(call(json!({"a": 1})).await.body, json!("one int"));
    assert_eq!(call(json!({"a": 1, "b": 2})).await.body, json!("two ints"));
    assert_eq!(call(json!({"s": "x"})).await.body, json!("text"));
    assert_eq!(
        app.get("/api/v1/rpc/pick?s=x", None).await.body,
        json!("text")
    );
    let r = call(json!({"a": 1, "s": "x"})).await;
    assert_eq!(assert_error(&r, 400, "a and s"), "INVALID_ARGUMENTS");
    let r = app.post("/api/v1/rpc/amb", None, &json!({"a": 1})).await;
    assert_eq!(assert_error(&r, 300, "ambiguous"), "AMBIGUOUS_FUNCTION");
    let r = app
        .post("/api/v1/rpc/amb", None, &json!({"a": 1, "b": 2}))
        .await;
    assert_eq!(r.body, json!("two"));
    // A single unnamed jsonb argument takes the whole body, whatever its shape.
    for body in [
        json!({"x": [1, {"y": 2}]}),
        json!([1, "two"]),
        json!("text"),
        json!({}),
    ] {
        let r = app.post("/api/v1/rpc/echo_json", None, &body).await;
        assert_eq!(
            (r.status, r.body.clone()),
            (200, body.clone()),
            "{}",
            r.text
        );
    }
    let r = app.get("/api/v1/rpc/echo_json", None).await;
    assert_error(&r, 405, "GET of a whole-body function");
    // VARIADIC takes an array, by POST as JSON and by GET as a PostgreSQL array literal.
    let r = app
        .post("/api/v1/rpc/var_sum", None, &json!({"xs": [1, 2, 3]}))
        .await;
    assert_eq!((r.status, r.body.clone()), (200, json!(6)), "{}", r.text);
    let r = app.get("/api/v1/rpc/var_sum?xs=%7B4,5%7D", None).await;
    assert_eq!((r.status, r.body.clone()), (200, json!(9)), "{}", r.text);
}

#[tokio::test]
async fn functions_created_after_start_are_found() {
    let app = start().await;
    let r = app.post("/api/v1/rpc/late_comer", None, &json!({})).await;
    assert_error(&r, 404, "before");
    app.admin
        .batch_execute(
            "CREATE FUNCTION public.late_comer() RETURNS text LANGUAGE sql AS $$ SELECT 'here' $$",
        )
        .await
        .unwrap();
    // The extension's DDL event trigger notifies the server, whose listener reloads the
    // function cache (requests themselves never query the catalog).
    let mut r = app.post("/api/v1/rpc/late_comer", None, &json!({})).await;
    for _ in 0..50 {
        if r.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        r = app.post("/api/v1/rpc/late_comer", None, &json!({})).await;
    }
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!("here")),
        "{}",
        r.text
    );
    assert_no_leak(&r.text);
}
