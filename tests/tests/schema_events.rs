//! The extension's event triggers NOTIFY `fluxbase_schema` after DDL (the server's schema
//! cache listens there). A listener on a second connection — the server's own login role,
//! as the server would — must hear every kind of schema change, once it commits, and
//! nothing for a change that was rolled back.
use fluxbase_tests::*;
use futures::StreamExt;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

/// A connection as the server's role that LISTENs on `fluxbase_schema`; the receiver yields
/// the payloads (command tags) of the notifications in arrival order.
async fn listen(app: &TestApp) -> (tokio_postgres::Client, mpsc::UnboundedReceiver<String>) {
    let (client, mut connection) =
        tokio_postgres::connect(&app.cluster.server_url(&app.db), tokio_postgres::NoTls)
            .await
            .expect("listener connection as fluxbase_server");
    let (tx, rx) = mpsc::unbounded_channel();
    // The connection only delivers notifications to whoever polls it for messages.
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message {
                if n.channel() == "fluxbase_schema" && tx.send(n.payload().to_owned()).is_err() {
                    break;
                }
            }
        }
    });
    client
        .batch_execute("LISTEN fluxbase_schema")
        .await
        .unwrap();
    (client, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<String>, after: &str) -> String {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no notification on fluxbase_schema after {after:?}"))
        .expect("listener alive")
}

#[tokio::test]
async fn every_kind_of_schema_change_is_announced() {
    let app = TestApp::start().await;
    let (_listener, mut rx) = listen(&app).await;
    for (sql, tag) in [
        ("CREATE TABLE public.pets (id int PRIMARY KEY, name text)", "CREATE TABLE"),
        ("ALTER TABLE public.pets ADD COLUMN owner uuid", "ALTER TABLE"),
        ("ALTER TABLE public.pets ENABLE ROW LEVEL SECURITY", "ALTER TABLE"),
        ("CREATE POLICY pets_read ON public.pets FOR SELECT USING (true)", "CREATE POLICY"),
        ("ALTER POLICY pets_read ON public.pets USING (owner = auth.uid())", "ALTER POLICY"),
        ("GRANT SELECT ON public.pets TO anon", "GRANT"),
        ("REVOKE SELECT ON public.pets FROM anon", "REVOKE"),
        ("COMMENT ON TABLE public.pets IS 'pets'", "COMMENT"),
        (
            "CREATE VIEW public.pet_names WITH (security_invoker = true) AS SELECT name FROM public.pets",
            "CREATE VIEW",
        ),
        (
            "CREATE FUNCTION public.pet_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM public.pets'",
            "CREATE FUNCTION",
        ),
        ("DROP FUNCTION public.pet_count()", "DROP FUNCTION"),
        ("DROP VIEW public.pet_names", "DROP VIEW"),
        ("DROP POLICY pets_read ON public.pets", "DROP POLICY"),
        ("DROP TABLE public.pets", "DROP TABLE"),
        // The triggers fire ALWAYS, also for loaders that run in replica mode.
        (
            "SET session_replication_role = replica; CREATE TABLE public.loaded (id int); \
             RESET session_replication_role",
            "CREATE TABLE",
        ),
    ] {
        app.admin.batch_execute(sql).await.unwrap();
        assert_eq!(next(&mut rx, sql).await, tag, "{sql}");
    }
}

#[tokio::test]
async fn a_rolled_back_change_is_not_announced_and_a_transaction_once_per_tag() {
    let app = TestApp::start().await;
    let (_listener, mut rx) = listen(&app).await;
    app.admin
        .batch_execute("BEGIN; CREATE TABLE public.ghost (id int); ROLLBACK")
        .await
        .unwrap();
    // Two tables in one transaction: NOTIFY folds identical payloads into one.
    app.admin
        .batch_execute(
            "BEGIN; CREATE TABLE public.a (id int); CREATE TABLE public.b (id int); \
             GRANT SELECT ON public.a TO anon; COMMIT",
        )
        .await
        .unwrap();
    assert_eq!(next(&mut rx, "the commit").await, "CREATE TABLE");
    assert_eq!(next(&mut rx, "the commit").await, "GRANT");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        rx.try_recv().is_err(),
        "more notifications than the committed tags"
    );
}

#[tokio::test]
async fn ddl_by_an_ordinary_owner_is_announced_and_not_refused() {
    let app = TestApp::start().await;
    let (_listener, mut rx) = listen(&app).await;
    // Roles are cluster-wide: a name of this test's own.
    let owner = format!("owner_{}", &app.db[2..14]);
    app.admin
        .batch_execute(&format!(
            "CREATE ROLE {owner} NOLOGIN; CREATE SCHEMA shop AUTHORIZATION {owner}; \
             SET ROLE {owner}; CREATE TABLE shop.items (id int); RESET ROLE"
        ))
        .await
        .unwrap();
    assert_eq!(next(&mut rx, "CREATE SCHEMA").await, "CREATE SCHEMA");
    assert_eq!(next(&mut rx, "CREATE TABLE").await, "CREATE TABLE");
    app.admin
        .batch_execute(&format!("DROP SCHEMA shop CASCADE; DROP ROLE {owner}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_extension_that_owns_the_triggers_can_still_be_dropped() {
    // The sql_drop trigger fires for the very DROP that removes it and its function.
    let app = TestApp::start().await;
    app.admin
        .batch_execute("DROP EXTENSION fluxbase CASCADE")
        .await
        .unwrap();
    let left: i64 = app
        .admin
        .query_one(
            "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'fluxbase_schema%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    // And DDL goes on without them.
    app.admin
        .batch_execute("CREATE TABLE public.after_drop (id int)")
        .await
        .unwrap();
}
