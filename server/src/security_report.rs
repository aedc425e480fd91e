//! The security report (security property 5): what `fluxbase.security_report` finds in the
//! exposed schemas — tables with RLS off or not forced, tables without policies, grants no
//! policy covers, views that bypass RLS, exposed materialized views, and SECURITY DEFINER
//! functions the API roles can call. The checks themselves live in the extension
//! (`sql/extension/50_security_report.sql`), so the server, `fluxbase check` and a `psql`
//! session all see the same list.
//!
//! The server logs it at start ([`log_security_report`]); the report never stops a start —
//! the findings are for the operator, and a database too old to have the function must
//! still serve.
use serde::Serialize;

/// The report's query. Runs as the server's own login role (no `auth.authenticate`): the
/// function is granted to `fluxbase_authenticator` and reads only catalog facts.
pub const SECURITY_REPORT_SQL: &str =
    "SELECT severity, kind, object, detail FROM fluxbase.security_report($1::text[])";

/// One finding of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `error` (data is exposed past RLS) or `warning` (likely a mistake, review it).
    pub severity: String,
    /// What was found, e.g. `rls_disabled`, `grant_not_covered`, `security_definer_function`.
    pub kind: String,
    /// The object, schema-qualified (`public.notes`, `public.f(integer)`).
    pub object: String,
    /// One sentence: why it matters and, where there is one, the fix.
    pub detail: String,
}

impl Finding {
    pub fn is_error(&self) -> bool {
        self.severity == "error"
    }
}

/// The report for `exposed_schemas`, in the function's order (errors first). A later
/// `fluxbase check` prints these; an error from the database is returned, not hidden.
pub async fn fetch_security_report(
    client: &tokio_postgres::Client,
    exposed_schemas: &[String],
) -> Result<Vec<Finding>, tokio_postgres::Error> {
    let rows = client
        .query(SECURITY_REPORT_SQL, &[&exposed_schemas])
        .await?;
    Ok(rows
        .iter()
        .map(|row| Finding {
            severity: row.get(0),
            kind: row.get(1),
            object: row.get(2),
            detail: row.get(3),
        })
        .collect())
}

/// Logs every finding as a structured event (`error` findings at ERROR, the rest at WARN,
/// with the fields `severity`, `kind`, `object`) and one summary line. A failure to fetch
/// the report is itself only a warning.
pub async fn log_security_report(client: &tokio_postgres::Client, exposed_schemas: &[String]) {
    let findings = match fetch_security_report(client, exposed_schemas).await {
        Ok(findings) => findings,
        Err(e) => {
            let reason = e
                .as_db_error()
                .map(|db| db.message().to_owned())
                .unwrap_or_else(|| e.to_string());
            tracing::warn!(%reason, "could not run the security report (fluxbase.security_report)");
            return;
        }
    };
    for f in &findings {
        if f.is_error() {
            tracing::error!(severity = %f.severity, kind = %f.kind, object = %f.object, detail = %f.detail, "security report");
        } else {
            tracing::warn!(severity = %f.severity, kind = %f.kind, object = %f.object, detail = %f.detail, "security report");
        }
    }
    let errors = findings.iter().filter(|f| f.is_error()).count();
    let warnings = findings.len() - errors;
    if findings.is_empty() {
        tracing::info!(schemas = ?exposed_schemas, "security report: no findings");
    } else {
        tracing::warn!(schemas = ?exposed_schemas, errors, warnings,
            "security report: {errors} error(s), {warnings} warning(s); see `SELECT * FROM fluxbase.security_report()`");
    }
}
