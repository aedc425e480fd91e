//! The start-up refusals of the new keys (TLS, timeouts, database TLS, secrets, logging) and
//! the environment: each refusal names its key or variable.
use super::{Config, ConfigError, SslMode, TlsVersion};
use std::path::PathBuf;

const MINIMAL: &str = "database: { url: \"postgres://u:unit-test-password@127.0.0.1:5432/db\" }\n";

fn parse(extra: &str) -> Result<Config, ConfigError> {
    Config::from_yaml_str_with_vars(&format!("{MINIMAL}{extra}"), &[])
}

fn with_vars(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::from_yaml_str_with_vars(text, &vars)
}

/// The refusal names `key`, in the variant and in the message.
fn refused(text: &str, key: &str) -> String {
    let err = Config::from_yaml_str_with_vars(text, &[]).expect_err(text);
    assert!(
        matches!(&err, ConfigError::Invalid { key: k, .. } if *k == key),
        "{text}: {err}"
    );
    let message = err.to_string();
    assert!(message.contains(key), "{message}");
    message
}

fn refused_extra(extra: &str, key: &str) -> String {
    refused(&format!("{MINIMAL}{extra}"), key)
}

/// A folder with a self-signed certificate and key (and a second, unrelated key).
struct CertDir(PathBuf);

