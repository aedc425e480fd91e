//! Configuration from the environment against a real cluster: the database password from a
//! `_FILE` secret (both ways: `${VAR}` falling back to `VAR_FILE`, and
//! `FLUXBASE_DATABASE_PASSWORD_FILE`), keys the file does not mention set by
//! `FLUXBASE_<SECTION>_<KEY>`, and `fluxbase check` seeing that no secret is inline.
use fluxbase_server::Config;
use fluxbase_tests::{spawn_with_state_until, Cluster};
use serde_json::json;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn fresh_db(cluster: &Cluster) -> String {
    let db = format!("t_{}", uuid::Uuid::new_v4().simple());
    cluster
        .admin("postgres")
        .await
        .batch_execute(&format!("CREATE DATABASE {db} TEMPLATE fluxbase_template"))
        .await
        .expect("clone the template database");
    db
}

fn secret_file(content: &str) -> std::path::PathBuf {
    let path =
        std::env::temp_dir().join(format!("fluxbase-secret-{}", uuid::Uuid::new_v4().simple()));
    // As Docker writes them: the value and a line break.
    std::fs::write(&path, format!("{content}\n")).unwrap();
    path
}

#[tokio::test]
async fn the_password_from_a_file_and_overrides_from_the_environment() {
    let cluster = Cluster::from_env();
    let db = fresh_db(&cluster).await;
    let secret = secret_file(&cluster.server_password);
    let audit_file = std::env::temp_dir().join(format!("fluxbase-audit-{db}.log"));
    // No password and no body limit in the file; both come from the environment, and so do
    // the audit log and a rate limit (`fluxbase check` fails while the audit log is off).
    let yaml = format!(
        "server:\n  host: 127.0.0.1\n  port: 0\ndatabase:\n  url: \"postgres://fluxbase_server@127.0.0.1:{}/{db}\"\n",
        cluster.port
    );
    let config = Config::from_yaml_str_with_vars(
        &yaml,
        &vars(&[
            ("FLUXBASE_DATABASE_PASSWORD_FILE", secret.to_str().unwrap()),
            ("FLUXBASE_SERVER_MAX_BODY_BYTES", "200"),
            ("FLUXBASE_DATABASE_MAX_CONNECTIONS", "2"),
            ("FLUXBASE_TEST_STATE", "ignored: not config"),
            ("FLUXBASE_LOGGING_AUDIT_ENABLED", "true"),
            (
                "FLUXBASE_LOGGING_AUDIT_LOG_FILE",
                audit_file.to_str().unwrap(),
            ),
            ("FLUXBASE_RATE_LIMITING_PER_MINUTE", "100"),
        ]),
    )
    .expect("config");
    assert_eq!(config.server.max_body_bytes, 200);
    assert_eq!(config.database.max_connections, 2);
    assert!(config.logging.audit_enabled);
    assert_eq!(
        config.logging.audit_log_file.as_deref(),
        Some(audit_file.as_path())
    );
    assert_eq!(config.rate_limiting.per_minute, 100);
    assert!(config.inline_secrets.is_empty());
    let state = fluxbase_server::build_state(&config)
        .await
        .expect("the server logs in with the password from the file");
    let (base, _server) = spawn_with_state_until(state, std::future::pending()).await;
    let http = reqwest::Client::new();
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let r = http
        .post(format!("{base}/api/v1/auth/signin"))
        .json(&json!({"email": "a@example.com", "password": "x".repeat(300)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413, "FLUXBASE_SERVER_MAX_BODY_BYTES applies");

    // ${VAR} with only VAR_FILE set, and fluxbase check: the secrets item passes.
    let yaml = format!(
        "server:\n  host: 127.0.0.1\n  port: 0\ndatabase:\n  url: \"postgres://fluxbase_server:${{DB_PASSWORD}}@127.0.0.1:{}/{db}\"\nlogging: {{ audit_enabled: true, audit_log_file: \"{}\" }}\n",
        cluster.port,
        audit_file.display()
    );
    let config = Config::from_yaml_str_with_vars(
        &yaml,
        &vars(&[("DB_PASSWORD_FILE", secret.to_str().unwrap())]),
    )
    .expect("config");
    let outcome = fluxbase_server::check::run(&config).await;
    assert!(
        outcome.lines.iter().any(|l| l.starts_with("PASS  secrets")),
        "{:#?}",
        outcome.lines
    );
    assert!(
        outcome
            .lines
            .iter()
            .any(|l| l.starts_with("PASS  password_policy")),
        "{:#?}",
        outcome.lines
    );
    assert!(
        outcome
            .lines
            .iter()
            .any(|l| l.starts_with("PASS  admin_2fa")),
        "{:#?}",
        outcome.lines
    );
    // The test cluster does not preload pgaudit.
    assert!(
        outcome.lines.iter().any(|l| l.starts_with("WARN  pgaudit")),
        "{:#?}",
        outcome.lines
    );
    assert!(!outcome.failed, "{:#?}", outcome.lines);

    // The same file with the password literally in it: check fails, naming the key only.
    let literal = format!(
        "database:\n  url: \"postgres://fluxbase_server:{}@127.0.0.1:{}/{db}\"\n",
        cluster.server_password, cluster.port
    );
    let config = Config::from_yaml_str_with_vars(&literal, &[]).expect("config");
    let outcome = fluxbase_server::check::run(&config).await;
    assert!(outcome.failed);
    let line = outcome
        .lines
        .iter()
        .find(|l| l.starts_with("FAIL  secrets"))
        .expect("a secrets failure");
    assert!(line.contains("database.url"), "{line}");
    assert!(!line.contains(&cluster.server_password), "{line}");
    let _ = std::fs::remove_file(secret);
}

#[tokio::test]
async fn a_weak_password_in_auth_settings_fails_the_check() {
    let cluster = Cluster::from_env();
    let db = fresh_db(&cluster).await;
    let yaml = format!(
        "database:\n  url: \"postgres://fluxbase_server:${{PW}}@127.0.0.1:{}/{db}\"\nauth:\n  password_min_length: 6\n  require_2fa_for_admins: false\n",
        cluster.port
    );
    let config = Config::from_yaml_str_with_vars(&yaml, &vars(&[("PW", &cluster.server_password)]))
        .expect("config");
    // Before any server ran with it (the database still holds the strong defaults): the
    // check judges what serve will write at start, the yaml's auth: keys (found by a reviewer:
    // read from the database alone, this config passed as a deployment gate).
    let outcome = fluxbase_server::check::run(&config).await;
    assert!(outcome.failed);
    for item in ["FAIL  password_policy", "FAIL  admin_2fa"] {
        assert!(
            outcome.lines.iter().any(|l| l.starts_with(item)),
            "{item}: {:#?}",
            outcome.lines
        );
    }
}
