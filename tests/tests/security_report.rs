//! Security property 5: every exposed table with RLS off is reported — by the extension's
//! `fluxbase.security_report`, as the server's own role (what the server logs at start and
//! what `fluxbase check` will print), through psql as well as from Rust; and the report is
//! not for API roles.
use fluxbase_server::security_report::{fetch_security_report, Finding};
use fluxbase_tests::*;
use tokio_postgres::error::SqlState;

fn has(findings: &[Finding], severity: &str, kind: &str, object: &str) -> bool {
    findings
        .iter()
        .any(|f| f.severity == severity && f.kind == kind && f.object == object)
}

#[tokio::test]
async fn a_table_with_rls_off_is_found_by_the_servers_fetch() {
    let app = TestApp::start().await;
    let db = app.cluster.as_server_role(&app.db).await;
    let public = vec!["public".to_owned()];
    let before = fetch_security_report(&db, &public).await.unwrap();
    // The demo apps are clean (their helper functions are reported for review, nothing else).
    assert!(
        before
            .iter()
            .all(|f| f.kind == "security_definer_function" && f.severity == "warning"),
        "{before:?}"
    );

    app.admin
        .batch_execute(
            "CREATE TABLE public.leaky (id int, secret text); \
             GRANT SELECT ON public.leaky TO anon; \
             CREATE VIEW public.leaky_view AS SELECT id FROM public.notes; \
             CREATE SCHEMA private; CREATE TABLE private.open (id int);",
        )
        .await
        .unwrap();
    let after = fetch_security_report(&db, &public).await.unwrap();
    assert!(
        has(&after, "error", "rls_disabled", "public.leaky"),
        "{after:?}"
    );
    assert!(
        has(
            &after,
            "error",
            "view_not_security_invoker",
            "public.leaky_view"
        ),
        "{after:?}"
    );
    assert!(
        !after.iter().any(|f| f.object.starts_with("private.")),
        "a schema that is not exposed was reported: {after:?}"
    );
    // Errors come first.
    let first_warning = after
        .iter()
        .position(|f| !f.is_error())
        .unwrap_or(after.len());
    assert!(after[first_warning..].iter().all(|f| !f.is_error()));

    // Another exposed schema is looked at when the config names it.
    let both = fetch_security_report(&db, &["public".to_owned(), "private".to_owned()])
        .await
        .unwrap();
    assert!(
        has(&both, "error", "rls_disabled", "private.open"),
        "{both:?}"
    );
}

#[tokio::test]
async fn the_report_through_psql_as_the_server_role() {
    let app = TestApp::start().await;
    app.admin
        .batch_execute("CREATE TABLE public.open_door (id int)")
        .await
        .unwrap();
    let out = std::process::Command::new("psql")
        .args([
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "SELECT severity || ' ' || kind || ' ' || object FROM fluxbase.security_report() WHERE kind <> 'security_definer_function'",
            &app.cluster.server_url(&app.db),
        ])
        .output()
        .expect("run psql");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "error rls_disabled public.open_door");
}

