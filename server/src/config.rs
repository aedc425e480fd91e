//! `fluxbase.yaml`: loading, `${VAR}` interpolation, environment overrides and validation.
//!
//! Why strict: a typo in a security setting that silently falls back to a default is worse
//! than a server that refuses to start. Every struct denies unknown fields, and every refusal
//! names the offending key, so the operator knows what to fix.
//!
//! Interpolation is textual (before YAML parsing), so `${VAR}` works for any value, numbers
//! included. An unset variable falls back to the file `VAR_FILE` names (Docker and Kubernetes
//! secrets), else is an error naming it; `$${` writes a literal `${`.
//!
//! Then `FLUXBASE_<SECTION>_<KEY>[_FILE]` variables override single keys ([`env`]), the result
//! is parsed (unknown keys refused) and validated section by section; [`secrets`] refuses
//! weak passwords and records the ones written literally, for `fluxbase check`.
use serde::Deserialize;
use std::path::Path;

pub mod auth;
pub mod database;
pub mod edge;
pub mod env;
pub mod logging;
pub mod monitoring;
pub mod proxies;
pub mod rate_limiting;
pub mod secrets;
pub mod sections;
pub mod transport;
pub use auth::{AuthConfig, PasswordResetConfig, SmtpConfig, SmtpTls};
pub use database::{DatabaseConfig, SslMode};
pub use edge::{CorsConfig, HstsConfig, SecurityConfig, SecurityHeadersConfig};
pub use logging::LoggingConfig;
pub use monitoring::MonitoringConfig;
pub use proxies::{ForwardedHeader, TrustedProxies};
pub use rate_limiting::{RateLimitConfig, RateLimitStore};
pub use sections::GraphqlConfig;
pub use transport::{TlsConfig, TlsVersion};

/// Schemas that can never be exposed through the API, whatever the configuration says:
/// they hold accounts, secrets-adjacent internals or the catalogs.
const FORBIDDEN_SCHEMAS: [&str; 4] = ["auth", "fluxbase", "pg_catalog", "information_schema"];

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("config refers to the environment variable {0}, which is not set")]
    UnsetVariable(String),
    #[error("config has a malformed ${{...}} reference: {0}")]
    BadInterpolation(String),
    #[error("invalid config: {0}")]
    Parse(String),
    #[error("invalid config key {key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("the environment variable {0} matches no config key (FLUXBASE_<SECTION>_<KEY>[_FILE] with a key of fluxbase.example.yaml, e.g. FLUXBASE_SERVER_PORT; see the README for the variables that are not config)")]
    UnknownVariable(String),
    #[error("the environment variable {variable} {message}")]
    BadVariable { variable: String, message: String },
    #[error(
        "the environment variable {variable} names the file {path}, which cannot be read: {source}"
    )]
    SecretFile {
        variable: String,
        path: String,
        source: std::io::Error,
    },
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub graphql: GraphqlConfig,
    #[serde(default)]
    pub security: SecurityConfig,
    #[serde(default)]
    pub rate_limiting: RateLimitConfig,
    #[serde(default)]
    pub monitoring: MonitoringConfig,
    #[serde(default)]
    pub logging: LoggingConfig,
    /// The secret keys written literally in the file rather than through `${VAR}`, `_FILE` or
    /// an environment override (`fluxbase check` fails on them).
    #[serde(skip)]
    pub inline_secrets: Vec<&'static str>,
    /// The keys set from the environment (`FLUXBASE_…`), dotted, for the start-up log.
    #[serde(skip)]
    pub overridden_keys: Vec<String>,
}

