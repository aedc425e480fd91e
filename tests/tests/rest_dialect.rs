//! The PostgREST dialect of `/api/v1/tables` against a real cluster and server: embedding
//! (both directions, nested, many-to-many, `!inner`, hints) under RLS, every filter
//! operator, logic trees, ordering and paging (`Range`, `Content-Range`, 206, 416), counts,
//! `Prefer` (return, resolution, missing, tx, handling), bulk inserts, single objects and
//! 406, CSV, HEAD, read-only GETs, and injection attempts through every parameter and
//! header. The fixture is `tests/sql/rest_dialect_fixture.sql`.
use fluxbase_tests::*;
use reqwest::Method;
use serde_json::{json, Value};

const FIXTURE: &str = include_str!("../sql/rest_dialect_fixture.sql");

/// Loads the fixture after the server started, tells the server (as the DDL trigger will)
/// and waits until the schema cache shows it.
async fn load_fixture(app: &TestApp) {
    app.admin
        .batch_execute(FIXTURE)
        .await
        .expect("load fixture");
    notify_and_wait(app, "/api/v1/tables/books").await;
}

async fn notify_and_wait(app: &TestApp, path: &str) {
    app.admin
        .batch_execute("NOTIFY fluxbase_schema, 'CREATE TABLE'")
        .await
        .expect("notify");
    for _ in 0..100 {
        if app.get(path, None).await.status != 404 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{path} never appeared in the schema cache");
}

async fn app() -> TestApp {
    let app = TestApp::start().await;
    load_fixture(&app).await;
    app
}

async fn get_h(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Response {
    app.request(Method::GET, path, None, None, headers).await
}

/// The `id`s a filter on books returns to anon, in id order.
async fn ids(app: &TestApp, filter: &str) -> Vec<i64> {
    let r = app
        .get(
            &format!("/api/v1/tables/books?select=id&order=id&{filter}"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{filter}: {}", r.text);
    r.body
        .as_array()
        .unwrap_or_else(|| panic!("{filter}: {}", r.text))
        .iter()
        .map(|row| row["id"].as_i64().unwrap())
        .collect()
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn embedding_both_directions_nested_and_under_rls() {
    let app = app().await;
    let r = app
        .get(
            "/api/v1/tables/books?select=id,title,author:authors(name),comments(body)&order=id&comments.order=id",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!([
            {"id": 1, "title": "Alpha", "author": {"name": "Ann"}, "comments": [{"body": "c1"}, {"body": "c2"}]},
            {"id": 2, "title": "Beta", "author": {"name": "Ann"}, "comments": [{"body": "d1"}]},
            {"id": 3, "title": "Gamma", "author": {"name": "Bob"}, "comments": []},
            // The author is hidden by RLS: the to-one embed is null, not the row.
            {"id": 4, "title": "Delta", "author": null, "comments": []}
        ])
    );
    // A row hidden by RLS is never nested: the secret book's comment has no book.
    let r = app
        .get(
            "/api/v1/tables/comments?select=body,books(title)&order=id",
            None,
        )
        .await;
    assert_eq!(
        r.body,
        json!([
            {"body": "c1", "books": {"title": "Alpha"}},
            {"body": "c2", "books": {"title": "Alpha"}},
            {"body": "d1", "books": {"title": "Beta"}},
            {"body": "s1", "books": null}
        ]),
        "{}",
        r.text
    );
    // Nested three deep, with ordering at each level; Bob's secret book is not there.
    let r = app
        .get(
            "/api/v1/tables/authors?select=name,books(title,comments(body))&order=id&books.order=id&books.comments.order=id",
            None,
        )
        .await;
    assert_eq!(
        r.body,
        json!([
            {"name": "Ann", "books": [
                {"title": "Alpha", "comments": [{"body": "c1"}, {"body": "c2"}]},
                {"title": "Beta", "comments": [{"body": "d1"}]}
            ]},
            {"name": "Bob", "books": [{"title": "Gamma", "comments": []}]}
        ]),
        "{}",
        r.text
    );
    // !inner keeps only parents whose embed has rows; embedded filters filter the embed.
    let r = app
        .get(
            "/api/v1/tables/books?select=title,comments!inner(body)&comments.body=eq.d1",
            None,
        )
        .await;
    assert_eq!(
        r.body,
        json!([{"title": "Beta", "comments": [{"body": "d1"}]}])
    );
    let r = app
        .get(
            "/api/v1/tables/books?select=title,comments()&comments.body=eq.d1",
            None,
        )
        .await;
    assert_eq!(
        r.body.as_array().map(Vec::len),
        Some(4),
        "no !inner: no filtering"
    );
    let r = app
        .get(
            "/api/v1/tables/books?select=title,comments!inner()&comments.body=in.(c1,d1)&order=id",
            None,
        )
        .await;
    assert_eq!(r.body, json!([{"title": "Alpha"}, {"title": "Beta"}]));
    // Many-to-many through the junction.
    let r = app
        .get(
            "/api/v1/tables/books?select=title,genres(label)&id=eq.1&genres.order=id",
            None,
        )
        .await;
    assert_eq!(
        r.body,
        json!([{"title": "Alpha", "genres": [{"label": "fiction"}, {"label": "science"}]}])
    );
    // Hints: constraint name and column name.
    for hint in ["books_author_id_fkey", "author_id"] {
        let r = app
            .get(
                &format!("/api/v1/tables/books?select=title,writer:authors!{hint}(name)&id=eq.1"),
                None,
            )
            .await;
        assert_eq!(
            r.body,
            json!([{"title": "Alpha", "writer": {"name": "Ann"}}]),
            "{hint}"
        );
    }
    // Embedded limit / offset / or.
    let r = app
        .get(
            "/api/v1/tables/authors?select=name,books(title)&id=eq.1&books.order=id.desc&books.limit=1",
            None,
        )
        .await;
    assert_eq!(
        r.body,
        json!([{"name": "Ann", "books": [{"title": "Beta"}]}])
    );
    let r = app
        .get(
            "/api/v1/tables/authors?select=name,books(title)&id=eq.1&books.order=id&books.offset=1",
            None,
        )
        .await;
    assert_eq!(
        r.body,
        json!([{"name": "Ann", "books": [{"title": "Beta"}]}])
    );
    let r = app
        .get(
            "/api/v1/tables/books?select=id,comments(body)&id=eq.1&comments.or=(body.eq.c1,body.eq.c3)",
            None,
        )
        .await;
    assert_eq!(
        r.body,
        json!([{"id": 1, "comments": [{"body": "c1"}]}]),
        "c3 is invisible"
    );
    // Ambiguous and unknown embeds.
    let r = app
        .get("/api/v1/tables/reviews?select=id,authors(name)", None)
        .await;
    assert_eq!(r.status, 300, "{}", r.text);
    assert_eq!(assert_error_shape(&r), "AMBIGUOUS_EMBED");
    assert_eq!(
        r.body["details"]["candidates"].as_array().map(Vec::len),
        Some(2)
    );
    let r = app
        .get(
            "/api/v1/tables/reviews?select=id,reviewer:authors!reviewer_id(name),subject:authors!subject_id(name)",
            None,
        )
        .await;
    assert_eq!(
        r.body,
        json!([{"id": 1, "reviewer": {"name": "Ann"}, "subject": {"name": "Bob"}}])
    );
    for path in [
        "/api/v1/tables/books?select=id,nope(*)",
        "/api/v1/tables/books?select=id,authors!nope(*)",
        "/api/v1/tables/books?select=id&nope.id=eq.1",
        // auth.users is referenced by no exposed table, and never embeddable.
        "/api/v1/tables/books?select=id,users(*)",
    ] {
        let r = app.get(path, None).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert_eq!(assert_error_shape(&r), "UNKNOWN_RELATIONSHIP", "{path}");
    }
}

#[tokio::test]
async fn columns_aliases_casts_and_json_paths() {
    let app = app().await;
    let r = app
        .get(
            "/api/v1/tables/books?select=id,name:title,pages::text,n:data->k->>n,k:data->k&id=eq.1",
            None,
        )
        .await;
    assert_eq!(
        r.body,
        json!([{"id": 1, "name": "Alpha", "pages": "100", "n": "1", "k": {"n": 1}}]),
        "{}",
        r.text
    );
    for bad in [
        "select=id::regclass",
        "select=id::text;drop",
        "select=x%20y:id",
        "select=data->",
    ] {
        let r = app.get(&format!("/api/v1/tables/books?{bad}"), None).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert_error_shape(&r);
    }
}

#[tokio::test]
async fn every_filter_operator() {
    let app = app().await;
    for (filter, expected) in [
        ("pages=eq.100", vec![1]),
        ("pages=neq.100", vec![2, 4]),
        ("pages=gt.60", vec![1, 2]),
        ("pages=gte.100", vec![1, 2]),
        ("pages=lt.100", vec![4]),
        ("pages=lte.100", vec![1, 4]),
        ("title=like.*eta", vec![2]),
        ("title=ilike.*ALPHA*", vec![1]),
        ("title=match.^[AB]", vec![1, 2]),
        ("title=imatch.^g", vec![3]),
        ("pages=in.(50,200)", vec![2, 4]),
        ("title=in.(%22Alpha%22,Gamma)", vec![1, 3]),
        ("pages=in.()", vec![]),
        ("pages=is.null", vec![3]),
        ("pages=not.is.null", vec![1, 2, 4]),
        ("pages=is.not_null", vec![1, 2, 4]),
        ("pages=isdistinct.100", vec![2, 3, 4]),
        ("summary=fts(english).dog", vec![2, 3]),
        ("summary=plfts.quick%20brown", vec![1]),
        ("summary=phfts(english).brown%20fox", vec![1]),
        ("summary=wfts(english).%22lazy%20dog%22%20-cats", vec![2]),
        ("tags=cs.{a}", vec![1]),
        ("tags=cd.{a,b,c}", vec![1, 2, 3, 4]),
        ("tags=ov.{c}", vec![2, 3]),
        ("during=sl.[20,30)", vec![1, 2]),
        ("during=sr.[20,30)", vec![3]),
        ("during=adj.[10,15)", vec![1]),
        ("during=nxr.[0,15)", vec![1]),
        ("during=nxl.[3,100)", vec![2, 3]),
        ("during=ov.[8,12)", vec![1, 2]),
        ("data->k->>n=eq.2", vec![2]),
        ("data->>s=eq.x", vec![1]),
        ("data->k->n=eq.1", vec![1]),
        ("data->k=cs.{%22n%22:2}", vec![2]),
        ("pages=not.gt.60", vec![4]),
        ("title=not.in.(Alpha)", vec![2, 3, 4]),
        ("pages=eq(any).{100,200}", vec![1, 2]),
        ("title=like(any).{A*,G*}", vec![1, 3]),
        ("title=like(all).{*a*,*e*}", vec![2, 4]),
        ("pages=gt(all).{60,150}", vec![2]),
        ("title=eq.Alpha&pages=eq.100", vec![1]),
    ] {
        assert_eq!(ids(&app, filter).await, expected, "{filter}");
    }
    for (bad, code) in [
        ("pages=regex.1", "INVALID_OPERATOR"),
        ("pages=eq", "INVALID_FILTER"),
        ("pages=is.maybe", "INVALID_FILTER"),
        ("pages=eq.abc", "INVALID_VALUE"),
        ("during=ov.[5", "INVALID_VALUE"),
        ("tags=cs.{a", "INVALID_VALUE"),
        ("nope=eq.1", "UNKNOWN_COLUMN"),
    ] {
        let r = app.get(&format!("/api/v1/tables/books?{bad}"), None).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert_eq!(assert_error_shape(&r), code, "{bad}");
    }
}

#[tokio::test]
async fn logic_trees() {
    let app = app().await;
    for (filter, expected) in [
        ("or=(pages.eq.100,title.eq.Gamma)", vec![1, 3]),
        (
            "or=(pages.gt.150,and(title.like.*a,pages.lt.60))",
            vec![2, 4],
        ),
        ("and=(pages.gt.60,pages.lt.150)", vec![1]),
        ("not.or=(pages.eq.100,pages.is.null)", vec![2, 4]),
        ("not.and=(pages.gt.60,title.eq.Alpha)", vec![2, 3, 4]),
        ("or=(title.eq.%22Alpha%22,title.eq.%22a,b)%22)", vec![1]),
        (
            "or=(pages.in.(50,100),not.or(title.neq.Gamma))",
            vec![1, 3, 4],
        ),
        ("or=(pages.not.eq.100,pages.is.null)", vec![2, 3, 4]),
        ("or=(pages.eq.100)&or=(title.eq.Alpha)", vec![1]),
        ("or=(data->k->>n.eq.2,tags.cs.{c})", vec![2, 3]),
    ] {
        assert_eq!(ids(&app, filter).await, expected, "{filter}");
    }
    for bad in [
        "or=pages.eq.1",
        "or=(pages.eq.1",
        "or=()",
        "or=(nope.eq.1)",
        "or=(pages.eq.1,)",
        "or=(pages)",
    ] {
        let r = app.get(&format!("/api/v1/tables/books?{bad}"), None).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert_error_shape(&r);
    }
}

#[tokio::test]
async fn ordering_paging_ranges_and_counts() {
    let app = app().await;
    for (order, expected) in [
        (
            "pages.desc.nullslast",
            json!([{"id": 2}, {"id": 1}, {"id": 4}, {"id": 3}]),
        ),
        (
            "pages.asc.nullsfirst",
            json!([{"id": 3}, {"id": 4}, {"id": 1}, {"id": 2}]),
        ),
        (
            "pages.desc",
            json!([{"id": 3}, {"id": 2}, {"id": 1}, {"id": 4}]),
        ),
        (
            "data->k->>n.desc.nullslast,id",
            json!([{"id": 2}, {"id": 1}, {"id": 3}, {"id": 4}]),
        ),
        (
            "status,title.desc",
            json!([{"id": 3}, {"id": 4}, {"id": 2}, {"id": 1}]),
        ),
    ] {
        let r = app
            .get(
                &format!("/api/v1/tables/books?select=id&order={order}"),
                None,
            )
            .await;
        assert_eq!(r.body, expected, "{order}: {}", r.text);
    }
    let r = app
        .get(
            "/api/v1/tables/books?select=id&order=id&limit=2&offset=1",
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!([{"id": 2}, {"id": 3}]))
    );
    assert_eq!(header(&r, "content-range"), Some("1-2/*"));
    // A count that shows more rows than returned: 206.
    let r = get_h(
        &app,
        "/api/v1/tables/books?select=id&order=id&limit=2",
        &[("Prefer", "count=exact")],
    )
    .await;
    assert_eq!(r.status, 206, "{}", r.text);
    assert_eq!(header(&r, "content-range"), Some("0-1/4"));
    assert_eq!(header(&r, "preference-applied"), Some("count=exact"));
    // Fluxbase's ?count=exact, everything returned: 200.
    let r = app
        .get("/api/v1/tables/books?select=id&count=exact", None)
        .await;
    assert_eq!(
        (r.status, header(&r, "content-range")),
        (200, Some("0-3/4"))
    );
    // The Range header.
    let r = get_h(
        &app,
        "/api/v1/tables/books?select=id&order=id",
        &[
            ("Range", "1-2"),
            ("Range-Unit", "items"),
            ("Prefer", "count=exact"),
        ],
    )
    .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (206, json!([{"id": 2}, {"id": 3}]))
    );
    assert_eq!(header(&r, "content-range"), Some("1-2/4"));
    let r = get_h(&app, "/api/v1/tables/books?select=id", &[("Range", "3-1")]).await;
    assert_eq!(r.status, 416, "{}", r.text);
    assert_error_shape(&r);
    // Past the end: 416; nothing at all: 200 */0.
    let r = app
        .get("/api/v1/tables/books?select=id&offset=10&count=exact", None)
        .await;
    assert_eq!(r.status, 416, "{}", r.text);
    assert_eq!(assert_error_shape(&r), "RANGE_NOT_SATISFIABLE");
    // The page just after the last row is an empty page, not an error (as PostgREST).
    let total = app
        .get("/api/v1/tables/books?select=id&count=exact", None)
        .await
        .body
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    let r = app
        .get(
            &format!("/api/v1/tables/books?select=id&offset={total}&count=exact"),
            None,
        )
        .await;
    assert_eq!((r.status, r.body.clone()), (200, json!([])), "{}", r.text);
    let r = app
        .get("/api/v1/tables/books?select=id&id=eq.99&count=exact", None)
        .await;
    assert_eq!((r.status, header(&r, "content-range")), (200, Some("*/0")));
    // Planned: the planner's estimate; estimated under max_rows: exact.
    let r = get_h(
        &app,
        "/api/v1/tables/books?select=id",
        &[("Prefer", "count=planned")],
    )
    .await;
    assert!(r.status == 200 || r.status == 206, "{}", r.text);
    let planned = header(&r, "content-range")
        .unwrap()
        .split('/')
        .nth(1)
        .unwrap();
    assert!(planned.parse::<u64>().is_ok(), "{planned}");
    let r = get_h(
        &app,
        "/api/v1/tables/books?select=id",
        &[("Prefer", "count=estimated")],
    )
    .await;
    assert_eq!(header(&r, "content-range"), Some("0-3/4"));
    for bad in ["limit=-1", "offset=x", "order=pages.sideways", "order=nope"] {
        let r = app.get(&format!("/api/v1/tables/books?{bad}"), None).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert_error_shape(&r);
    }
}

#[tokio::test]
async fn max_rows_caps_every_read_and_embed() {
    let app = TestApp::start_with_yaml_extra("api:\n  max_rows: 1\n").await;
    load_fixture(&app).await;
    let r = get_h(
        &app,
        "/api/v1/tables/books?select=id,comments(body)&order=id&limit=100&comments.order=id",
        &[("Prefer", "count=exact")],
    )
    .await;
    assert_eq!(r.status, 206, "{}", r.text);
    assert_eq!(r.body, json!([{"id": 1, "comments": [{"body": "c1"}]}]));
    assert_eq!(header(&r, "content-range"), Some("0-0/4"));
    // Estimated above max_rows: the planner's figure, at least what was counted.
    let r = get_h(
        &app,
        "/api/v1/tables/books?select=id",
        &[("Prefer", "count=estimated")],
    )
    .await;
    let total: u64 = header(&r, "content-range")
        .unwrap()
        .split('/')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(total >= 2, "{total}");
}

async fn items(app: &TestApp) -> Value {
    let rows = app
        .admin
        .query(
            "SELECT coalesce(json_agg(i ORDER BY sku), '[]')::text FROM public.items i",
            &[],
        )
        .await
        .unwrap();
    serde_json::from_str(&rows[0].get::<_, String>(0)).unwrap()
}

#[tokio::test]
async fn writes_prefer_return_upsert_bulk_and_defaults() {
    let app = app().await;
    let (token, _) = app.sign_up("writer@example.com", "Writer-password-1").await;
    let t = Some(token.as_str());
    let post = |path: &'static str, body: Value, prefer: &'static str| {
        let app = &app;
        async move {
            app.request(Method::POST, path, t, Some(&body), &[("Prefer", prefer)])
                .await
        }
    };
    // Minimal (the default): 201, no body; absent keys take their defaults.
    let r = post("/api/v1/tables/items", json!({"sku": "a", "name": "A"}), "").await;
    assert_eq!((r.status, r.text.as_str()), (201, ""));
    assert_eq!(
        items(&app).await,
        json!([{"sku": "a", "name": "A", "qty": 7, "note": "none"}])
    );
    // Bulk with mixed keys: absent keys are NULL (qty NOT NULL: refused, nothing written)…
    let bulk = json!([{"sku": "b", "name": "B", "qty": 1}, {"sku": "c", "name": "C"}]);
    let r = post(
        "/api/v1/tables/items",
        bulk.clone(),
        "return=representation",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(assert_error_shape(&r), "CONSTRAINT_VIOLATION");
    assert_eq!(items(&app).await.as_array().map(Vec::len), Some(1));
    // …or, with missing=default, their column DEFAULT.
    let r = post(
        "/api/v1/tables/items?select=sku,qty,note",
        bulk,
        "return=representation, missing=default",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mut got = r.body.as_array().cloned().unwrap();
    got.sort_by_key(|v| v["sku"].as_str().unwrap().to_owned());
    assert_eq!(
        got,
        vec![
            json!({"sku": "b", "qty": 1, "note": "none"}),
            json!({"sku": "c", "qty": 7, "note": "none"})
        ]
    );
    assert_eq!(
        header(&r, "preference-applied"),
        Some("missing=default, return=representation")
    );
    // columns= restricts the keys taken.
    let r = post(
        "/api/v1/tables/items?columns=sku,name",
        json!([{"sku": "d", "name": "D", "qty": 99}]),
        "",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(items(&app).await[3]["qty"], 7);
    // headers-only: Location of the one row.
    let r = post(
        "/api/v1/tables/items",
        json!({"sku": "e f", "name": "E"}),
        "return=headers-only",
    )
    .await;
    assert_eq!((r.status, r.text.as_str()), (201, ""));
    assert_eq!(
        header(&r, "location"),
        Some("/api/v1/tables/public/items?sku=eq.e+f")
    );
    // Upsert, merge: on the primary key by default.
    let r = post(
        "/api/v1/tables/items?select=sku,name,qty",
        json!([{"sku": "a", "name": "A2", "qty": 3}]),
        "resolution=merge-duplicates, return=representation",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body, json!([{"sku": "a", "name": "A2", "qty": 3}]));
    assert_eq!(
        header(&r, "preference-applied"),
        Some("resolution=merge-duplicates, return=representation")
    );
    // Ignore: the existing row stays, the new one goes in.
    let r = post(
        "/api/v1/tables/items?select=sku",
        json!([{"sku": "a", "name": "A3"}, {"sku": "g", "name": "G"}]),
        "resolution=ignore-duplicates, return=representation",
    )
    .await;
    assert_eq!((r.status, r.body.clone()), (201, json!([{"sku": "g"}])));
    // on_conflict on another unique column.
    let r = post(
        "/api/v1/tables/items?on_conflict=name&select=sku,qty",
        json!({"sku": "zz", "name": "G", "qty": 42}),
        "resolution=merge-duplicates, return=representation",
    )
    .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (201, json!([{"sku": "zz", "qty": 42}])),
        "{}",
        r.text
    );
    let r = post(
        "/api/v1/tables/items?on_conflict=qty",
        json!({"sku": "q", "name": "Q"}),
        "resolution=merge-duplicates",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(assert_error_shape(&r), "INVALID_PARAMETER");
    let r = post(
        "/api/v1/tables/items?on_conflict=sku",
        json!({"sku": "q", "name": "Q"}),
        "",
    )
    .await;
    assert_eq!(r.status, 400, "on_conflict without resolution: {}", r.text);
    // A plain duplicate: 409.
    let r = post(
        "/api/v1/tables/items",
        json!({"sku": "a", "name": "other"}),
        "",
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(assert_error_shape(&r), "CONFLICT");

    // PATCH with representation, select and embeds of the written rows.
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/tables/books?id=eq.1&select=title,pages,author:authors(name)",
            t,
            Some(&json!({"pages": 101})),
            &[("Prefer", "return=representation, count=exact")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!([{"title": "Alpha", "pages": 101, "author": {"name": "Ann"}}])
    );
    assert_eq!(header(&r, "content-range"), Some("*/1"));
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/tables/items?sku=in.(b,c)",
            t,
            Some(&json!({"qty": 50})),
            &[],
        )
        .await;
    assert_eq!((r.status, r.text.as_str()), (204, ""));
    // DELETE with representation.
    let r = app
        .request(
            Method::DELETE,
            "/api/v1/tables/items?sku=eq.g&select=sku",
            t,
            None,
            &[("Prefer", "return=representation")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // `g` was renamed to `zz` by the on_conflict merge: nothing left to delete.
    assert_eq!(r.body, json!([]));
    // No filter: refused, nothing changed.
    let before = items(&app).await;
    for method in [Method::PATCH, Method::DELETE] {
        let body = json!({"qty": 0});
        let r = app
            .request(
                method.clone(),
                "/api/v1/tables/items",
                t,
                (method == Method::PATCH).then_some(&body),
                &[],
            )
            .await;
        assert_eq!(r.status, 400, "{method}: {}", r.text);
        assert_eq!(assert_error_shape(&r), "FILTER_REQUIRED");
    }
    // The explicit way to touch every row.
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/tables/items?sku=not.is.null",
            t,
            Some(&json!({"note": "all"})),
            &[("Prefer", "count=exact")],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        header(&r, "content-range"),
        Some(format!("*/{}", before.as_array().unwrap().len()).as_str())
    );
    // tx=rollback: the answer of a write that is then undone.
    let r = post(
        "/api/v1/tables/items?select=sku",
        json!({"sku": "rb", "name": "RB"}),
        "return=representation, tx=rollback",
    )
    .await;
    assert_eq!((r.status, r.body.clone()), (201, json!([{"sku": "rb"}])));
    assert!(header(&r, "preference-applied")
        .unwrap()
        .contains("tx=rollback"));
    assert!(!items(&app).await.to_string().contains("\"rb\""));
    // handling=strict refuses what it does not understand; lenient ignores it.
    let r = post(
        "/api/v1/tables/items",
        json!({"sku": "s", "name": "S"}),
        "handling=strict, foo=bar",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(assert_error_shape(&r), "INVALID_PREFERENCE");
    let r = post(
        "/api/v1/tables/items",
        json!({"sku": "s", "name": "S"}),
        "foo=bar",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Writes refused by RLS/grants: anon may not update books.
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/tables/books?id=eq.1",
            None,
            Some(&json!({"pages": 1})),
            &[],
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_error_shape(&r);
}

#[tokio::test]
async fn single_objects_csv_head_and_read_only() {
    let app = app().await;
    let (token, _) = app.sign_up("single@example.com", "Single-password-1").await;
    let t = Some(token.as_str());
    let single = [("Accept", "application/vnd.pgrst.object+json")];
    let r = get_h(
        &app,
        "/api/v1/tables/books?select=id,title&id=eq.1",
        &single,
    )
    .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({"id": 1, "title": "Alpha"}))
    );
    assert!(header(&r, "content-type")
        .unwrap()
        .starts_with("application/vnd.pgrst.object+json"));
    for filter in ["id=gt.1", "id=eq.99"] {
        let r = get_h(&app, &format!("/api/v1/tables/books?{filter}"), &single).await;
        assert_eq!(r.status, 406, "{filter}: {}", r.text);
        assert_eq!(assert_error_shape(&r), "NOT_SINGLE_OBJECT");
    }
    // On writes: more than one row affected → 406 and rolled back.
    let r = app
        .request(
            Method::POST,
            "/api/v1/tables/items",
            t,
            Some(&json!([{"sku": "s1", "name": "S1"}, {"sku": "s2", "name": "S2"}])),
            &[("Prefer", "return=representation"), single[0]],
        )
        .await;
    assert_eq!(r.status, 406, "{}", r.text);
    assert_eq!(items(&app).await, json!([]));
    let r = app
        .request(
            Method::POST,
            "/api/v1/tables/items?select=sku",
            t,
            Some(&json!({"sku": "s1", "name": "x \"y\", z"})),
            &[("Prefer", "return=representation"), single[0]],
        )
        .await;
    assert_eq!((r.status, r.body.clone()), (201, json!({"sku": "s1"})));
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/tables/items?sku=like.*",
            t,
            Some(&json!({"qty": 1})),
            &[single[0]],
        )
        .await;
    assert_eq!(r.status, 204, "one row: {}", r.text);
    app.admin
        .batch_execute("INSERT INTO public.items (sku, name) VALUES ('s2', 'two')")
        .await
        .unwrap();
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/tables/items?sku=like.*",
            t,
            Some(&json!({"qty": 2})),
            &[single[0]],
        )
        .await;
    assert_eq!(r.status, 406, "{}", r.text);
    assert!(
        !items(&app).await.to_string().contains("\"qty\":2"),
        "rolled back"
    );

    // CSV: a header line, values quoted where needed.
    let csv = [("Accept", "text/csv")];
    let r = get_h(
        &app,
        "/api/v1/tables/books?select=id,title,tags&order=id&id=lte.2",
        &csv,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(header(&r, "content-type").unwrap().starts_with("text/csv"));
    assert_eq!(r.text, "id,title,tags\n1,Alpha,\"{a,b}\"\n2,Beta,\"{b,c}\"");
    let r = get_h(
        &app,
        "/api/v1/tables/items?select=sku,name,note&sku=eq.s1",
        &csv,
    )
    .await;
    assert_eq!(r.text, "sku,name,note\ns1,\"x \"\"y\"\", z\",none");
    let r = get_h(&app, "/api/v1/tables/books?select=id&id=eq.99", &csv).await;
    assert_eq!(r.text, "id");
    // One name twice (JSON keeps both keys) cannot be a CSV row: 400 with the way out, not a 500.
    let r = get_h(&app, "/api/v1/tables/books?select=id,id&order=id", &csv).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(assert_error_shape(&r), "INVALID_SELECT");
    let r = get_h(
        &app,
        "/api/v1/tables/books?select=id,other:id&order=id&id=eq.1",
        &csv,
    )
    .await;
    assert_eq!((r.status, r.text.as_str()), (200, "id,other\n1,1"));
    // q is matched case-insensitively: Q=0 refuses JSON.
    let r = get_h(
        &app,
        "/api/v1/tables/books",
        &[("Accept", "application/json;Q=0")],
    )
    .await;
    assert_eq!(r.status, 406, "{}", r.text);
    for accept in ["text/html", "application/xml", "image/png;q=1"] {
        let r = get_h(&app, "/api/v1/tables/books", &[("Accept", accept)]).await;
        assert_eq!(r.status, 406, "{accept}: {}", r.text);
        assert_eq!(assert_error_shape(&r), "NOT_ACCEPTABLE");
    }

    // HEAD: headers, no body.
    let r = app
        .request(
            Method::HEAD,
            "/api/v1/tables/books?count=exact",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    assert_eq!(header(&r, "content-range"), Some("0-3/4"));

    // GET runs READ ONLY: a view whose volatile function writes fails, and writes nothing.
    let r = app.get("/api/v1/tables/bumping", None).await;
    assert_eq!(r.status, 405, "{}", r.text);
    assert_eq!(assert_error_shape(&r), "READ_ONLY_TRANSACTION");
    assert!(!items(&app).await.to_string().contains("bump"));
}

async fn book_count(app: &TestApp) -> i64 {
    app.admin
        .query_one("SELECT count(*) FROM public.books", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn injection_attempts_through_every_parameter_and_header() {
    let app = app().await;
    let (token, _) = app.sign_up("evil@example.com", "Evil-password-11").await;
    let t = Some(token.as_str());
    // Refused before any SQL: 4xx in the error shape, never SQL text.
    for path in [
        "select=id,(select%201)",
        "select=id::text);drop%20table%20books;--",
        "select=a:id))",
        "select=authors(name;drop)",
        "select=*,x:authors!inner!x(*)",
        "select=id,%22title%22",
        "select=id,title%20from%20books;--",
        "order=id;drop%20table%20books",
        "order=id.desc;select",
        "order=(select%201)",
        "id);drop%20table%20books;--=eq.1",
        "id=eq);drop",
        "id=in.(1);drop%20table%20books",
        "summary=fts(english');drop).x",
        "limit=1;drop",
        "offset=1%20or%201=1",
        "or=(id.eq.1);drop",
        "or=(id.eq.1,id.eq.2)%20or%201=1",
        "books.id=eq.1",
        "select=id,comments(body)&comments.order=id;drop",
        "count=exact;drop",
        "data->%22k%22%20or%201=1->>n=eq.1",
        "select=id&select=title",
    ] {
        let r = app.get(&format!("/api/v1/tables/books?{path}"), t).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert_error_shape(&r);
        assert!(
            !r.text.to_lowercase().contains("drop table"),
            "{path}: {}",
            r.text
        );
    }
    // Values are data.
    for path in [
        "title=eq.';%20drop%20table%20books;%20--",
        "title=like.%25'%20or%20'1'='1",
        "data->'a'=eq.1",
        "data->%22k%22%20or%20true->>n=eq.1",
        "or=(title.eq.%22x')%20or%20('1'='1%22)",
        "title=in.(%22a');drop%20table%20books;--%22)",
    ] {
        let r = app.get(&format!("/api/v1/tables/books?{path}"), t).await;
        assert_eq!(
            (r.status, r.body.clone()),
            (200, json!([])),
            "{path}: {}",
            r.text
        );
    }
    // Headers.
    for (name, value, status) in [
        ("Range", "0-9; drop table books", 400),
        ("Range", "0-9,1-2", 400),
        ("Range-Unit", "items; drop", 400),
        ("Accept", "text/html'); drop table books; --", 406),
        (
            "Prefer",
            "handling=strict, return=representation); drop table books",
            400,
        ),
        ("Prefer", "handling=strict, count=exact); select 1", 400),
    ] {
        let r = get_h(&app, "/api/v1/tables/books", &[(name, value)]).await;
        assert_eq!(r.status, status, "{name}: {value}: {}", r.text);
        assert_error_shape(&r);
    }
    // Lenient Prefer ignores the junk and runs the request normally.
    let r = get_h(
        &app,
        "/api/v1/tables/books?select=id&id=eq.1",
        &[("Prefer", "count=exact'); drop table books; --")],
    )
    .await;
    assert_eq!((r.status, r.body.clone()), (200, json!([{"id": 1}])));
    // Writes: on_conflict, columns, body keys.
    for (path, body) in [
        (
            "/api/v1/tables/items?on_conflict=sku);drop%20table%20books;--",
            json!({"sku": "x", "name": "x"}),
        ),
        (
            "/api/v1/tables/items?columns=sku,name);drop",
            json!({"sku": "x", "name": "x"}),
        ),
        (
            "/api/v1/tables/items",
            json!({"sku": "x", "name\"); drop table books; --": "x"}),
        ),
        (
            "/api/v1/tables/items?select=sku;drop",
            json!({"sku": "x", "name": "x"}),
        ),
    ] {
        let r = app
            .request(
                Method::POST,
                path,
                t,
                Some(&body),
                &[("Prefer", "resolution=merge-duplicates")],
            )
            .await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert_error_shape(&r);
    }
    assert_eq!(book_count(&app).await, 5);
    assert_eq!(items(&app).await, json!([]));
}

#[tokio::test]
async fn schema_cache_follows_ddl_notifications_and_reconnects() {
    let app = app().await;
    // First make sure the listener is connected and past its first reload (it starts in the
    // background; under load its first reload could otherwise come after the table below and
    // find it): a table announced by a notification is seen only after that reload.
    app.admin
        .batch_execute(
            "CREATE TABLE public.listener_probe (id int PRIMARY KEY);
             ALTER TABLE public.listener_probe ENABLE ROW LEVEL SECURITY;
             CREATE POLICY listener_probe_read ON public.listener_probe FOR SELECT USING (true);
             GRANT SELECT ON public.listener_probe TO anon;",
        )
        .await
        .unwrap();
    notify_and_wait(&app, "/api/v1/tables/listener_probe").await;
    // No per-request catalog queries: with the extension's DDL event triggers switched off
    // (in this test's database only), a new table stays unknown until a notification.
    app.admin
        .batch_execute(
            "ALTER EVENT TRIGGER fluxbase_schema_ddl DISABLE;
             ALTER EVENT TRIGGER fluxbase_schema_drop DISABLE;",
        )
        .await
        .unwrap();
    app.admin
        .batch_execute(
            "CREATE TABLE public.late (id int PRIMARY KEY);
             ALTER TABLE public.late ENABLE ROW LEVEL SECURITY;
             CREATE POLICY late_read ON public.late FOR SELECT USING (true);
             GRANT SELECT ON public.late TO anon;
             INSERT INTO public.late VALUES (1);",
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = app.get("/api/v1/tables/late", None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    notify_and_wait(&app, "/api/v1/tables/late").await;
    assert_eq!(
        app.get("/api/v1/tables/late", None).await.body,
        json!([{"id": 1}])
    );
    // The listener's connection dies: it reconnects and reloads (notifications may have been
    // missed meanwhile), without any notification.
    app.admin
        .batch_execute(
            "CREATE TABLE public.later (id int PRIMARY KEY);
             ALTER TABLE public.later ENABLE ROW LEVEL SECURITY;
             GRANT SELECT ON public.later TO anon;",
        )
        .await
        .unwrap();
    let killed: i64 = app
        .admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'fluxbase-schema-listener' AND datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    let mut seen = false;
    for _ in 0..100 {
        if app.get("/api/v1/tables/later", None).await.status == 200 {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(seen, "the listener did not reconnect and reload");
    // With the event triggers on again, DDL alone is enough: a dropped table disappears.
    app.admin
        .batch_execute(
            "ALTER EVENT TRIGGER fluxbase_schema_ddl ENABLE ALWAYS;
             ALTER EVENT TRIGGER fluxbase_schema_drop ENABLE ALWAYS;
             DROP TABLE public.late",
        )
        .await
        .unwrap();
    let mut gone = false;
    for _ in 0..100 {
        if app.get("/api/v1/tables/late", None).await.status == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(gone);
}

#[tokio::test]
async fn strict_rls_hides_unprotected_relations() {
    let app = app().await;
    // RLS off: not exposed under the default api.strict_rls.
    let r = app.get("/api/v1/tables/open_data", None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(assert_error_shape(&r), "TABLE_NOT_FOUND");
    // A view that is not security_invoker reads as its owner: not exposed either.
    app.admin
        .batch_execute(
            "CREATE VIEW public.all_books AS SELECT id FROM public.books;
             GRANT SELECT ON public.all_books TO anon;",
        )
        .await
        .unwrap();
    app.admin
        .batch_execute("NOTIFY fluxbase_schema, 'CREATE VIEW'")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.get("/api/v1/tables/all_books", None).await.status, 404);
    // The security_invoker view is there.
    assert_eq!(
        app.get("/api/v1/tables/bumping?select=n&limit=0", None)
            .await
            .status,
        200
    );

    // With strict_rls off they are exposed (and logged).
    let lax = TestApp::start_with_yaml_extra("api:\n  strict_rls: false\n").await;
    lax.admin.batch_execute(FIXTURE).await.unwrap();
    notify_and_wait(&lax, "/api/v1/tables/open_data").await;
    let r = lax.get("/api/v1/tables/open_data", None).await;
    assert_eq!((r.status, r.body.clone()), (200, json!([])));
}
