//! The Chinook demo's row-level security matrix (`sql/demo_chinook/policies.sql`), in SQL
//! from the server's own login role (`BEGIN; SELECT auth.authenticate(<token>); ...`) with
//! real tokens from signing in over HTTP, checked row id by row id against what a superuser
//! computes; and the same through the flat REST API.
//!
//! These tests clone `fluxbase_chinook` (scripts/test.sh: the shared template plus the
//! demo's 67 accounts), not the shared template, whose other tests count users.
use fluxbase_tests::*;
use serde_json::{json, Value};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

const PASSWORD: &str = "Chinook-Demo-2024";
const CATALOGUE: [&str; 7] = [
    "artist",
    "album",
    "track",
    "genre",
    "media_type",
    "playlist",
    "playlist_track",
];
const PRIVATE: [&str; 4] = ["customer", "employee", "invoice", "invoice_line"];

/// One test's world, as [`TestApp`] but cloned from the Chinook template.
struct Chinook {
    cluster: Cluster,
    db: String,
    base: String,
    http: reqwest::Client,
    admin: Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Chinook {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Chinook {
    async fn start() -> Chinook {
        let cluster = Cluster::from_env();
        let db = format!("t_{}", uuid::Uuid::new_v4().simple());
        cluster
            .admin("postgres")
            .await
            .batch_execute(&format!("CREATE DATABASE {db} TEMPLATE fluxbase_chinook"))
            .await
            .expect("clone the Chinook template (scripts/test.sh makes it)");
        let admin = cluster.admin(&db).await;
        let yaml = format!(
            "server:\n  host: 127.0.0.1\n  port: 0\ndatabase:\n  url: \"{}\"\n  max_connections: 4\nrate_limiting: {{ enabled: false }}\n",
            cluster.server_url(&db)
        );
        let (base, server) = spawn_server(&yaml).await;
        Chinook {
            cluster,
            db,
            base,
            http: reqwest::Client::new(),
            admin,
            server,
        }
    }

    /// Signs in over HTTP as a demo account and returns the access token.
    async fn sign_in(&self, email: &str) -> String {
        let r = self
            .send(
                reqwest::Method::POST,
                "/api/v1/auth/signin",
                None,
                Some(json!({"email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(r.status, 200, "sign-in of {email}: {}", r.text);
        r.body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        into_response(req.send().await.expect("HTTP request")).await
    }

    async fn service_key(&self) -> String {
        self.admin
            .query_one("SELECT auth.issue_api_key('service_role', 'chinook')", &[])
            .await
            .unwrap()
            .get(0)
    }

    /// The ids a superuser finds with `sql` (which selects one integer column).
    async fn ids(&self, sql: &str) -> Vec<i32> {
        self.admin
            .query(sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

/// Runs `sql` in a request-like transaction of the server's role: authenticate first, then
/// the statement; always rolled back.
async fn as_request(
    db: &Client,
    token: Option<&str>,
    sql: &str,
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    db.batch_execute("BEGIN").await.unwrap();
    db.execute("SELECT auth.authenticate($1)", &[&token])
        .await
        .unwrap();
    let result = db.query(sql, &[]).await;
    db.batch_execute("ROLLBACK").await.unwrap();
    result
}

/// The ids of `table` the caller sees, in order.
async fn visible_ids(db: &Client, token: Option<&str>, table: &str) -> Vec<i32> {
    as_request(
        db,
        token,
        &format!("SELECT id FROM public.{table} ORDER BY id"),
    )
    .await
    .unwrap_or_else(|e| panic!("reading {table}: {e}"))
    .iter()
    .map(|r| r.get(0))
    .collect()
}

async fn count(db: &Client, token: Option<&str>, table: &str) -> i64 {
    as_request(db, token, &format!("SELECT count(*) FROM public.{table}"))
        .await
        .unwrap_or_else(|e| panic!("counting {table}: {e}"))[0]
        .get(0)
}

async fn superuser_count(app: &Chinook, table: &str) -> i64 {
    app.admin
        .query_one(&format!("SELECT count(*) FROM public.{table}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// What the caller sees of the private tables, and that it sees the whole catalogue.
async fn assert_sees(
    app: &Chinook,
    db: &Client,
    token: Option<&str>,
    customers: &str,
    employees: &[i32],
) {
    let customer_ids = app
        .ids(&format!(
            "SELECT id FROM public.customer WHERE {customers} ORDER BY id"
        ))
        .await;
    let invoice_ids = app
        .ids(&format!(
            "SELECT id FROM public.invoice WHERE customer IN (SELECT id FROM public.customer WHERE {customers}) ORDER BY id"
        ))
        .await;
    let line_ids = app
        .ids(&format!(
            "SELECT l.id FROM public.invoice_line l JOIN public.invoice i ON i.id = l.invoice \
             WHERE i.customer IN (SELECT id FROM public.customer WHERE {customers}) ORDER BY l.id"
        ))
        .await;
    assert_eq!(
        visible_ids(db, token, "customer").await,
        customer_ids,
        "customers"
    );
    assert_eq!(
        visible_ids(db, token, "invoice").await,
        invoice_ids,
        "invoices"
    );
    assert_eq!(
        visible_ids(db, token, "invoice_line").await,
        line_ids,
        "invoice lines"
    );
    assert_eq!(
        visible_ids(db, token, "employee").await,
        employees,
        "employees"
    );
    for table in CATALOGUE {
        assert_eq!(
            count(db, token, table).await,
            superuser_count(app, table).await,
            "{table}"
        );
    }
}

#[tokio::test]
async fn a_customer_sees_only_their_own_rows_and_the_whole_catalogue() {
    let app = Chinook::start().await;
    let db = app.cluster.as_server_role(&app.db).await;
    let token = app.sign_in("customer2@example.com").await;
    assert_sees(&app, &db, Some(&token), "id = 2", &[]).await;
    // Not vacuous: customer 2 has invoices, and others have more.
    let mine = count(&db, Some(&token), "invoice").await;
    assert!(mine > 0);
    assert!(superuser_count(&app, "invoice").await > mine);
    // A filter cannot widen what the policy allows.
    let others = as_request(
        &db,
        Some(&token),
        "SELECT count(*) FROM public.invoice_line l WHERE l.invoice IN (SELECT id FROM public.invoice WHERE customer <> 2)",
    )
    .await
    .unwrap()[0]
        .get::<_, i64>(0);
    assert_eq!(others, 0);
}

#[tokio::test]
async fn a_support_rep_sees_exactly_their_customers() {
    let app = Chinook::start().await;
    let db = app.cluster.as_server_role(&app.db).await;
    // Employee 5 (a sales support agent) supports customer 2, among others.
    let token = app.sign_in("employee5@example.com").await;
    assert_sees(&app, &db, Some(&token), "support_rep = 5", &[5]).await;
    assert!(count(&db, Some(&token), "customer").await > 1);
}

#[tokio::test]
async fn managers_see_their_reports_customers_recursively() {
    let app = Chinook::start().await;
    let db = app.cluster.as_server_role(&app.db).await;
    // Employee 2, the sales manager: agents 3, 4 and 5 report to them.
    let sales = app.sign_in("employee2@example.com").await;
    assert_sees(
        &app,
        &db,
        Some(&sales),
        "support_rep IN (2, 3, 4, 5)",
        &[2, 3, 4, 5],
    )
    .await;
    // Employee 1, the general manager: everyone reports to them, two levels down.
    let general = app.sign_in("employee1@example.com").await;
    assert_sees(&app, &db, Some(&general), "true", &[1, 2, 3, 4, 5, 6, 7, 8]).await;
    // Employee 6, the IT manager: staff 7 and 8, who support no customers.
    let it = app.sign_in("employee6@example.com").await;
    assert_sees(&app, &db, Some(&it), "false", &[6, 7, 8]).await;
}

#[tokio::test]
async fn anonymous_requests_see_the_catalogue_and_nothing_private() {
    let app = Chinook::start().await;
    let db = app.cluster.as_server_role(&app.db).await;
    for table in CATALOGUE {
        assert_eq!(
            count(&db, None, table).await,
            superuser_count(&app, table).await,
            "{table}"
        );
    }
    for table in PRIVATE {
        let err = as_request(&db, None, &format!("SELECT count(*) FROM public.{table}"))
            .await
            .expect_err(table);
        assert_eq!(
            err.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{table}"
        );
    }
}

#[tokio::test]
async fn service_role_sees_everything() {
    let app = Chinook::start().await;
    let db = app.cluster.as_server_role(&app.db).await;
    let key = app.service_key().await;
    for table in CATALOGUE.iter().chain(PRIVATE.iter()) {
        assert_eq!(
            count(&db, Some(&key), table).await,
            superuser_count(&app, table).await,
            "{table}"
        );
    }
}

#[tokio::test]
async fn a_customer_cannot_write_invoices() {
    let app = Chinook::start().await;
    let db = app.cluster.as_server_role(&app.db).await;
    let token = app.sign_in("customer2@example.com").await;
    let fingerprint = "SELECT count(*)::text || '/' || sum(total)::text || '/' || \
                       (SELECT count(*) FROM public.invoice_line)::text FROM public.invoice";
    let before: String = app.admin.query_one(fingerprint, &[]).await.unwrap().get(0);
    for sql in [
        "INSERT INTO public.invoice (customer, invoicedate, total) VALUES (2, now(), 1)",
        "UPDATE public.invoice SET total = 0 WHERE customer = 2",
        "DELETE FROM public.invoice WHERE customer = 2",
        "INSERT INTO public.invoice_line (invoice, quantity, track, unit_price) \
         SELECT id, 100, 1, 0 FROM public.invoice WHERE customer = 2",
        "UPDATE public.invoice_line SET unit_price = 0",
        "DELETE FROM public.invoice_line",
        "UPDATE public.customer SET support_rep = 3 WHERE id = 2",
    ] {
        let err = as_request(&db, Some(&token), sql).await.expect_err(sql);
        assert_eq!(err.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{sql}");
    }
    // And over HTTP.
    for (method, path, body) in [
        (
            reqwest::Method::POST,
            "/api/v1/tables/invoice",
            Some(json!({"customer": 2, "invoicedate": "2024-01-01T00:00:00Z", "total": 1})),
        ),
        (
            reqwest::Method::PATCH,
            "/api/v1/tables/invoice?customer=eq.2",
            Some(json!({"total": 0})),
        ),
        (
            reqwest::Method::DELETE,
            "/api/v1/tables/invoice?customer=eq.2",
            None,
        ),
    ] {
        let r = app.send(method.clone(), path, Some(&token), body).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text);
        assert_eq!(assert_error_shape(&r), "FORBIDDEN");
    }
    let after: String = app.admin.query_one(fingerprint, &[]).await.unwrap().get(0);
    assert_eq!(before, after);
}

#[tokio::test]
async fn the_rest_api_gives_a_customer_only_their_invoices() {
    let app = Chinook::start().await;
    let token = app.sign_in("customer2@example.com").await;
    let expected = app
        .ids("SELECT id FROM public.invoice WHERE customer = 2 ORDER BY id")
        .await;

    let r = app
        .send(
            reqwest::Method::GET,
            "/api/v1/tables/invoice?order=id",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rows = r.body.as_array().expect("an array of invoices");
    let ids: Vec<i64> = rows.iter().map(|row| row["id"].as_i64().unwrap()).collect();
    assert_eq!(
        ids,
        expected.iter().map(|&i| i64::from(i)).collect::<Vec<_>>()
    );
    assert!(rows.iter().all(|row| row["customer"] == 2), "{}", r.text);

    // Asking for someone else's gets nothing, not an error that confirms they exist.
    let r = app
        .send(
            reqwest::Method::GET,
            "/api/v1/tables/invoice?customer=eq.4",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!([]));

    // Anonymous: the catalogue yes, invoices no.
    let r = app
        .send(
            reqwest::Method::GET,
            "/api/v1/tables/album?select=id,title&limit=3&order=id",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body.as_array().map(Vec::len), Some(3), "{}", r.text);
    let r = app
        .send(reqwest::Method::GET, "/api/v1/tables/invoice", None, None)
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_error_shape(&r);
}

/// The example: a customer's invoices with their lines, each line's track, its album
/// and the album's artist, four levels deep, in one request — exactly the customer's invoices,
/// every line of each, and the catalogue names right, compared with a superuser's join.
#[tokio::test]
async fn a_customers_invoices_embed_four_levels_deep_under_rls() {
    let app = Chinook::start().await;
    let token = app.sign_in("customer2@example.com").await;
    let r = app
        .send(
            reqwest::Method::GET,
            "/api/v1/tables/invoice?select=id,invoice_line(id,track(name,album(title,artist(name))))&order=id&invoice_line.order=id",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rows = app
        .admin
        .query(
            "SELECT i.id, l.id, t.name, al.title, ar.name
             FROM invoice i JOIN invoice_line l ON l.invoice = i.id JOIN track t ON t.id = l.track
             JOIN album al ON al.id = t.album JOIN artist ar ON ar.id = al.artist
             WHERE i.customer = 2 ORDER BY i.id, l.id",
            &[],
        )
        .await
        .unwrap();
    let mut expected: Vec<Value> = Vec::new();
    for row in &rows {
        let invoice: i32 = row.get(0);
        let line = json!({"id": row.get::<_, i32>(1), "track": {"name": row.get::<_, String>(2),
            "album": {"title": row.get::<_, String>(3), "artist": {"name": row.get::<_, String>(4)}}}});
        match expected.last_mut() {
            Some(last) if last["id"] == json!(invoice) => {
                last["invoice_line"].as_array_mut().unwrap().push(line)
            }
            _ => expected.push(json!({"id": invoice, "invoice_line": [line]})),
        }
    }
    assert!(
        expected.len() >= 5,
        "customer 2 has invoices in the data set"
    );
    assert_eq!(r.body, Value::Array(expected));
    // From the catalogue side the invoice lines stay private: a track's lines, embedded,
    // are only the customer's own.
    let r = app
        .send(
            reqwest::Method::GET,
            "/api/v1/tables/track?select=id,invoice_line!inner(invoice)&order=id",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let own: Vec<i32> = app
        .ids("SELECT DISTINCT l.track FROM invoice_line l JOIN invoice i ON i.id = l.invoice WHERE i.customer = 2 ORDER BY 1")
        .await;
    let seen: Vec<i32> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap() as i32)
        .collect();
    assert_eq!(seen, own);
}
