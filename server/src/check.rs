//! `fluxbase check`: the pre-production checklist as a command that can gate a deployment.
//!
//! Today it runs the part that needs the live database: the extension's security report
//! (`fluxbase.security_report`) over the configured exposed schemas, plus whether the API
//! refuses unprotected relations (`api.strict_rls`). Each item prints as `PASS`, `WARN` or
//! `FAIL` with its reason; any `FAIL` makes the exit code non-zero. Warnings (likely
//! mistakes, such as a table whose RLS is on but not forced) are printed but do not fail.
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
    let report = match connect_and_report(config).await {
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

async fn connect_and_report(config: &Config) -> Result<Vec<Finding>, String> {
    let pool = db::create_pool(
        &config.database,
        std::time::Duration::from_secs(config.server.request_timeout_seconds),
    )
    .map_err(|e| e.to_string())?;
    let client = pool
        .get()
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    fetch_security_report(&client, &config.api.exposed_schemas)
        .await
        .map_err(|e| format!("cannot run fluxbase.security_report: {e}"))
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