impl CertDir {
    fn new(name: &str) -> CertDir {
        let dir =
            std::env::temp_dir().join(format!("fluxbase-tls-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(dir.join("cert.pem"), issued.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), issued.signing_key.serialize_pem()).unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(dir.join("other-key.pem"), other.serialize_pem()).unwrap();
        std::fs::write(dir.join("garbage.pem"), "not a pem file\n").unwrap();
        CertDir(dir)
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for CertDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn new_defaults() {
    let c = parse("").unwrap();
    assert!(!c.server.tls.enabled);
    assert_eq!(c.server.tls.min_version(), TlsVersion::V1_2);
    assert_eq!(c.server.header_timeout_seconds, 10);
    assert_eq!(c.server.shutdown_timeout_seconds, 30);
    assert_eq!(c.server.max_header_bytes, 65536);
    assert_eq!(c.database.ssl_mode(), SslMode::Prefer);
    assert!(!c.graphql.introspection);
    assert_eq!(c.logging.level, "info");
    assert_eq!(c.inline_secrets, ["database.url"]);
}

#[test]
fn tls_files_are_checked_at_start() {
    let dir = CertDir::new("files");
    let tls = |cert: &str, key: &str, extra: &str| {
        format!("server: {{ tls: {{ enabled: true, cert_file: \"{cert}\", key_file: \"{key}\"{extra} }} }}\n")
    };
    let c = parse(&tls(
        &dir.path("cert.pem"),
        &dir.path("key.pem"),
        ", min_version: 1.3",
    ))
    .unwrap();
    assert!(c.server.tls.enabled);
    assert_eq!(c.server.tls.min_version(), TlsVersion::V1_3);
    let text = refused_extra(
        &tls(&dir.path("missing.pem"), &dir.path("key.pem"), ""),
        "server.tls.cert_file",
    );
    assert!(text.contains("missing.pem"), "{text}");
    refused_extra(
        &tls(&dir.path("cert.pem"), &dir.path("missing.pem"), ""),
        "server.tls.key_file",
    );
    refused_extra(
        &tls(&dir.path("garbage.pem"), &dir.path("key.pem"), ""),
        "server.tls.cert_file",
    );
    refused_extra(
        &tls(&dir.path("cert.pem"), &dir.path("garbage.pem"), ""),
        "server.tls.key_file",
    );
    // A key that is not the certificate's.
    let text = refused_extra(
        &tls(&dir.path("cert.pem"), &dir.path("other-key.pem"), ""),
        "server.tls.key_file",
    );
    assert!(text.contains("does not fit"), "{text}");
    refused_extra(
        "server: { tls: { enabled: true, key_file: /x } }\n",
        "server.tls.cert_file",
    );
    refused_extra(
        "server: { tls: { enabled: true, cert_file: /x } }\n",
        "server.tls.key_file",
    );
    // Disabled: the files are not needed.
    assert!(parse("server: { tls: { enabled: false, cert_file: /nope } }\n").is_ok());
}

#[test]
fn min_version_is_1_2_or_1_3() {
    for version in ["1.1", "1.0", "\"1.1\"", "1.4", "TLSv1.3", "\"\""] {
        let text = refused_extra(
            &format!("server: {{ tls: {{ min_version: {version} }} }}\n"),
            "server.tls.min_version",
        );
        assert!(text.contains("1.2"), "{text}");
    }
    for version in ["1.2", "\"1.2\"", "1.3", "\"1.3\""] {
        assert!(parse(&format!(
            "server: {{ tls: {{ min_version: {version} }} }}\n"
        ))
        .is_ok());
    }
}

#[test]
fn zero_and_out_of_range_limits() {
    for key in [
        "max_body_bytes",
        "request_timeout_seconds",
        "header_timeout_seconds",
        "shutdown_timeout_seconds",
        "max_header_bytes",
    ] {
        refused_extra(
            &format!("server: {{ {key}: 0 }}\n"),
            &format!("server.{key}"),
        );
    }
    refused_extra(
        "server: { max_header_bytes: 8191 }\n",
        "server.max_header_bytes",
    );
    refused_extra(
        "server: { header_timeout_seconds: 86401 }\n",
        "server.header_timeout_seconds",
    );
    refused(
        "database: { url: \"postgres://u@h/db\", max_connections: 0 }",
        "database.max_connections",
    );
}

#[test]
fn database_ssl_mode_rules() {
    let url = |query: &str| format!("database: {{ url: \"postgres://u@db.test/app{query}\"");
    // require / verify-full in the key need the URL to say so too.
    for mode in ["require", "verify-full"] {
        let text = refused(&format!("{}, ssl_mode: {mode} }}", url("")), "database.url");
        assert!(text.contains(&format!("sslmode={mode}")), "{text}");
    }
    let c = Config::from_yaml_str_with_vars(
        &format!("{}, ssl_mode: require }}", url("?sslmode=require")),
        &[],
    )
    .unwrap();
    assert_eq!(c.database.ssl_mode(), SslMode::Require);
    // The URL alone decides when the key is absent, verify-full included.
    let c = Config::from_yaml_str_with_vars(&format!("{} }}", url("?sslmode=verify-full")), &[])
        .unwrap();
    assert_eq!(c.database.ssl_mode(), SslMode::VerifyFull);
    assert!(c.database.connect_config().is_ok());
    // Disagreement, unknown modes.
    refused(
        &format!("{}, ssl_mode: verify-full }}", url("?sslmode=require")),
        "database.ssl_mode",
    );
    refused(
        &format!("{}, ssl_mode: requir }}", url("")),
        "database.ssl_mode",
    );
    refused(&format!("{} }}", url("?sslmode=verify-ca")), "database.url");
    // prefer and disable need nothing in the URL.
    for mode in ["prefer", "disable"] {
        assert!(
            Config::from_yaml_str_with_vars(&format!("{}, ssl_mode: {mode} }}", url("")), &[])
                .is_ok()
        );
    }
    // A root certificate only means something with verify-full, and must be readable.
    refused(
        &format!("{}, ssl_root_cert: /x.pem }}", url("?sslmode=require")),
        "database.ssl_root_cert",
    );
    let text = refused(
        &format!(
            "{}, ssl_root_cert: /nope/ca.pem }}",
            url("?sslmode=verify-full")
        ),
        "database.ssl_root_cert",
    );
    assert!(text.contains("/nope/ca.pem"), "{text}");
    let dir = CertDir::new("db");
    assert!(Config::from_yaml_str_with_vars(
        &format!(
            "{}, ssl_root_cert: \"{}\" }}",
            url("?sslmode=verify-full"),
            dir.path("cert.pem")
        ),
        &[]
    )
    .is_ok());
}

#[test]
fn weak_and_default_secrets_are_refused() {
    for password in ["postgres", "PASSWORD", "changeme", "Fluxbase"] {
        let text = refused(
            &format!("database: {{ url: \"postgres://u:{password}@h/db\" }}"),
            "database.url",
        );
        assert!(text.contains("default"), "{text}");
        assert!(!text.contains(password), "{text}");
    }
    refused(
        "database: { url: \"postgres://u:short1@h/db\" }",
        "database.url",
    );
    refused(
        "database: { url: \"postgres://u@h/db\", password: short1 }",
        "database.password",
    );
    refused(
        "database: { url: \"postgres://u:unit-test-password@h/db\", password: another-long-password }",
        "database.password",
    );
    let c = Config::from_yaml_str_with_vars(
        "database: { url: \"postgres://u@h/db\", password: a-long-enough-one }",
        &[],
    )
    .unwrap();
    assert!(format!("{:?}", c.database).contains("<redacted>"));
    assert!(!format!("{c:?}").contains("a-long-enough-one"));
    let smtp = "auth:\n  smtp: { host: smtp.example.com, port: 587, from: a@example.com, tls: starttls, username: u, password: changeme }\n  password_reset: { base_url: \"https://app.example.com/reset\" }\n";
    refused_extra(smtp, "auth.smtp.password");
}

#[test]
fn logging_level() {
    assert_eq!(
        parse("logging: { level: debug }\n").unwrap().logging.level,
        "debug"
    );
    refused_extra("logging: { level: verbose }\n", "logging.level");
    let err = parse("logging: { lvl: debug }\n").unwrap_err();
    assert!(err.to_string().contains("lvl"), "{err}");
    let err = parse("graphql: { introspecton: true }\n").unwrap_err();
    assert!(err.to_string().contains("introspecton"), "{err}");
}

#[test]
fn environment_overrides_any_key() {
    let c = with_vars(
        MINIMAL,
        &[
            ("FLUXBASE_SERVER_PORT", "9000"),
            ("FLUXBASE_DATABASE_MAX_CONNECTIONS", "5"),
            ("FLUXBASE_SERVER_MAX_BODY_BYTES", "2048"),
            (
                "FLUXBASE_SERVER_CORS_ALLOWED_ORIGINS",
                "https://a.test,https://b.test",
            ),
            ("FLUXBASE_SECURITY_HEADERS_HSTS_MAX_AGE", "600"),
            ("FLUXBASE_GRAPHQL_INTROSPECTION", "true"),
            ("FLUXBASE_LOGGING_LEVEL", "warn"),
            ("FLUXBASE_TEST_STATE", "/tmp/x"),
            ("FLUXBASE_LOG", "debug"),
            ("PATH", "/bin"),
        ],
    )
    .unwrap();
    assert_eq!(c.server.port, 9000);
    assert_eq!(c.database.max_connections, 5);
    assert_eq!(c.server.max_body_bytes, 2048);
    assert_eq!(c.server.cors.allowed_origins.len(), 2);
    assert_eq!(c.security.headers.hsts.as_ref().unwrap().max_age, 600);
    assert!(c.graphql.introspection);
    assert_eq!(c.logging.level, "warn");
    assert!(c.overridden_keys.contains(&"server.port".to_owned()));
    // The file's value loses to the environment.
    let c = with_vars(
        &format!("{MINIMAL}server: {{ port: 1234 }}\n"),
        &[("FLUXBASE_SERVER_PORT", "4321")],
    )
    .unwrap();
    assert_eq!(c.server.port, 4321);
    // Overridden values are validated like the file's, naming the key.
    let err = with_vars(MINIMAL, &[("FLUXBASE_SERVER_MAX_BODY_BYTES", "0")]).unwrap_err();
    assert!(err.to_string().contains("server.max_body_bytes"), "{err}");
    let err = with_vars(MINIMAL, &[("FLUXBASE_SERVER_TLS_MIN_VERSION", "1.1")]).unwrap_err();
    assert!(err.to_string().contains("server.tls.min_version"), "{err}");
    // A FLUXBASE_ variable that matches no key stops the start, naming it.
    for name in [
        "FLUXBASE_SERVER_PROT",
        "FLUXBASE_SEVER_PORT",
        "FLUXBASE_DATABASE_URI",
    ] {
        let err = with_vars(MINIMAL, &[(name, "1")]).unwrap_err();
        assert!(
            matches!(&err, ConfigError::UnknownVariable(v) if v == name),
            "{err}"
        );
        assert!(err.to_string().contains(name));
    }
    // The same answers with and without an override: YAML merge keys are not supported
    // (refused as an unknown key either way).
    let merged =
        format!("{MINIMAL}server: {{ <<: {{ host: 0.0.0.0, port: 1234 }}, max_body_bytes: 10 }}\n");
    for vars in [&[][..], &[("FLUXBASE_SERVER_PORT", "4321")][..]] {
        let err = with_vars(&merged, vars).unwrap_err();
        assert!(err.to_string().contains("<<"), "{err}");
    }
    let err = with_vars(MINIMAL, &[("FLUXBASE_SERVER_PORT", "http")]).unwrap_err();
    assert!(err.to_string().contains("FLUXBASE_SERVER_PORT"), "{err}");
}

#[test]
fn file_secrets() {
    let dir = CertDir::new("secrets");
    let secret = dir.0.join("db_password");
    std::fs::write(&secret, "a-secret-from-a-file\n").unwrap();
    let secret = secret.display().to_string();
    // ${VAR} falls back to VAR_FILE.
    let text = "database: { url: \"postgres://u:${DB_PASSWORD}@h/db\" }";
    let c = with_vars(text, &[("DB_PASSWORD_FILE", &secret)]).unwrap();
    assert_eq!(c.database.url, "postgres://u:a-secret-from-a-file@h/db");
    assert!(c.inline_secrets.is_empty());
    // VAR itself wins over VAR_FILE.
    let c = with_vars(
        text,
        &[
            ("DB_PASSWORD", "from-the-variable!"),
            ("DB_PASSWORD_FILE", &secret),
        ],
    )
    .unwrap();
    assert!(c.database.url.contains("from-the-variable!"));
    let err = with_vars(text, &[("DB_PASSWORD_FILE", "/nope/secret")]).unwrap_err();
    assert!(err.to_string().contains("DB_PASSWORD_FILE"), "{err}");
    assert!(err.to_string().contains("/nope/secret"), "{err}");
    // FLUXBASE_<KEY>_FILE sets a key from a file.
    let c = with_vars(
        "database: { url: \"postgres://u@h/db\" }",
        &[("FLUXBASE_DATABASE_PASSWORD_FILE", &secret)],
    )
    .unwrap();
    assert_eq!(c.database.password.as_deref(), Some("a-secret-from-a-file"));
    assert!(c.inline_secrets.is_empty());
    // A secret overridden from the environment is not inline, even if the file has one.
    let c = with_vars(
        "database: { url: \"postgres://u@h/db\", password: literal-in-the-file }",
        &[("FLUXBASE_DATABASE_PASSWORD", "from-the-environment")],
    )
    .unwrap();
    assert_eq!(c.database.password.as_deref(), Some("from-the-environment"));
    assert!(c.inline_secrets.is_empty());
}

#[test]
fn the_example_documents_real_keys() {
    // Every key of fluxbase.example.yaml parses and validates (with its secrets and file
    // paths supplied from the environment).
    let dir = CertDir::new("example");
    let text = include_str!("../../../fluxbase.example.yaml");
    let c = with_vars(
        text,
        &[
            ("FLUXBASE_DB_PASSWORD", "example-db-password"),
            ("SMTP_PASSWORD", "example-smtp-password"),
            ("FLUXBASE_DATABASE_SSL_ROOT_CERT", &dir.path("cert.pem")),
        ],
    )
    .unwrap();
    assert_eq!(c.database.ssl_mode(), SslMode::VerifyFull);
    assert!(c.inline_secrets.is_empty(), "{:?}", c.inline_secrets);
    assert!(c.security.headers.hsts.is_some());
}
