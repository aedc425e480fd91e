//! `fluxbase check`: the pre-production checklist as a command that can gate a deployment.
//!
//! Today it runs the part that needs the live database: the extension's security report
//! (`fluxbase.security_report`) over the configured exposed schemas, plus whether the API
//! refuses unprotected relations (`api.strict_rls`). Each item prints as `PASS`, `WARN` or
//! `FAIL` with its reason; any `FAIL` makes the exit code non-zero. Warnings (likely
//! mistakes, such as a table whose RLS is on but not forced) are printed but do not fail.
//!
//! The edge items: rate limiting on (FAIL when off), the audit log on and its file writable
//! (FAIL), the metrics listener off the public port (FAIL when it shares it; WARN when it
//! listens on every interface or is off), and pgaudit preloaded beside fluxbase (WARN when
//! not: the extension's own audit log still records row changes, pgaudit adds statements).
use crate::security_report::{fetch_security_report, Finding};
use crate::{db, Config};

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
    out.push_result(
        config.api.strict_rls,
        "api.strict_rls",
        "tables with RLS off, views that are not security_invoker, materialized views and foreign tables are not exposed",
        "api.strict_rls is false: relations RLS cannot protect are exposed",
    );
    edge_items(config, &mut out);
    let (report, pgaudit) = match connect_and_report(config).await {
        Ok(found) => found,
        Err(reason) => {
            out.fail("database", &reason);
            return out;
        }
    };
    match pgaudit {
        Some(true) => out.lines.push(
            "PASS  pgaudit  pgaudit is in shared_preload_libraries (statement audit in the server log)".to_owned(),
        ),
        Some(false) => out.lines.push(
            "WARN  pgaudit  pgaudit is not loaded (shared_preload_libraries = 'fluxbase,pgaudit' adds statement-level audit)".to_owned(),
        ),
        None => out.lines.push(
            "WARN  pgaudit  cannot tell whether pgaudit is loaded (shared_preload_libraries is not readable by the server's role)".to_owned(),
        ),
    }
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

/// Whether pgaudit is preloaded: `SHOW shared_preload_libraries` where the role may read it,
/// else whether pgaudit's own enum setting exists (a placeholder left in postgresql.conf
/// without the library would be a plain string).
async fn pgaudit_loaded(client: &deadpool_postgres::Client) -> Option<bool> {
    if let Ok(rows) = client.simple_query("SHOW shared_preload_libraries").await {
        for message in rows {
            if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
                let value = row.get(0).unwrap_or("");
                return Some(
                    value
                        .split(',')
                        .any(|lib| lib.trim().trim_matches('"') == "pgaudit"),
                );
            }
        }
    }
    client
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_settings WHERE name = 'pgaudit.log_level' AND vartype = 'enum')",
            &[],
        )
        .await
        .ok()
        .and_then(|row| row.try_get::<_, bool>(0).ok())
}

async fn connect_and_report(config: &Config) -> Result<(Vec<Finding>, Option<bool>), String> {
    let pool = db::create_pool(
        &config.database,
        std::time::Duration::from_secs(config.server.request_timeout_seconds),
    )
    .map_err(|e| e.to_string())?;
    let client = pool
        .get()
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let report = fetch_security_report(&client, &config.api.exposed_schemas)
        .await
        .map_err(|e| format!("cannot run fluxbase.security_report: {e}"))?;
    Ok((report, pgaudit_loaded(&client).await))
}

impl CheckOutcome {
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
