//! The README walkthrough, end to end over HTTP: two users, private and public notes, RLS.
use fluxbase_tests::*;
use reqwest::Method;
use serde_json::json;

const REPR: (&str, &str) = ("Prefer", "return=representation");

#[tokio::test]
async fn readme_walkthrough_isolates_notes_by_row_level_security() {
    let app = TestApp::start().await;
    let (alice, alice_id) = app.sign_up("alice@example.com", "Alice-password-1").await;
    let (bob, _bob_id) = app.sign_up("bob@example.com", "Bob-password-22").await;

    // Alice writes a private and a public note; user_id comes from her verified token.
    let r = app
        .request(
            Method::POST,
            "/api/v1/tables/notes",
            Some(&alice),
            Some(&json!({"title": "private plans"})),
            &[REPR],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body[0]["user_id"], alice_id.as_str());
    assert_eq!(r.body[0]["is_public"], false);
    let private_id = r.body[0]["id"].as_i64().expect("id");
    let r = app
        .request(
            Method::POST,
            "/api/v1/tables/notes",
            Some(&alice),
            Some(&json!({"title": "hello world", "is_public": true})),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    // Bob sees only the public note.
    let r = app
        .get("/api/v1/tables/notes?select=title,is_public", Some(&bob))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!([{"title": "hello world", "is_public": true}]));

    // Alice sees both.
    let r = app
        .get("/api/v1/tables/notes?select=title", Some(&alice))
        .await;
    let mut titles: Vec<String> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap().into())
        .collect();
    titles.sort();
    assert_eq!(titles, ["hello world", "private plans"]);

    // Anonymous visitors see only public notes.
    let r = app.get("/api/v1/tables/notes?select=title", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!([{"title": "hello world"}]));

    // Even asking for Alice's private note by id gives Bob nothing.
    let r = app
        .get(
            &format!("/api/v1/tables/notes?id=eq.{private_id}"),
            Some(&bob),
        )
        .await;
    assert_eq!(r.body, json!([]));

    // Bob cannot change or delete it: RLS hides the row from his UPDATE and DELETE.
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/tables/notes?id=eq.{private_id}"),
            Some(&bob),
            Some(&json!({"title": "owned"})),
            &[REPR],
        )
        .await;
    assert_eq!((r.status, &r.body), (200, &json!([])), "{}", r.text);
    let r = app
        .request(
            Method::DELETE,
            &format!("/api/v1/tables/notes?id=eq.{private_id}"),
            Some(&bob),
            None,
            &[],
        )
        .await;
    assert!(r.status == 204 || r.status == 200, "{}", r.text);
    let still = app
        .admin
        .query_one(
            "SELECT title FROM public.notes WHERE id = $1",
            &[&private_id],
        )
        .await
        .expect("the note survives");
    assert_eq!(still.get::<_, String>(0), "private plans");

    // Bob cannot write a note in Alice's name: the insert policy refuses it.
    let r = app
        .post(
            "/api/v1/tables/notes",
            Some(&bob),
            &json!({"title": "forged", "user_id": alice_id}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(assert_error_shape(&r), "FORBIDDEN");

    // Alice can update her own note.
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/tables/notes?id=eq.{private_id}"),
            Some(&alice),
            Some(&json!({"body": "details"})),
            &[REPR],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body[0]["body"], "details");

    // The signed-in user's profile, with no hash or counters.
    let r = app.get("/api/v1/auth/user", Some(&alice)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["email"], "alice@example.com");
    assert_eq!(r.body["id"], alice_id.as_str());
    assert!(r.body.get("encrypted_password").is_none());

    // A tampered token is refused.
    let r = app
        .get("/api/v1/auth/user", Some(&format!("{alice}x")))
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(assert_error_shape(&r), "INVALID_TOKEN");
}

#[tokio::test]
async fn sign_in_and_login_alias_return_the_token_response() {
    let app = TestApp::start().await;
    app.sign_up("carol@example.com", "Carol-password-3").await;
    for path in ["/api/v1/auth/signin", "/api/v1/auth/login"] {
        let r = app
            .post(
                path,
                None,
                &json!({"email": "  CAROL@example.com", "password": "Carol-password-3"}),
            )
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        for key in [
            "user",
            "access_token",
            "refresh_token",
            "token_type",
            "expires_in",
            "expires_at",
        ] {
            assert!(r.body.get(key).is_some(), "{path} lacks {key}: {}", r.text);
        }
        assert_eq!(r.body["token_type"], "bearer");
        assert_eq!(r.body["user"]["email"], "carol@example.com");
        let user = r.body["user"].as_object().unwrap();
        let mut keys: Vec<&str> = user.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "app_metadata",
                "created_at",
                "email",
                "email_verified",
                "id",
                "role",
                "updated_at",
                "user_metadata"
            ]
        );
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = TestApp::start().await;
    app.sign_up("dave@example.com", "Dave-password-44").await;
    let wrong = app
        .post(
            "/api/v1/auth/signin",
            None,
            &json!({"email": "dave@example.com", "password": "nope-nope-nope"}),
        )
        .await;
    let unknown = app
        .post(
            "/api/v1/auth/signin",
            None,
            &json!({"email": "nobody@example.com", "password": "nope-nope-nope"}),
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert_eq!(assert_error_shape(&wrong), "INVALID_CREDENTIALS");
    let strip = |mut v: serde_json::Value| {
        v.as_object_mut().unwrap().remove("request_id");
        v
    };
    assert_eq!(strip(wrong.body.clone()), strip(unknown.body.clone()));
}

#[tokio::test]
async fn duplicate_sign_up_is_refused_without_an_error_leak() {
    let app = TestApp::start().await;
    app.sign_up("erin@example.com", "Erin-password-55").await;
    let r = app
        .post(
            "/api/v1/auth/signup",
            None,
            &json!({"email": "ERIN@example.com", "password": "Other-password-66"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_error_shape(&r);
    assert!(!r.text.contains("users_email_key"), "{}", r.text);
    let count: i64 = app
        .admin
        .query_one("SELECT count(*) FROM auth.users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
}