#[tokio::test]
async fn api_roles_cannot_run_the_report_but_service_role_can() {
    let app = TestApp::start().await;
    let db = app.cluster.as_server_role(&app.db).await;
    let (alice, _) = app.sign_up("alice@example.com", "Alice-password-1").await;
    for token in [None, Some(alice.as_str())] {
        db.batch_execute("BEGIN").await.unwrap();
        db.execute("SELECT auth.authenticate($1)", &[&token])
            .await
            .unwrap();
        let err = db
            .query("SELECT * FROM fluxbase.security_report()", &[])
            .await
            .expect_err("an API role ran the report");
        assert_eq!(err.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
        db.batch_execute("ROLLBACK").await.unwrap();
    }
    let key: String = app
        .admin
        .query_one("SELECT auth.issue_api_key('service_role', 'report')", &[])
        .await
        .unwrap()
        .get(0);
    db.batch_execute("BEGIN").await.unwrap();
    db.execute("SELECT auth.authenticate($1)", &[&key])
        .await
        .unwrap();
    db.query("SELECT * FROM fluxbase.security_report()", &[])
        .await
        .expect("service_role runs the report");
    db.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test]
async fn a_report_that_cannot_run_does_not_stop_the_server() {
    // The function gone (say, an older extension): the start warns and serves anyway.
    let app = TestApp::start().await;
    app.admin
        .batch_execute("REVOKE EXECUTE ON FUNCTION fluxbase.security_report(text[]) FROM fluxbase_authenticator")
        .await
        .unwrap();
    let yaml = format!(
        "server:\n  host: 127.0.0.1\n  port: 0\ndatabase:\n  url: \"{}\"\n  max_connections: 2\n",
        app.cluster.server_url(&app.db)
    );
    let (base, server) = spawn_server(&yaml).await;
    let health = reqwest::get(format!("{base}/health")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    server.abort();
}

/// `fluxbase check` (the library function the command prints): a table with RLS off fails the
/// check and names the table; once RLS is on, forced and covered by policies, it passes.
#[tokio::test]
async fn fluxbase_check_fails_on_an_unprotected_table_and_passes_once_fixed() {
    let app = TestApp::start().await;
    app.admin
        .batch_execute(
            "CREATE TABLE public.check_open (id int PRIMARY KEY);
             GRANT SELECT ON public.check_open TO anon;",
        )
        .await
        .unwrap();
    // The password through ${VAR}, as in production: a literal one fails the secrets item.
    let audit_file = std::env::temp_dir().join(format!("fluxbase-check-{}.log", app.db));
    let yaml = format!(
        "server:\n  host: 127.0.0.1\n  port: 0\ndatabase:\n  url: \"postgres://fluxbase_server:${{CHECK_DB_PASSWORD}}@127.0.0.1:{}/{}\"\nlogging: {{ audit_enabled: true, audit_log_file: \"{}\" }}\n",
        app.cluster.port,
        app.db,
        audit_file.display()
    );
    let config = fluxbase_server::Config::from_yaml_str_with_vars(
        &yaml,
        &[(
            "CHECK_DB_PASSWORD".to_owned(),
            app.cluster.server_password.clone(),
        )],
    )
    .expect("config");
    let outcome = fluxbase_server::check::run(&config).await;
    assert!(outcome.failed, "{:#?}", outcome.lines);
    assert!(
        outcome
            .lines
            .iter()
            .any(|l| l.starts_with("FAIL  rls_disabled public.check_open")),
        "{:#?}",
        outcome.lines
    );
    app.admin
        .batch_execute(
            "ALTER TABLE public.check_open ENABLE ROW LEVEL SECURITY;
             ALTER TABLE public.check_open FORCE ROW LEVEL SECURITY;
             CREATE POLICY check_open_read ON public.check_open FOR SELECT USING (true);",
        )
        .await
        .unwrap();
    let outcome = fluxbase_server::check::run(&config).await;
    assert!(!outcome.failed, "{:#?}", outcome.lines);
    assert!(
        !outcome
            .lines
            .iter()
            .any(|l| l.contains("public.check_open")),
        "{:#?}",
        outcome.lines
    );
    // The edge items: all on here; pgaudit is not preloaded in the test cluster (WARN).
    for item in [
        "PASS  rate_limiting",
        "PASS  audit_log",
        "PASS  monitoring",
        "WARN  pgaudit  pgaudit is not loaded",
    ] {
        assert!(
            outcome.lines.iter().any(|l| l.starts_with(item)),
            "{item}: {:#?}",
            outcome.lines
        );
    }
    // Rate limiting or the audit log off fails the check; metrics on every interface warn.
    let off = format!(
        "server:\n  host: 127.0.0.1\n  port: 0\ndatabase:\n  url: \"{}\"\nrate_limiting: {{ enabled: false }}\nmonitoring: {{ host: 0.0.0.0 }}\n",
        app.cluster.server_url(&app.db)
    );
    let config = fluxbase_server::Config::from_yaml_str(&off).expect("config");
    let outcome = fluxbase_server::check::run(&config).await;
    assert!(outcome.failed);
    for item in ["FAIL  rate_limiting", "FAIL  audit_log", "WARN  monitoring"] {
        assert!(
            outcome.lines.iter().any(|l| l.starts_with(item)),
            "{item}: {:#?}",
            outcome.lines
        );
    }
    // Metrics on the public port are refused at start, naming the key.
    let err = fluxbase_server::Config::from_yaml_str(&format!(
        "server:\n  port: 8080\ndatabase:\n  url: \"{}\"\nmonitoring: {{ port: 8080 }}\n",
        app.cluster.server_url(&app.db)
    ))
    .unwrap_err();
    assert!(err.to_string().contains("monitoring.port"), "{err}");
    // An unreachable database is a failure, not a pass.
    let yaml = "server:\n  host: 127.0.0.1\n  port: 0\ndatabase:\n  url: \"postgres://nobody:not-the-password@127.0.0.1:1/none\"\n";
    let config = fluxbase_server::Config::from_yaml_str(yaml).expect("config");
    let outcome = fluxbase_server::check::run(&config).await;
    assert!(outcome.failed);
    assert!(outcome
        .lines
        .iter()
        .any(|l| l.starts_with("FAIL  database")));
}