/// Where the HTTP server listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_host")]
    pub host: String,
    /// 0 picks a free port (used by tests).
    #[serde(default = "default_port")]
    pub port: u16,
    /// HTTPS on the same port; off by default.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Cross-origin access; none by default.
    #[serde(default)]
    pub cors: CorsConfig,
    /// The largest request body accepted; larger ones get 413 `PAYLOAD_TOO_LARGE`.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// The largest request head (request line and headers); larger ones get 431 from hyper.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// How long one request may take, body reading included; then 503 `REQUEST_TIMEOUT`.
    #[serde(default = "default_request_timeout_seconds")]
    pub request_timeout_seconds: u64,
    /// How long a client may take to send a request head (and to finish a TLS handshake);
    /// then the connection is closed. Keeps slow-header clients from holding connections.
    #[serde(default = "default_header_timeout_seconds")]
    pub header_timeout_seconds: u64,
    /// On SIGTERM/SIGINT, how long in-flight requests may still finish before the server
    /// closes their connections.
    #[serde(default = "default_shutdown_timeout_seconds")]
    pub shutdown_timeout_seconds: u64,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` name the client (CIDR list); none by
    /// default, so the TCP peer is the client.
    #[serde(default)]
    pub trusted_proxies: TrustedProxies,
    /// Which header the trusted proxies write: `x-forwarded-for` (default) or `forwarded`;
    /// the other one is ignored (see `config/proxies.rs`).
    #[serde(default)]
    pub forwarded_header: ForwardedHeader,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: default_host(),
            port: default_port(),
            tls: TlsConfig::default(),
            cors: CorsConfig::default(),
            max_body_bytes: default_max_body_bytes(),
            max_header_bytes: default_max_header_bytes(),
            request_timeout_seconds: default_request_timeout_seconds(),
            header_timeout_seconds: default_header_timeout_seconds(),
            shutdown_timeout_seconds: default_shutdown_timeout_seconds(),
            trusted_proxies: TrustedProxies::default(),
            forwarded_header: ForwardedHeader::default(),
        }
    }
}

/// The REST API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Schemas whose tables and views are reachable under `/api/v1/tables`. The first is the
    /// default for `/api/v1/tables/{table}`.
    #[serde(default = "default_exposed_schemas")]
    pub exposed_schemas: Vec<String>,
    /// The most rows one GET returns, whatever `limit` asks for; also caps every embedded
    /// array.
    #[serde(default = "default_max_rows")]
    pub max_rows: u64,
    /// Refuse to expose relations whose rows RLS cannot protect (tables with RLS off, views
    /// that are not `security_invoker`, materialized views, foreign tables). Each is logged
    /// either way.
    #[serde(default = "default_strict_rls")]
    pub strict_rls: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            exposed_schemas: default_exposed_schemas(),
            max_rows: default_max_rows(),
            strict_rls: default_strict_rls(),
        }
    }
}

fn default_host() -> String {
    "127.0.0.1".to_owned()
}
fn default_port() -> u16 {
    8080
}
fn default_max_body_bytes() -> usize {
    1024 * 1024
}
fn default_max_header_bytes() -> usize {
    64 * 1024
}
fn default_request_timeout_seconds() -> u64 {
    30
}
fn default_header_timeout_seconds() -> u64 {
    10
}
fn default_shutdown_timeout_seconds() -> u64 {
    30
}
fn default_exposed_schemas() -> Vec<String> {
    vec!["public".to_owned()]
}
fn default_max_rows() -> u64 {
    1000
}
fn default_strict_rls() -> bool {
    true
}

/// hyper's smallest read buffer (it refuses less) and a ceiling far above any real client.
const MIN_HEADER_BYTES: usize = 8192;
const MAX_HEADER_BYTES: usize = 1024 * 1024;

/// Whether a schema may never be exposed (also checked when the schema cache loads).
pub fn is_forbidden_schema(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    FORBIDDEN_SCHEMAS.contains(&lower.as_str()) || lower.starts_with("pg_")
}

/// The process environment as (name, value) pairs (variables that are not UTF-8 are not
/// ours and are skipped).
fn process_vars() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

impl Config {
    /// Reads, interpolates, applies the environment overrides, parses and validates a file.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml_str(&text)
    }

    /// As [`Config::load`] for a text, with the process environment.
    pub fn from_yaml_str(text: &str) -> Result<Config, ConfigError> {
        Self::from_yaml_str_with_vars(text, &process_vars())
    }

    /// As [`Config::from_yaml_str`] with an explicit environment (tests use this instead of
    /// mutating the process environment, which races between test threads).
    pub fn from_yaml_str_with_vars(
        text: &str,
        vars: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let lookup = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        Self::build(text, lookup, vars)
    }

    /// Interpolation from `lookup` only, no environment overrides.
    pub fn from_yaml_str_with_env(
        text: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Self::build(text, lookup, &[])
    }

    fn build(
        text: &str,
        lookup: impl Fn(&str) -> Option<String>,
        vars: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let overrides = env::overrides(text, vars)?;
        let interpolated = interpolate(text, lookup)?;
        let parse_error = |e: serde_norway::Error| ConfigError::Parse(e.to_string());
        let text_to_parse = if overrides.is_empty() {
            interpolated
        } else {
            // Overrides are applied to the parsed tree, which is then written back as YAML
            // and parsed like a file: the same lenient scalars and the same key paths in
            // error messages as without overrides.
            let mut root: serde_norway::Value =
                serde_norway::from_str(&interpolated).map_err(parse_error)?;
            for ov in &overrides {
                env::apply(&mut root, ov)?;
            }
            serde_norway::to_string(&root).map_err(parse_error)?
        };
        let mut config: Config = serde_norway::from_str(&text_to_parse).map_err(parse_error)?;
        config.overridden_keys = overrides.iter().map(|o| o.key.dotted()).collect();
        config.inline_secrets = secrets::inline_secrets(text)
            .into_iter()
            .filter(|k| !config.overridden_keys.iter().any(|o| o == k))
            .collect();
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.server.host.trim().is_empty() {
            return invalid("server.host", "must not be empty");
        }
        if self.server.max_body_bytes == 0 {
            return invalid("server.max_body_bytes", "must be greater than 0");
        }
        if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&self.server.max_header_bytes) {
            return invalid(
                "server.max_header_bytes",
                format!("must be from {MIN_HEADER_BYTES} to {MAX_HEADER_BYTES}"),
            );
        }
        // Far beyond any sane request; also keeps the Duration arithmetic trivially safe.
        for (key, value) in [
            (
                "server.request_timeout_seconds",
                self.server.request_timeout_seconds,
            ),
            (
                "server.header_timeout_seconds",
                self.server.header_timeout_seconds,
            ),
            (
                "server.shutdown_timeout_seconds",
                self.server.shutdown_timeout_seconds,
            ),
        ] {
            if value == 0 {
                return invalid(key, "must be greater than 0");
            }
            if value > 86_400 {
                return invalid(key, "must be at most 86400 (one day)");
            }
        }
        self.server.tls.validate()?;
        self.server.cors.validate()?;
        self.security.headers.validate()?;
        self.database.validate()?;
        if self.api.max_rows == 0 {
            return invalid("api.max_rows", "must be greater than 0");
        }
        if self.api.exposed_schemas.is_empty() {
            return invalid("api.exposed_schemas", "must name at least one schema");
        }
        for (i, schema) in self.api.exposed_schemas.iter().enumerate() {
            if schema.is_empty() {
                return invalid("api.exposed_schemas", "contains an empty schema name");
            }
            if is_forbidden_schema(schema) {
                return invalid(
                    "api.exposed_schemas",
                    format!("the schema \"{schema}\" can never be exposed (auth, fluxbase, pg_catalog, information_schema and pg_* are internal)"),
                );
            }
            if self.api.exposed_schemas[..i].contains(schema) {
                return invalid("api.exposed_schemas", format!("lists \"{schema}\" twice"));
            }
        }
        self.rate_limiting.validate()?;
        self.monitoring.validate(self.server.port)?;
        self.logging.validate()?;
        self.auth.validate()
    }

    /// The schema `/api/v1/tables/{table}` refers to.
    pub fn default_schema(&self) -> &str {
        // validate() guarantees at least one.
        self.api
            .exposed_schemas
            .first()
            .map(String::as_str)
            .unwrap_or("public")
    }
}

fn invalid(key: &'static str, message: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid {
        key,
        message: message.into(),
    })
}

/// Replaces every `${NAME}` with the variable's value; `$${` is a literal `${`. An unset
/// `NAME` falls back to the content of the file `NAME_FILE` names (Docker and Kubernetes
/// secrets), without its trailing line break.
fn interpolate(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(escaped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
        } else if let Some(body) = after.strip_prefix("${") {
            let end = body.find('}').ok_or_else(|| {
                ConfigError::BadInterpolation("a ${ without its closing }".to_owned())
            })?;
            let name = &body[..end];
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(ConfigError::BadInterpolation(format!(
                    "\"${{{name}}}\" is not a variable name (letters, digits and _)"
                )));
            }
            let value = match lookup(name) {
                Some(value) => value,
                None => {
                    let file_var = format!("{name}_FILE");
                    match lookup(&file_var) {
                        Some(path) => env::read_secret_file(&file_var, &path)?,
                        None => return Err(ConfigError::UnsetVariable(name.to_owned())),
                    }
                }
            };
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod validation_tests;

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "database: { url: \"postgres://u:unit-test-password@127.0.0.1:5432/db\" }\n";

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_yaml_str_with_env(text, env(&[]))
    }

    #[test]
    fn defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.server.host, "127.0.0.1");
        assert_eq!(c.server.port, 8080);
        assert_eq!(c.database.max_connections, 10);
        assert_eq!(c.api.exposed_schemas, vec!["public".to_owned()]);
        assert_eq!(c.api.max_rows, 1000);
        assert!(c.api.strict_rls);
        assert_eq!(c.default_schema(), "public");
    }

    #[test]
    fn full_file_with_interpolation() {
        let text = r#"
server: { host: 0.0.0.0, port: ${PORT} }
database:
  url: "postgres://fluxbase_server:${FLUXBASE_DB_PASSWORD}@127.0.0.1:5432/fluxbase"
  max_connections: 4
api: { exposed_schemas: ["app", "public"], max_rows: 50, strict_rls: false }
"#;
        let c = Config::from_yaml_str_with_env(
            text,
            env(&[("PORT", "0"), ("FLUXBASE_DB_PASSWORD", "s3cret-s3cret")]),
        )
        .unwrap();
        assert_eq!(c.server.host, "0.0.0.0");
        assert_eq!(c.server.port, 0);
        assert_eq!(
            c.database.url,
            "postgres://fluxbase_server:s3cret-s3cret@127.0.0.1:5432/fluxbase"
        );
        assert_eq!(c.database.max_connections, 4);
        assert_eq!(c.default_schema(), "app");
        assert_eq!(c.api.max_rows, 50);
        assert!(!c.api.strict_rls);
        // The password never shows in Debug output (which ends up in logs).
        assert!(!format!("{c:?}").contains("s3cret-s3cret"));
    }

    #[test]
    fn unset_variable_is_named() {
        let err = parse("database: { url: \"postgres://u:${NOPE_NOT_SET}@h/db\" }").unwrap_err();
        assert!(matches!(&err, ConfigError::UnsetVariable(v) if v == "NOPE_NOT_SET"));
        assert!(err.to_string().contains("NOPE_NOT_SET"));
    }

    #[test]
    fn malformed_references_and_escapes() {
        assert!(matches!(
            parse("database: { url: \"${UNCLOSED\" }"),
            Err(ConfigError::BadInterpolation(_))
        ));
        assert!(matches!(
            parse("database: { url: \"${a-b}\" }"),
            Err(ConfigError::BadInterpolation(_))
        ));
        assert!(matches!(
            parse("database: { url: \"${}\" }"),
            Err(ConfigError::BadInterpolation(_))
        ));
        assert_eq!(
            interpolate("a $${X} $5 $", env(&[])).unwrap(),
            "a ${X} $5 $"
        );
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err =
            parse("server: { prot: 80 }\ndatabase: { url: \"postgres://u@h/db\" }").unwrap_err();
        assert!(matches!(err, ConfigError::Parse(_)));
        assert!(err.to_string().contains("prot"), "{err}");
        let err = parse("databse: { url: \"postgres://u@h/db\" }").unwrap_err();
        assert!(err.to_string().contains("databse"), "{err}");
        let err = parse("database: { url: \"postgres://u@h/db\", max_conections: 3 }").unwrap_err();
        assert!(err.to_string().contains("max_conections"), "{err}");
    }

    #[test]
    fn database_url_is_required() {
        let err = parse("server: { port: 1 }").unwrap_err();
        assert!(err.to_string().contains("database"), "{err}");
    }

    #[test]
    fn forbidden_schemas() {
        for schema in [
            "auth",
            "fluxbase",
            "pg_catalog",
            "information_schema",
            "pg_toast",
            "pg_temp_1",
            "AUTH",
        ] {
            let text = format!("{MINIMAL}api: {{ exposed_schemas: [\"public\", \"{schema}\"] }}\n");
            let err = parse(&text).unwrap_err();
            assert!(
                matches!(
                    &err,
                    ConfigError::Invalid {
                        key: "api.exposed_schemas",
                        ..
                    }
                ),
                "{schema}: {err}"
            );
            assert!(err.to_string().contains("api.exposed_schemas"));
        }
        assert!(parse(&format!("{MINIMAL}api: {{ exposed_schemas: [] }}\n")).is_err());
        assert!(parse(&format!("{MINIMAL}api: {{ exposed_schemas: [a, a] }}\n")).is_err());
        assert!(parse(&format!(
            "{MINIMAL}api: {{ exposed_schemas: [authors, pgx] }}\n"
        ))
        .is_ok());
    }

    #[test]
    fn numeric_limits() {
        let err =
            parse("database: { url: \"postgres://u@h/db\", max_connections: 0 }").unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                key: "database.max_connections",
                ..
            }
        ));
        let err = parse(&format!("{MINIMAL}api: {{ max_rows: 0 }}\n")).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                key: "api.max_rows",
                ..
            }
        ));
        let err = parse(&format!("{MINIMAL}server: {{ port: 70000 }}\n")).unwrap_err();
        assert!(matches!(err, ConfigError::Parse(_)));
        assert!(parse(&format!("{MINIMAL}server: {{ port: 0 }}\n")).is_ok());
    }

    #[test]
    fn bad_database_url() {
        let err = parse("database: { url: \"postgres://u:hunter2@h:notaport/db\" }").unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    key: "database.url",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn load_reads_a_file() {
        let dir = std::env::temp_dir().join(format!("fluxbase-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fluxbase.yaml");
        std::fs::write(&path, MINIMAL).unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.database.max_connections, 10);
        let err = Config::load(dir.join("missing.yaml")).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
