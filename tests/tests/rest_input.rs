//! Security properties 4 and 10 for the first REST slice: bad input of any kind gets a clear
//! 4xx in the error shape, never SQL text, and changes nothing; `auth` is unreachable.
use fluxbase_tests::*;
use reqwest::Method;
use serde_json::json;

async fn note_count(app: &TestApp) -> i64 {
    app.admin
        .query_one("SELECT count(*) FROM public.notes", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn unknown_columns_in_select_or_filters_are_400() {
    let app = TestApp::start().await;
    let (alice, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    for path in [
        "/api/v1/tables/notes?select=nope",
        "/api/v1/tables/notes?select=title,nope",
        "/api/v1/tables/notes?nope=eq.1",
        "/api/v1/tables/notes?select=title%22%3Bdrop%20table%20notes%3B--",
        "/api/v1/tables/notes?select=title;drop table notes",
        "/api/v1/tables/notes?title%22=eq.x",
        "/api/v1/tables/notes?select=encrypted_password",
        "/api/v1/tables/notes?select=(select%201)",
    ] {
        let r = app.get(path, Some(&alice)).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert_error_shape(&r);
    }
    // The table is still there.
    assert_eq!(
        app.get("/api/v1/tables/notes", Some(&alice)).await.status,
        200
    );
}

#[tokio::test]
async fn filter_values_are_data_not_sql() {
    let app = TestApp::start().await;
    let (alice, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    app.post(
        "/api/v1/tables/notes",
        Some(&alice),
        &json!({"title": "x' OR '1'='1"}),
    )
    .await;
    app.post(
        "/api/v1/tables/notes",
        Some(&alice),
        &json!({"title": "other"}),
    )
    .await;
    let r = app
        .get(
            "/api/v1/tables/notes?select=title&title=eq.x'%20OR%20'1'='1",
            Some(&alice),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!([{"title": "x' OR '1'='1"}]));
    let r = app
        .get(
            "/api/v1/tables/notes?title=eq.nothing'%3B%20DELETE%20FROM%20notes%3B--",
            Some(&alice),
        )
        .await;
    assert_eq!((r.status, r.body.clone()), (200, json!([])));
    assert_eq!(note_count(&app).await, 2);
}

#[tokio::test]
async fn values_of_the_wrong_type_are_400() {
    let app = TestApp::start().await;
    let (alice, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    for path in [
        "/api/v1/tables/notes?id=eq.not-a-number",
        "/api/v1/tables/notes?user_id=eq.not-a-uuid",
    ] {
        let r = app.get(path, Some(&alice)).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert_error_shape(&r);
    }
    let r = app
        .post(
            "/api/v1/tables/notes",
            Some(&alice),
            &json!({"title": "t", "is_public": "maybe"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_error_shape(&r);
    assert_eq!(note_count(&app).await, 0);
}

#[tokio::test]
async fn unknown_tables_and_hidden_schemas_are_404() {
    let app = TestApp::start().await;
    let (alice, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    for path in [
        "/api/v1/tables/nope",
        "/api/v1/tables/users",
        "/api/v1/tables/auth/users",
        "/api/v1/tables/auth/settings",
        "/api/v1/tables/fluxbase/anything",
        "/api/v1/tables/pg_catalog/pg_authid",
        "/api/v1/tables/information_schema/tables",
        "/api/v1/tables/notes%22%3B--",
        "/api/v1/tables/AUTH/users",
        "/api/v1/tables/Auth/users",
        "/api/v1/tables/%22auth%22/users",
        "/api/v1/tables/auth.users",
        "/api/v1/tables/%20auth/users",
        "/api/v1/tables/public/..%2Fauth%2Fusers",
    ] {
        for token in [None, Some(alice.as_str())] {
            let r = app.get(path, token).await;
            assert_eq!(r.status, 404, "{path}: {}", r.text);
            assert_error_shape(&r);
        }
    }
    let r = app
        .post(
            "/api/v1/tables/auth/users",
            Some(&alice),
            &json!({"email": "x@example.com"}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
}

#[tokio::test]
async fn malformed_bodies_are_400_and_write_nothing() {
    let app = TestApp::start().await;
    let (alice, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    let url = app.url("/api/v1/tables/notes");
    for (body, content_type) in [
        ("{\"title\": ", "application/json"),
        ("not json at all", "application/json"),
        ("[{\"title\": \"a\"}, 5]", "application/json"),
        ("\"just a string\"", "application/json"),
        ("{\"title\": \"a\"}", "text/plain"),
    ] {
        let resp = app
            .http
            .post(&url)
            .bearer_auth(&alice)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let r = into_response(resp).await;
        assert!(
            r.status == 400 || r.status == 415,
            "{body:?} as {content_type}: {} {}",
            r.status,
            r.text
        );
        assert_error_shape(&r);
    }
    let r = app
        .post(
            "/api/v1/tables/notes",
            Some(&alice),
            &json!({"title": "a", "no_such_column": 1}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_error_shape(&r);
    // A bulk insert with one bad row writes none of them.
    let r = app
        .post(
            "/api/v1/tables/notes",
            Some(&alice),
            &json!([{"title": "fine"}, {"title": ""}]),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_error_shape(&r);
    assert_eq!(note_count(&app).await, 0);
}

#[tokio::test]
async fn update_and_delete_without_a_filter_are_refused() {
    let app = TestApp::start().await;
    let (alice, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    app.post(
        "/api/v1/tables/notes",
        Some(&alice),
        &json!({"title": "keep me"}),
    )
    .await;
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/tables/notes",
            Some(&alice),
            Some(&json!({"title": "all"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_error_shape(&r);
    let r = app
        .request(
            Method::DELETE,
            "/api/v1/tables/notes",
            Some(&alice),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_error_shape(&r);
    assert_eq!(note_count(&app).await, 1);
}

#[tokio::test]
async fn unknown_routes_answer_in_the_error_shape() {
    let app = TestApp::start().await;
    let r = app.get("/api/v1/nope", None).await;
    assert_eq!(r.status, 404);
    assert_error_shape(&r);
}

#[tokio::test]
async fn sign_up_input_is_validated() {
    let app = TestApp::start().await;
    for body in [
        json!({"email": "not-an-email", "password": "Valid-password-1"}),
        json!({"email": "", "password": "Valid-password-1"}),
        json!({"email": "a@example.com", "password": ""}),
        json!({"email": "a@example.com", "password": "x".repeat(2000)}),
        json!({"email": "a@example.com", "password": "Valid-password-1", "user_metadata": [1, 2]}),
        json!({"email": "a@example.com", "password": "Valid-password-1", "role": "service_role"}),
        json!({"email": 5, "password": "Valid-password-1"}),
    ] {
        let r = app.post("/api/v1/auth/signup", None, &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_error_shape(&r);
    }
    let count: i64 = app
        .admin
        .query_one("SELECT count(*) FROM auth.users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
}
