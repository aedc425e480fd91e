//! `fluxbase check`: the pre-production checklist as a command that can gate a deployment.
//!
//! The configuration's items ([`config_checks`]: TLS, database TLS, secrets written in the
//! file, CORS, security headers, GraphQL introspection), then the live database's, as the
//! server's own login role: the connection's actual encryption, the password policy and 2FA
//! rule in `auth.settings`, whether pgaudit is loaded, and the extension's security report
//! (`fluxbase.security_report`) over the configured exposed schemas, plus whether the API
//! refuses unprotected relations (`api.strict_rls`). Each item prints as `PASS`, `WARN` or
//! `FAIL` with its reason; any `FAIL` makes the exit code non-zero. Warnings (likely
//! mistakes, or choices that are fine only in some deployments, such as plain HTTP on
//! loopback behind a proxy) are printed but do not fail.
//!
//! The edge items: rate limiting on (FAIL when off), the audit log on and its file writable
//! (FAIL), the metrics listener off the public port (FAIL when it shares it; WARN when it
//! listens on every interface or is off).
use crate::config::SslMode;
use crate::security_report::{fetch_security_report, Finding};
use crate::{db, Config};

/// The shortest `password_min_length` that passes (the security guide's), and the one below
/// which the check fails.
const GOOD_PASSWORD_LENGTH: i64 = 12;
const WEAK_PASSWORD_LENGTH: i64 = 8;

/// What `fluxbase check` found: the printed lines and whether anything failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub lines: Vec<String>,
    pub failed: bool,
}

/// Runs the checks against the configured database as the server's own login role.
/// A database that cannot be reached or queried is itself a failure.
pub async fn run(config: &Config) -> CheckOutcome {
    let mut out = CheckOutcome {
        lines: Vec::new(),
        failed: false,
    };
    config_checks(config, &mut out);
    edge_items(config, &mut out);
    out.push_result(
        config.api.strict_rls,
        "api.strict_rls",
        "tables with RLS off, views that are not security_invoker, materialized views and foreign tables are not exposed",
        "api.strict_rls is false: relations RLS cannot protect are exposed",
    );
    let report = match connect_and_report(config, &mut out).await {
        Ok(report) => report,
        Err(reason) => {
            out.fail("database", &reason);
            return out;
        }
    };
    let schemas = config.api.exposed_schemas.join(", ");
    if report.is_empty() {
        out.lines.push(format!(
            "PASS  rls_coverage  every table and view in {schemas} is covered by RLS and policies; no SECURITY DEFINER function is callable by the API roles"
        ));
    }
    for finding in &report {
        out.finding(finding);
    }
    let errors = report.iter().filter(|f| f.is_error()).count();
    out.lines.push(format!(
        "{} error(s), {} warning(s) in the security report of {schemas}",
        errors,
        report.len() - errors
    ));
    out
}

/// Whether a host name or address is this machine (or a Unix socket path).
fn is_local_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The configuration-only items: rate limiting, the audit log, the metrics listener.
fn edge_items(config: &Config, out: &mut CheckOutcome) {
    let rl = &config.rate_limiting;
    out.push_result(
        rl.enabled,
        "rate_limiting",
        &format!(
            "on ({:?} store; {}/min and {}/h per client, stricter budgets on the auth endpoints)",
            rl.store, rl.per_minute, rl.per_hour
        ),
        "rate_limiting.enabled is false: nothing limits password guessing, sign-up spam or floods",
    );
    let logging = &config.logging;
    match (&logging.audit_enabled, &logging.audit_log_file) {
        (true, Some(path)) => {
            let mut options = std::fs::OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                // As the server creates it: readable by its owner only.
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let writable = options.open(path);
            match writable {
                Ok(_) => out.lines.push(format!(
                    "PASS  audit_log  security events are written to {}",
                    path.display()
                )),
                Err(e) => out.fail(
                    "audit_log",
                    &format!("logging.audit_log_file {} is not writable: {e}", path.display()),
                ),
            }
        }
        _ => out.fail(
            "audit_log",
            "logging.audit_enabled is false: sign-ins, lockouts and administrator actions leave no audit file",
        ),
    }
    let m = &config.monitoring;
    if !m.enabled {
        out.lines
            .push("WARN  monitoring  monitoring.enabled is false: no metrics".to_owned());
    } else if m.port == config.server.port {
        out.fail(
            "monitoring",
            "monitoring.port is the public server.port: metrics would be served to the public",
        );
    } else if matches!(m.host.as_str(), "0.0.0.0" | "::" | "[::]") {
        out.lines.push(format!(
            "WARN  monitoring  metrics listen on every interface ({}:{}); keep the port firewalled or use a private address",
            m.host, m.port
        ));
    } else {
        out.lines.push(format!(
            "PASS  monitoring  metrics on {}:{}{}, apart from the public port {}",
            m.host, m.port, m.path, config.server.port
        ));
    }
}

