//! `database.ssl_mode` against real clusters: a throwaway cluster with `ssl = on` and a
//! certificate from a test CA (the whole server over `verify-full`, `require`, `disable`, a
//! wrong CA refused), and `require` against the ordinary test cluster, which has no TLS.
use fluxbase_server::Config;
use fluxbase_tests::tls::TestCerts;
use fluxbase_tests::{spawn_with_state_until, Cluster};
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;

const PGBIN: &str = "/usr/lib/postgresql/15/bin";
const SERVER_PASSWORD: &str = "tls-cluster-server-password";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A PostgreSQL program, as the `postgres` OS user when we are root.
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

fn give_to_postgres(path: &std::path::Path) {
    if is_root() {
        let ok = Command::new("chown")
            .args(["postgres", path.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

/// A cluster with TLS on, the extension preloaded and the server's login role; stopped and
/// deleted when dropped.
struct TlsCluster {
    root: PathBuf,
    port: u16,
}

impl TlsCluster {
    async fn start(certs: &TestCerts) -> TlsCluster {
        let root = PathBuf::from(format!(
            "/var/tmp/fluxbase-tls-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&root).unwrap();
        give_to_postgres(&root);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = TlsCluster { root, port };
        let data = cluster.root.join("data");
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
                "--auth-host=scram-sha-256",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The key must belong to the cluster's owner and be private (PostgreSQL checks).
        for name in ["server.crt", "server.key"] {
            let to = cluster.root.join(name);
            std::fs::copy(certs.dir.join(name), &to).unwrap();
            give_to_postgres(&to);
            let mode = if name.ends_with(".key") { 0o600 } else { 0o644 };
            std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .unwrap();
        }
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n\
             shared_preload_libraries = 'fluxbase,pgaudit'\n\
             fluxbase.jwt_secret = 'tls-test-secret-that-is-at-least-32-bytes-long'\n\
             fluxbase.mfa_encryption_key = 'tls-test-mfa-key-that-is-at-least-32-bytes-long'\n\
             ssl = on\nssl_cert_file = '{root}/server.crt'\nssl_key_file = '{root}/server.key'\n",
            root = cluster.root.display()
        );
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        std::io::Write::write_all(&mut file, conf.as_bytes()).unwrap();
        let log = cluster.root.join("postgres.log");
        let out = pg_command(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "the TLS cluster did not start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let admin = cluster.admin("postgres").await;
        admin.batch_execute("CREATE DATABASE app").await.unwrap();
        let app = cluster.admin("app").await;
        app.batch_execute(&format!(
            "CREATE EXTENSION fluxbase;
             CREATE ROLE fluxbase_server LOGIN PASSWORD '{SERVER_PASSWORD}' IN ROLE fluxbase_authenticator;"
        ))
        .await
        .expect("extension and login role");
        cluster
    }

    async fn admin(&self, db: &str) -> tokio_postgres::Client {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host_path(&self.root)
            .port(self.port)
            .user("postgres")
            .dbname(db);
        let (client, conn) = cfg
            .connect(tokio_postgres::NoTls)
            .await
            .expect("superuser connection to the TLS cluster");
        tokio::spawn(conn);
        client
    }

    /// The server's config: `host` and `sslmode` in the URL, `extra` database keys.
    fn config(&self, host: &str, mode: &str, extra: &str) -> Result<Config, String> {
        let yaml = format!(
            "server: {{ host: 127.0.0.1, port: 0 }}\ndatabase:\n  url: \"postgres://fluxbase_server:${{PW}}@{host}:{}/app?sslmode={mode}\"\n  max_connections: 2\n{extra}",
            self.port
        );
        Config::from_yaml_str_with_vars(&yaml, &[("PW".to_owned(), SERVER_PASSWORD.to_owned())])
            .map_err(|e| e.to_string())
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let data = self.root.join("data");
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

/// Whether a pooled connection of `config` is encrypted (as PostgreSQL sees it).
async fn pooled_connection_is_encrypted(config: &Config) -> Result<bool, String> {
    let pool =
        fluxbase_server::db::create_pool(&config.database, std::time::Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
    let client = pool.get().await.map_err(|e| format!("{e:?}"))?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test]
async fn ssl_modes_against_a_tls_cluster() {
    let certs = TestCerts::new();
    let cluster = TlsCluster::start(&certs).await;
    let ca = format!("  ssl_root_cert: \"{}\"\n", certs.path("ca.pem"));

    // verify-full with the CA: the whole server runs over TLS.
    let config = cluster
        .config(
            "127.0.0.1",
            "verify-full",
            &format!("  ssl_mode: verify-full\n{ca}"),
        )
        .expect("config");
    let state = fluxbase_server::build_state(&config)
        .await
        .expect("the server starts over verify-full");
    let (base, _server) = spawn_with_state_until(state, std::future::pending()).await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = http
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"email": "tls@example.com", "password": "Tls-password-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let admin = cluster.admin("app").await;
    let row = admin
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl)
               FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
              WHERE a.usename = 'fluxbase_server'",
            &[],
        )
        .await
        .unwrap();
    let (all, encrypted): (i64, i64) = (row.get(0), row.get(1));
    assert!(all > 0, "no server connection seen");
    assert_eq!(all, encrypted, "a server connection is not encrypted");
    let outcome = fluxbase_server::check::run(&config).await;
    // pgaudit is preloaded here (seen from the server's role, which cannot read
    // shared_preload_libraries itself).
    for item in [
        "PASS  database_tls",
        "PASS  database_connection",
        "PASS  pgaudit",
    ] {
        assert!(
            outcome.lines.iter().any(|l| l.starts_with(item)),
            "{item}: {:#?}",
            outcome.lines
        );
    }

    // The certificate names localhost too.
    let config = cluster
        .config("localhost", "verify-full", &ca)
        .expect("config");
    assert_eq!(pooled_connection_is_encrypted(&config).await, Ok(true));

    // require (no verification), and disable.
    let config = cluster.config("127.0.0.1", "require", "").expect("config");
    assert_eq!(pooled_connection_is_encrypted(&config).await, Ok(true));
    let config = cluster.config("127.0.0.1", "disable", "").expect("config");
    assert_eq!(pooled_connection_is_encrypted(&config).await, Ok(false));

    // verify-full against another CA: refused, saying why.
    let other = TestCerts::new();
    let config = cluster
        .config(
            "127.0.0.1",
            "verify-full",
            &format!("  ssl_root_cert: \"{}\"\n", other.path("ca.pem")),
        )
        .expect("config");
    let err = pooled_connection_is_encrypted(&config)
        .await
        .expect_err("a certificate from an unknown CA must be refused");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let err = match fluxbase_server::build_state(&config).await {
        Ok(_) => panic!("the server started against an unverifiable certificate"),
        Err(e) => e.to_string(),
    };
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

#[tokio::test]
async fn require_against_a_database_without_tls_fails_clearly() {
    let cluster = Cluster::from_env();
    let yaml = format!(
        "database:\n  url: \"postgres://fluxbase_server:${{PW}}@127.0.0.1:{}/postgres?sslmode=require\"\n  ssl_mode: require\n",
        cluster.port
    );
    let config = Config::from_yaml_str_with_vars(
        &yaml,
        &[("PW".to_owned(), cluster.server_password.clone())],
    )
    .expect("config");
    let err = match fluxbase_server::build_state(&config).await {
        Ok(_) => panic!("the server started in plain text although ssl_mode is require"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("TLS"), "{err}");
    // prefer falls back to plain text on the same cluster.
    let yaml = yaml
        .replace("sslmode=require", "sslmode=prefer")
        .replace("ssl_mode: require", "ssl_mode: prefer");
    let config = Config::from_yaml_str_with_vars(
        &yaml,
        &[("PW".to_owned(), cluster.server_password.clone())],
    )
    .expect("config");
    assert_eq!(pooled_connection_is_encrypted(&config).await, Ok(false));
}
