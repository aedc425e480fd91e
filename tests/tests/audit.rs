//! The audit log end to end (security property 9): rows written by real HTTP requests name the
//! verified actor; direct SQL and service_role are told apart; a rolled-back transaction leaves
//! nothing; application roles cannot change the log; tampering is found; parallel writers leave
//! a chain that verifies; and a cluster that preloads both fluxbase and pgaudit starts and audits.
use fluxbase_tests::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

const REPR: (&str, &str) = ("Prefer", "return=representation");

/// The audit rows of the row changes to `table`, oldest first.
async fn audit_rows(db: &Client, table: &str) -> Vec<Value> {
    let row = db
        .query_one(
            "SELECT coalesce(jsonb_agg(to_jsonb(l) ORDER BY l.id), '[]')::text FROM audit.log l \
             WHERE l.table_oid = $1::text::regclass::oid AND l.op IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')",
            &[&table],
        )
        .await
        .expect("read audit.log");
    serde_json::from_str(row.get::<_, &str>(0)).expect("json")
}

/// The first broken link audit.verify() reports, or None.
async fn broken_link(db: &Client) -> Option<Value> {
    let row = db
        .query_one(
            "SELECT (SELECT to_jsonb(v) FROM audit.verify() v)::text",
            &[],
        )
        .await
        .expect("audit.verify()");
    row.get::<_, Option<&str>>(0)
        .map(|t| serde_json::from_str(t).expect("json"))
}

async fn sqlstate(client: &Client, sql: &str) -> Option<SqlState> {
    client
        .batch_execute(sql)
        .await
        .err()
        .and_then(|e| e.code().cloned())
}