/// The items that need only the configuration.
pub fn config_checks(config: &Config, out: &mut CheckOutcome) {
    let server = &config.server;
    if server.tls.enabled {
        out.pass(
            "tls",
            &format!(
                "HTTPS on port {} (TLS {} and newer, HTTP/2 and HTTP/1.1)",
                server.port, server.tls.min_version
            ),
        );
    } else if is_local_host(&server.host) {
        out.warn("tls", &format!("server.tls.enabled is false: plain HTTP on {}, fine only behind a TLS-terminating proxy on this machine", server.host));
    } else {
        out.fail("tls", &format!("server.tls.enabled is false while listening on {}: tokens and passwords would cross the network in plain text", server.host));
    }

    let mode = config.database.ssl_mode();
    let hosts: Vec<String> = config
        .database
        .connect_config()
        .map(|pg| {
            pg.get_hosts()
                .iter()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(name) => name.clone(),
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    let local = !hosts.is_empty() && hosts.iter().all(|h| is_local_host(h));
    match mode {
        SslMode::VerifyFull => out.pass(
            "database_tls",
            "database.ssl_mode is verify-full: encrypted, certificate and host name verified",
        ),
        SslMode::Require => out.warn(
            "database_tls",
            "database.ssl_mode is require: encrypted, but the server's certificate is not verified; use verify-full with database.ssl_root_cert",
        ),
        _ if local => out.warn(
            "database_tls",
            &format!("database.ssl_mode is {}: the database is on this machine, so this is acceptable; use verify-full once it moves", mode.as_str()),
        ),
        _ => out.fail(
            "database_tls",
            &format!("database.ssl_mode is {}: the connection to {} may be plain text; use verify-full (or require)", mode.as_str(), hosts.join(",")),
        ),
    }

    if config.inline_secrets.is_empty() {
        out.pass(
            "secrets",
            "no secret is written literally in the config (environment variables or _FILE secrets)",
        );
    } else {
        out.fail(
            "secrets",
            &format!(
                "written literally in the config file: {}; reference an environment variable or a _FILE secret instead",
                config.inline_secrets.join(", ")
            ),
        );
    }

    let cors = &server.cors;
    if cors.allows_any_origin() {
        out.fail(
            "cors",
            "server.cors.allowed_origins is [\"*\"]: any web site can call the API from a browser; list the origins",
        );
    } else if !cors.enabled() {
        out.pass(
            "cors",
            "no cross-origin access (no server.cors.allowed_origins)",
        );
    } else {
        let plain: Vec<&String> = cors
            .allowed_origins
            .iter()
            .filter(|o| o.starts_with("http://") && !is_local_host(origin_host(o)))
            .collect();
        if plain.is_empty() {
            out.pass(
                "cors",
                &format!("exact origins only: {}", cors.allowed_origins.join(", ")),
            );
        } else {
            out.warn(
                "cors",
                &format!(
                    "plain-http origins allowed: {}",
                    plain
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }

    let h = &config.security.headers;
    let listed = format!(
        "X-Content-Type-Options: nosniff, X-Frame-Options: {}, Referrer-Policy: {}, Content-Security-Policy: {}",
        h.x_frame_options, h.referrer_policy, h.content_security_policy
    );
    match (&h.hsts, server.tls.enabled) {
        (Some(hsts), true) => out.pass(
            "security_headers",
            &format!(
                "{listed}, Strict-Transport-Security: {}",
                hsts.header_value()
            ),
        ),
        (None, true) => out.warn(
            "security_headers",
            &format!("{listed}; security.headers.hsts is not set although the server speaks TLS"),
        ),
        (_, false) => out.pass(
            "security_headers",
            &format!("{listed} (HSTS is sent only with server.tls.enabled)"),
        ),
    }

    if config.graphql.introspection {
        out.fail(
            "graphql_introspection",
            "graphql.introspection is true: anyone can list the API's types and fields; turn it off in production",
        );
    } else {
        out.pass("graphql_introspection", "graphql.introspection is off");
    }
}

/// The host of `scheme://host[:port]`.
fn origin_host(origin: &str) -> &str {
    let rest = origin.split_once("://").map_or(origin, |(_, r)| r);
    if rest.starts_with('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    rest.rsplit_once(':').map_or(rest, |(h, _)| h)
}

async fn connect_and_report(
    config: &Config,
    out: &mut CheckOutcome,
) -> Result<Vec<Finding>, String> {
    let pool = db::create_pool(
        &config.database,
        std::time::Duration::from_secs(config.server.request_timeout_seconds),
    )
    .map_err(|e| e.to_string())?;
    let client = pool
        .get()
        .await
        .map_err(|e| format!("cannot connect: {}", crate::error_chain(&e)))?;
    database_checks(&client, out).await;
    drop(client);
    password_policy_checks(&pool, &config.auth.database_settings(), out).await;
    let client = pool
        .get()
        .await
        .map_err(|e| format!("cannot connect: {}", crate::error_chain(&e)))?;
    fetch_security_report(&client, &config.api.exposed_schemas)
        .await
        .map_err(|e| format!("cannot run fluxbase.security_report: {e}"))
}

/// The connection's actual encryption, and pgaudit.
async fn database_checks(client: &tokio_postgres::Client, out: &mut CheckOutcome) {
    match client
        .query_opt(
            "SELECT ssl, version FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()",
            &[],
        )
        .await
    {
        Ok(Some(row)) if row.get::<_, bool>(0) => out.pass(
            "database_connection",
            &format!(
                "this connection is encrypted ({})",
                row.get::<_, Option<String>>(1).unwrap_or_default()
            ),
        ),
        Ok(_) => out.warn("database_connection", "this connection is not encrypted"),
        Err(e) => out.warn(
            "database_connection",
            &format!("cannot read pg_stat_ssl: {e}"),
        ),
    }
    // shared_preload_libraries is readable by superusers only; pgaudit's own setting, defined
    // (with the superuser context) only when the library is loaded, is visible to everyone.
    let loaded = match client.query_one("SHOW shared_preload_libraries", &[]).await {
        Ok(row) => Ok(row
            .get::<_, String>(0)
            .split(',')
            .any(|l| l.trim().trim_matches('"') == "pgaudit")),
        Err(_) => client
            .query_one(
                "SELECT count(*) > 0 FROM pg_catalog.pg_settings WHERE name = 'pgaudit.log' AND context = 'superuser'",
                &[],
            )
            .await
            .map(|row| row.get::<_, bool>(0)),
    };
    match loaded {
        Ok(true) => out.pass(
            "pgaudit",
            "pgaudit is loaded: statements and role changes reach the PostgreSQL log",
        ),
        Ok(false) => out.warn(
            "pgaudit",
            "pgaudit is not loaded (shared_preload_libraries = 'fluxbase,pgaudit'): only audit.log's row changes are recorded",
        ),
        Err(e) => out.warn("pgaudit", &format!("cannot tell whether pgaudit is loaded: {e}")),
    }
}

/// The password policy and the 2FA rule as they will be once this config runs: the database's
/// (`auth.public_config()`, what `GET /api/v1/auth/config` shows, read the API's way: as
/// `anon`) with the yaml's `auth:` keys over them, since `serve` writes those at start. Read
/// from the database alone, a config that weakens the policy passed (found by a reviewer).
async fn password_policy_checks(
    pool: &deadpool_postgres::Pool,
    yaml: &serde_json::Map<String, serde_json::Value>,
    out: &mut CheckOutcome,
) {
    let settings = db::with_request_tx(
        pool,
        db::Access::ReadOnly,
        None,
        "fluxbase-check",
        async |client| {
            let row = client.query_one("SELECT auth.public_config()", &[]).await?;
            Ok(row.get::<_, serde_json::Value>(0))
        },
    )
    .await;
    let mut settings = match settings {
        Ok(settings) => settings,
        Err(e) => {
            out.fail(
                "password_policy",
                &format!("cannot read auth.public_config(): {}", e.message),
            );
            return;
        }
    };
    if let Some(current) = settings.as_object_mut() {
        for (key, value) in yaml {
            current.insert(key.clone(), value.clone());
        }
    }
    let min = settings["password_min_length"].as_i64().unwrap_or(0);
    let classes: Vec<&str> = [
        ("password_require_uppercase", "upper case"),
        ("password_require_lowercase", "lower case"),
        ("password_require_number", "a digit"),
        ("password_require_special", "a symbol"),
    ]
    .iter()
    .filter(|(key, _)| settings[*key].as_bool() == Some(true))
    .map(|(_, what)| *what)
    .collect();
    let rule = format!(
        "passwords of at least {min} characters{}",
        if classes.is_empty() {
            String::new()
        } else {
            format!(" with {}", classes.join(", "))
        }
    );
    if min >= GOOD_PASSWORD_LENGTH {
        out.pass("password_policy", &rule);
    } else if min >= WEAK_PASSWORD_LENGTH {
        out.warn(
            "password_policy",
            &format!(
                "{rule}; auth.password_min_length {GOOD_PASSWORD_LENGTH} or more is recommended"
            ),
        );
    } else {
        out.fail(
            "password_policy",
            &format!("{rule}: auth.password_min_length below {WEAK_PASSWORD_LENGTH} is too weak"),
        );
    }
    if settings["require_2fa_for_admins"].as_bool() == Some(true) {
        out.pass(
            "admin_2fa",
            "auth.require_2fa_for_admins: administrators must use 2FA",
        );
    } else {
        out.fail(
            "admin_2fa",
            "auth.require_2fa_for_admins is false: an administrator account is protected by its password alone",
        );
    }
}

impl CheckOutcome {
    fn pass(&mut self, item: &str, reason: &str) {
        self.lines.push(format!("PASS  {item}  {reason}"));
    }

    fn warn(&mut self, item: &str, reason: &str) {
        self.lines.push(format!("WARN  {item}  {reason}"));
    }

    fn push_result(&mut self, ok: bool, item: &str, pass: &str, fail: &str) {
        if ok {
            self.lines.push(format!("PASS  {item}  {pass}"));
        } else {
            self.fail(item, fail);
        }
    }

    fn fail(&mut self, item: &str, reason: &str) {
        self.failed = true;
        self.lines.push(format!("FAIL  {item}  {reason}"));
    }

    fn finding(&mut self, f: &Finding) {
        if f.is_error() {
            self.fail(&format!("{} {}", f.kind, f.object), &f.detail);
        } else {
            self.lines
                .push(format!("WARN  {} {}  {}", f.kind, f.object, f.detail));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(yaml: &str) -> CheckOutcome {
        let config = Config::from_yaml_str_with_vars(
            yaml,
            &[("DB_PASSWORD".to_owned(), "a-long-db-password".to_owned())],
        )
        .unwrap();
        let mut out = CheckOutcome {
            lines: Vec::new(),
            failed: false,
        };
        config_checks(&config, &mut out);
        out
    }

    fn status<'a>(out: &'a CheckOutcome, item: &str) -> &'a str {
        out.lines
            .iter()
            .find(|l| l[6..].starts_with(&format!("{item}  ")))
            .map(|l| &l[..4])
            .unwrap_or_else(|| panic!("no {item} in {:#?}", out.lines))
    }

    const LOCAL: &str = "database: { url: \"postgres://u:${DB_PASSWORD}@127.0.0.1/db\" }\n";

    #[test]
    fn a_local_development_config_warns_but_passes() {
        let out = lines(LOCAL);
        assert!(!out.failed, "{:#?}", out.lines);
        assert_eq!(status(&out, "tls"), "WARN");
        assert_eq!(status(&out, "database_tls"), "WARN");
        assert_eq!(status(&out, "secrets"), "PASS");
        assert_eq!(status(&out, "cors"), "PASS");
        assert_eq!(status(&out, "security_headers"), "PASS");
        assert_eq!(status(&out, "graphql_introspection"), "PASS");
    }

    #[test]
    fn production_mistakes_fail() {
        let out = lines(
            "server: { host: 0.0.0.0, cors: { allowed_origins: [\"*\"] } }\n\
             database: { url: \"postgres://u:literal-db-password@db.internal/db\" }\n\
             graphql: { introspection: true }\n",
        );
        assert!(out.failed);
        for item in [
            "tls",
            "database_tls",
            "secrets",
            "cors",
            "graphql_introspection",
        ] {
            assert_eq!(status(&out, item), "FAIL", "{item}: {:#?}", out.lines);
        }
        let secrets = out.lines.iter().find(|l| l.contains("secrets")).unwrap();
        assert!(secrets.contains("database.url"), "{secrets}");
        assert!(!secrets.contains("literal-db-password"), "{secrets}");
    }

    #[test]
    fn database_tls_levels() {
        let out = lines(
            "database: { url: \"postgres://u:${DB_PASSWORD}@db.internal/db?sslmode=require\" }\n",
        );
        assert_eq!(status(&out, "database_tls"), "WARN");
        let out = lines("database: { url: \"postgres://u:${DB_PASSWORD}@db.internal/db?sslmode=verify-full\" }\n");
        assert_eq!(status(&out, "database_tls"), "PASS");
        let out = lines(
            "server: { cors: { allowed_origins: [\"http://app.example.com\", \"http://localhost:3000\"] } }\n\
             database: { url: \"postgres://u:${DB_PASSWORD}@/db?host=/run/postgresql\" }\n",
        );
        assert_eq!(status(&out, "database_tls"), "WARN");
        let cors = out.lines.iter().find(|l| l.contains("cors")).unwrap();
        assert!(
            cors.starts_with("WARN")
                && cors.contains("http://app.example.com")
                && !cors.contains("localhost"),
            "{cors}"
        );
    }
}