#[tokio::test]
async fn http_requests_are_audited_with_the_verified_actor() {
    let app = TestApp::start().await;
    app.admin
        .batch_execute("SELECT audit.enable('public.notes')")
        .await
        .unwrap();
    let (alice, alice_id) = app.sign_up("alice@example.com", "Alice-password-1").await;

    let r = app
        .request(
            Method::POST,
            "/api/v1/tables/notes",
            Some(&alice),
            Some(&json!({"title": "first"})),
            &[REPR],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body[0]["id"].as_i64().unwrap();
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/tables/notes?id=eq.{id}"),
            Some(&alice),
            Some(&json!({"title": "second"})),
            &[],
        )
        .await;
    assert!(r.status < 300, "{}", r.text);
    let r = app
        .request(
            Method::DELETE,
            &format!("/api/v1/tables/notes?id=eq.{id}"),
            Some(&alice),
            None,
            &[],
        )
        .await;
    assert!(r.status < 300, "{}", r.text);

    let rows = audit_rows(&app.admin, "public.notes").await;
    let ops: Vec<&str> = rows.iter().map(|r| r["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["INSERT", "UPDATE", "DELETE"], "{rows:?}");
    for row in &rows {
        assert_eq!(row["actor_id"], alice_id.as_str(), "{row}");
        assert_eq!(row["actor_role"], "authenticated");
        assert_eq!(row["db_role"], "authenticated");
        assert_eq!(row["login_role"], "fluxbase_server");
        assert!(row["session_id"].is_string(), "{row}");
        assert_eq!(row["client_addr"], "127.0.0.1");
        assert_eq!(row["pk"], json!({"id": id}));
    }
    assert_eq!(rows[0]["new_row"]["title"], "first");
    assert_eq!(rows[1]["old_row"]["title"], "first");
    assert_eq!(rows[1]["new_row"]["title"], "second");
    assert_eq!(rows[2]["old_row"]["title"], "second");

    // The user's history, and the row's.
    let row = app
        .admin
        .query_one(
            "SELECT count(*) FROM audit.actor_history($1::text::uuid, now() - interval '1 hour')",
            &[&alice_id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 3);
    let row = app
        .admin
        .query_one(
            "SELECT count(*) FROM audit.row_history('public.notes', jsonb_build_object('id', $1::bigint))",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 3);

    // The sign-up and the sign-in are in the log too.
    let row = app
        .admin
        .query_one(
            "SELECT count(*) FROM audit.log WHERE op = 'SECURITY' AND details->>'event' = 'auth.signup'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    assert_eq!(broken_link(&app.admin).await, None);
}

#[tokio::test]
async fn direct_sql_service_role_and_refused_requests() {
    let app = TestApp::start().await;
    app.admin
        .batch_execute("SELECT audit.enable('public.notes')")
        .await
        .unwrap();
    let (alice, alice_id) = app.sign_up("alice@example.com", "Alice-password-1").await;
    let (bob, _) = app.sign_up("bob@example.com", "Bob-password-22").await;
    let service: String = app
        .admin
        .query_one(
            "SELECT auth.issue_api_key('service_role', 'audit test')",
            &[],
        )
        .await
        .unwrap()
        .get(0);

    // service_role over HTTP.
    let r = app
        .request(
            Method::POST,
            "/api/v1/tables/notes",
            Some(&service),
            Some(&json!({"title": "from the back office", "user_id": alice_id})),
            &[REPR],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body[0]["id"].as_i64().unwrap();
    // A refused request (Bob may not change Alice's note) writes nothing.
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/tables/notes?id=eq.{id}"),
            Some(&bob),
            Some(&json!({"title": "hijacked"})),
            &[],
        )
        .await;
    assert_ne!(r.status, 500, "{}", r.text);
    let r = app
        .request(
            Method::POST,
            "/api/v1/tables/notes",
            Some(&bob),
            Some(&json!({"title": "forged", "user_id": alice_id})),
            &[],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    // Direct SQL as an administrator.
    app.admin
        .batch_execute(&format!(
            "UPDATE public.notes SET title = 'by the admin' WHERE id = {id}"
        ))
        .await
        .unwrap();
    // A rolled-back transaction leaves no audit row.
    app.admin
        .batch_execute(&format!(
            "BEGIN; UPDATE public.notes SET title = 'never' WHERE id = {id}; \
             INSERT INTO public.notes (title, user_id) VALUES ('never either', '{alice_id}'); ROLLBACK"
        ))
        .await
        .unwrap();
    let _ = alice;

    let rows = audit_rows(&app.admin, "public.notes").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["op"], "INSERT");
    assert_eq!(rows[0]["actor_role"], "service_role");
    assert_eq!(rows[0]["db_role"], "service_role");
    assert_eq!(rows[0]["login_role"], "fluxbase_server");
    assert_eq!(rows[1]["op"], "UPDATE");
    assert!(rows[1]["actor_id"].is_null());
    assert!(rows[1]["actor_role"].is_null());
    assert_eq!(rows[1]["db_role"], "postgres");
    assert_eq!(rows[1]["login_role"], "postgres");
    assert_eq!(rows[1]["new_row"]["title"], "by the admin");
    let text = serde_json::to_string(&rows).unwrap();
    assert!(!text.contains("never"), "{text}");
    assert!(!text.contains("hijacked"), "{text}");
    assert!(!text.contains("forged"), "{text}");
    assert_eq!(broken_link(&app.admin).await, None);
}

#[tokio::test]
async fn application_roles_cannot_change_the_log() {
    let app = TestApp::start().await;
    app.admin
        .batch_execute("SELECT audit.enable('public.notes')")
        .await
        .unwrap();
    let (alice, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    let service: String = app
        .admin
        .query_one(
            "SELECT auth.issue_api_key('service_role', 'audit test')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let r = app
        .request(
            Method::POST,
            "/api/v1/tables/notes",
            Some(&alice),
            Some(&json!({"title": "evidence"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let before = audit_rows(&app.admin, "public.notes").await;

    let db = app.cluster.as_server_role(&app.db).await;
    let attacks = [
        "UPDATE audit.log SET new_row = '{}'",
        "DELETE FROM audit.log",
        "TRUNCATE audit.log",
        "TRUNCATE audit.log_default",
        "SELECT audit.disable('public.notes')",
        "SELECT audit.purge('0 seconds')",
        "ALTER TABLE public.notes DISABLE TRIGGER fluxbase_audit_insert",
        "DROP TRIGGER fluxbase_audit_insert ON public.notes",
    ];
    for token in [None, Some(alice.as_str()), Some(service.as_str())] {
        for attack in attacks {
            let auth = match token {
                Some(t) => format!("SELECT auth.authenticate('{t}');"),
                None => String::new(),
            };
            let sql = format!("BEGIN; {auth} {attack}; COMMIT;");
            assert_eq!(
                sqlstate(&db, &sql).await,
                Some(SqlState::INSUFFICIENT_PRIVILEGE),
                "{sql}"
            );
            db.batch_execute("ROLLBACK").await.unwrap();
        }
    }
    // Nor over HTTP: the audit schema is not exposed.
    let r = app.get("/api/v1/tables/audit/log", Some(&service)).await;
    assert!(r.status == 404 || r.status == 400, "{}", r.text);
    assert_eq!(audit_rows(&app.admin, "public.notes").await, before);
    assert_eq!(broken_link(&app.admin).await, None);

    // A superuser can, and audit.verify() finds it.
    let target = before[0]["id"].as_i64().unwrap();
    app.admin
        .batch_execute(&format!(
            "UPDATE audit.log SET new_row = jsonb_set(new_row, '{{title}}', '\"innocent\"') WHERE id = {target}"
        ))
        .await
        .unwrap();
    let broken = broken_link(&app.admin).await.expect("the edit is found");
    assert_eq!(broken["id"], target, "{broken}");
    let row = app
        .admin
        .query_one(
            "SELECT count(*) FROM audit.log WHERE op = 'AUDIT' AND details->>'action' = 'log_row_updated'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1, "the superuser's edit is on record");
}

#[tokio::test]
async fn parallel_writers_leave_a_chain_that_verifies() {
    let app = TestApp::start().await;
    app.admin
        .batch_execute(
            "CREATE TABLE public.counters (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, writer int, n int); \
             SELECT audit.enable('public.counters')",
        )
        .await
        .unwrap();
    const WRITERS: i32 = 8;
    const ROUNDS: i32 = 40;
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let cluster = Cluster::from_env();
        let db = app.db.clone();
        tasks.push(tokio::spawn(async move {
            let c = cluster.admin(&db).await;
            for round in 0..ROUNDS {
                let sql = match round % 5 {
                    0 => format!("INSERT INTO public.counters (writer, n) VALUES ({writer}, {round})"),
                    1 => format!(
                        "INSERT INTO public.counters (writer, n) SELECT {writer}, g FROM generate_series(1, 5) g"
                    ),
                    2 => format!("UPDATE public.counters SET n = n + 1 WHERE writer = {writer} AND n < 3"),
                    3 => format!(
                        "BEGIN; INSERT INTO public.counters (writer, n) VALUES ({writer}, -1); ROLLBACK"
                    ),
                    _ => format!(
                        "BEGIN; INSERT INTO public.counters (writer, n) VALUES ({writer}, -2); SAVEPOINT s; \
                         INSERT INTO public.counters (writer, n) VALUES ({writer}, -3); ROLLBACK TO s; \
                         DELETE FROM public.counters WHERE writer = {writer} AND n = -2; COMMIT"
                    ),
                };
                c.batch_execute(&sql).await.expect("writer statement");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(broken_link(&app.admin).await, None);
    let row = app
        .admin
        .query_one(
            "SELECT (SELECT count(*) FROM audit.log WHERE op = 'INSERT' AND table_name = 'public.counters'), \
                    (SELECT count(DISTINCT chain_lane) FROM audit.log WHERE table_name = 'public.counters'), \
                    (SELECT count(*) FROM audit.log WHERE table_name = 'public.counters' AND (new_row->>'n')::int IN (-1, -3))",
            &[],
        )
        .await
        .unwrap();
    let per_writer = ROUNDS / 5;
    // Committed inserts: 1 + 5 + the -2 row, per writer per cycle of five rounds.
    assert_eq!(row.get::<_, i64>(0), i64::from(WRITERS * per_writer * 7));
    assert!(row.get::<_, i64>(1) > 1, "the writers used several lanes");
    assert_eq!(row.get::<_, i64>(2), 0, "a rolled-back row was logged");
}

// ---------------------------------------------------------------------------------------------
// fluxbase beside pgaudit
// ---------------------------------------------------------------------------------------------

const PGBIN: &str = "/usr/lib/postgresql/15/bin";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL program as the `postgres` OS user when we are root (PostgreSQL refuses
/// to run as root), else as ourselves.
fn pg_command(program: &str, args: &[&str]) -> std::process::Output {
    let path = format!("{PGBIN}/{program}");
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(&path)
    };
    cmd.args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// A throwaway cluster with `shared_preload_libraries = 'fluxbase,pgaudit'`, stopped and deleted
/// when dropped.
struct PgauditCluster {
    root: PathBuf,
}

impl PgauditCluster {
    fn data(&self) -> PathBuf {
        self.root.join("data")
    }
    fn log(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    fn start() -> (PgauditCluster, u16) {
        let root = PathBuf::from(format!(
            "/var/tmp/fluxbase-pgaudit-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&root).unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["postgres", root.to_str().unwrap()])
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let cluster = PgauditCluster { root };
        let data = cluster.data();
        let out = pg_command(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth-local=trust",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = format!(
            "\nport = {port}\nlisten_addresses = ''\nunix_socket_directories = '{}'\n\
             shared_preload_libraries = 'fluxbase,pgaudit'\n\
             fluxbase.jwt_secret = 'pgaudit-test-secret-that-is-at-least-32-bytes'\n\
             fluxbase.mfa_encryption_key = 'pgaudit-test-mfa-key-that-is-at-least-32-bytes'\n\
             pgaudit.log = 'write, ddl'\nmax_prepared_transactions = 2\n",
            cluster.root.display()
        );
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        std::io::Write::write_all(&mut file, conf.as_bytes()).unwrap();
        let out = pg_command(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                cluster.log().to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "the cluster with fluxbase and pgaudit preloaded did not start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(cluster.log()).unwrap_or_default()
        );
        (cluster, port)
    }
}

impl Drop for PgauditCluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = pg_command(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

async fn connect(socket: &Path, port: u16) -> Client {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host_path(socket)
        .port(port)
        .user("postgres")
        .dbname("postgres");
    let (client, conn) = cfg
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect to the pgaudit cluster");
    tokio::spawn(conn);
    client
}

#[tokio::test]
async fn fluxbase_and_pgaudit_preloaded_together_both_audit() {
    let (cluster, port) = PgauditCluster::start();
    let db = connect(&cluster.root, port).await;
    let libs: String = db
        .query_one("SHOW shared_preload_libraries", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(libs, "fluxbase,pgaudit");
    db.batch_execute(
        "CREATE EXTENSION fluxbase; CREATE EXTENSION pgaudit; \
         CREATE TABLE public.things (id int PRIMARY KEY, name text); \
         SELECT audit.enable('public.things'); \
         INSERT INTO public.things VALUES (1, 'pgaudit-marker-row'); \
         UPDATE public.things SET name = 'renamed' WHERE id = 1",
    )
    .await
    .expect("fluxbase works beside pgaudit");
    let rows = audit_rows(&db, "public.things").await;
    let ops: Vec<&str> = rows.iter().map(|r| r["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["INSERT", "UPDATE"]);
    assert_eq!(broken_link(&db).await, None);
    // A transaction that wrote audit rows cannot be prepared (its rows would commit after its
    // lane had moved on), and leaves nothing behind.
    let err = db
        .batch_execute("BEGIN; INSERT INTO public.things VALUES (2, 'prepared'); PREPARE TRANSACTION 'audit_test'")
        .await
        .expect_err("PREPARE of an audited transaction is refused");
    assert!(
        err.to_string().contains("cannot be prepared")
            || format!("{err:?}").contains("cannot be prepared"),
        "{err:?}"
    );
    db.batch_execute("ROLLBACK").await.unwrap();
    db.batch_execute("INSERT INTO public.things VALUES (3, 'after')")
        .await
        .unwrap();
    assert_eq!(audit_rows(&db, "public.things").await.len(), 3);
    assert_eq!(broken_link(&db).await, None);
    // pgaudit wrote its own session audit lines for the same statements.
    let mut log = String::new();
    for _ in 0..50 {
        log = std::fs::read_to_string(cluster.log()).unwrap_or_default();
        if log.contains("pgaudit-marker-row") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        log.lines().any(|l| l.contains("AUDIT: SESSION")
            && l.contains("WRITE")
            && l.contains("pgaudit-marker-row")),
        "no pgaudit line for the INSERT in:\n{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("AUDIT: SESSION")
            && l.contains("DDL")
            && l.contains("CREATE TABLE")),
        "no pgaudit DDL line in:\n{log}"
    );
}

#[tokio::test]
async fn a_tracking_change_reaches_pooled_connections_at_once() {
    // The capture trigger keeps each backend's reading of audit.tracked: a change made on
    // another connection must still govern the very next request on every pooled connection.
    let app = TestApp::start().await;
    app.admin
        .batch_execute("SELECT audit.enable('public.notes')")
        .await
        .unwrap();
    let (alice, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    let post = |title: &'static str| {
        let app = &app;
        let alice = alice.clone();
        async move {
            let r = app
                .request(
                    Method::POST,
                    "/api/v1/tables/notes",
                    Some(&alice),
                    Some(&json!({"title": title})),
                    &[],
                )
                .await;
            assert_eq!(r.status, 201, "{}", r.text);
        }
    };
    // Several requests at once, so several pooled backends read (and keep) the tracking.
    futures::future::join_all((0..4).map(|_| post("before"))).await;
    app.admin
        .batch_execute("SELECT audit.enable('public.notes', exclude_columns => '{title}')")
        .await
        .unwrap();
    futures::future::join_all((0..4).map(|_| post("after"))).await;
    app.admin
        .batch_execute("SELECT audit.disable('public.notes')")
        .await
        .unwrap();
    futures::future::join_all((0..4).map(|_| post("untracked"))).await;

    let rows = audit_rows(&app.admin, "public.notes").await;
    assert_eq!(rows.len(), 8, "{rows:?}");
    for row in &rows[..4] {
        assert_eq!(row["new_row"]["title"], "before", "{row}");
    }
    for row in &rows[4..] {
        assert!(row["new_row"].get("title").is_none(), "{row}");
        assert!(row["new_row"].get("id").is_some(), "{row}");
    }
    assert_eq!(broken_link(&app.admin).await, None);
}

/// A table's owner (no superuser) rewrites every row of a tracked table with DDL: no row
/// change reaches the capture trigger, so the log records the rewrite with the statement that
/// did it and who, and the row's history lists it between its changes (found by a red-team
/// review: only a bare `ALTER TABLE` row was left).
#[tokio::test]
async fn a_table_owners_rewrite_of_a_tracked_table_is_recorded_with_its_statement() {
    let app = TestApp::start().await;
    let owner = format!("owner_{}", uuid::Uuid::new_v4().simple());
    app.admin
        .batch_execute(&format!(
            "CREATE ROLE {owner} NOLOGIN;
             CREATE TABLE public.items (id int PRIMARY KEY, name text);
             ALTER TABLE public.items OWNER TO {owner};
             SELECT audit.enable('public.items');
             INSERT INTO public.items VALUES (1, 'a'), (2, 'b');"
        ))
        .await
        .unwrap();
    app.admin
        .batch_execute(&format!("SET ROLE {owner}"))
        .await
        .unwrap();
    let rewrite =
        "ALTER TABLE public.items ALTER COLUMN name TYPE varchar(40) USING 'rewritten-by-ddl'";
    app.admin.batch_execute(rewrite).await.unwrap();
    app.admin
        .batch_execute("UPDATE public.items SET name = 'c' WHERE id = 1")
        .await
        .unwrap();
    app.admin.batch_execute("RESET ROLE").await.unwrap();
    let row = app
        .admin
        .query_one(
            "SELECT jsonb_agg(jsonb_build_array(op, details->>'statement', db_role, old_row->>'name') ORDER BY id)::text \
             FROM audit.row_history('public.items', '{\"id\": 1}')",
            &[],
        )
        .await
        .unwrap();
    let history: Value = serde_json::from_str(row.get::<_, &str>(0)).unwrap();
    assert_eq!(history[0][0], "INSERT", "{history}");
    assert_eq!(
        history[1],
        json!(["DDL", rewrite, owner, null]),
        "{history}"
    );
    assert_eq!(history[2][0], "UPDATE", "{history}");
    assert_eq!(history[2][3], "rewritten-by-ddl", "{history}");
    assert_eq!(history.as_array().map(Vec::len), Some(3), "{history}");
    // DDL on what a column depends on changes what it reads: renaming an enum's value the
    // table holds is recorded with its statement and who.
    app.admin
        .batch_execute(&format!(
            "CREATE TYPE public.item_state AS ENUM ('open', 'paid');
             ALTER TYPE public.item_state OWNER TO {owner};
             ALTER TABLE public.items ADD COLUMN state public.item_state DEFAULT 'paid';
             SET ROLE {owner};"
        ))
        .await
        .unwrap();
    let rename = "ALTER TYPE public.item_state RENAME VALUE 'paid' TO 'refunded'";
    app.admin.batch_execute(rename).await.unwrap();
    app.admin.batch_execute("RESET ROLE").await.unwrap();
    let recorded: i64 = app
        .admin
        .query_one(
            "SELECT count(*) FROM audit.log WHERE op = 'DDL' AND details->>'statement' = $1 AND db_role = $2",
            &[&rename, &owner],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        recorded, 1,
        "the enum rename is not in the log with its statement"
    );
    assert_eq!(broken_link(&app.admin).await, None);
    app.admin
        .batch_execute(&format!(
            "DROP TABLE public.items; DROP TYPE public.item_state; DROP ROLE {owner}"
        ))
        .await
        .unwrap();
}
