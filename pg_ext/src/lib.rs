//! Fluxbase: the PostgreSQL extension that is the security kernel of the Fluxbase backend.
//!
//! What lives where (one concern a module):
//! - [`settings`]: the `fluxbase.*` configuration parameters (the signing secret and friends).
//! - [`jwt`]: signing and verifying access tokens.
//! - [`password`]: argon2id hashing.
//! - [`mfa`]: TOTP secrets, their encryption at rest, replay-proof code checks.
//! - [`claims`]: the verified claims of the current transaction, kept in backend memory, and
//!   `auth.uid()` and friends that read them.
//! - [`token_cache`]: tokens this backend already verified (the times are still checked).
//! - [`kernel_queries`]: the per-request lookups, prepared once per backend.
//! - [`revocation`]: the shared counter that says when a remembered check is stale.
//! - [`rolled_back_failures`]: failed sign-ins whose transaction rolled back, still counted.
//! - [`role_switch`]: switching the transaction to `anon` / `authenticated` / `service_role`.
//! - [`guard`]: refuses statements run as an API role that was not switched to by
//!   `auth.authenticate` (so `SET ROLE service_role` by hand gets nowhere).
//! - [`authenticate`]: `auth.authenticate(token)`, which ties the above together.
//! - [`audit`]: the audit log's hash chain (lanes, heads kept per backend) and caller facts.
//! - [`session_reset`]: `fluxbase.reset_session()`, the server's reset of a pooled connection.
//! - [`audit_capture`]: the capture trigger of tracked tables (rows to jsonb, chained, stored).
//!
//! The tables and the PL/pgSQL parts live in `sql/extension/*.sql`, included below in order.
use pgrx::prelude::*;

mod audit;
mod audit_capture;
mod authenticate;
mod claims;
mod errors;
mod guard;
mod jwt;
mod kernel_queries;
mod mfa;
mod password;
mod revocation;
mod role_switch;
mod rolled_back_failures;
mod session_reset;
mod settings;
mod tests;
mod tests_audit;
mod tests_auth_kernel;
mod tests_mfa;
mod tests_rate_limit;
mod tests_security_report;
mod token_cache;

::pgrx::pg_module_magic!();

extension_sql_file!(
    "../../sql/extension/00_bootstrap.sql",
    name = "bootstrap",
    bootstrap
);
extension_sql_file!(
    "../../sql/extension/10_settings.sql",
    name = "settings",
    requires = ["bootstrap"]
);
extension_sql_file!(
    "../../sql/extension/20_users.sql",
    name = "users",
    requires = ["settings"]
);
extension_sql_file!(
    "../../sql/extension/25_sessions.sql",
    name = "sessions",
    requires = ["users", claims::auth::uid]
);
extension_sql_file!(
    "../../sql/extension/26_revocation_triggers.sql",
    name = "revocation_triggers",
    requires = ["sessions", revocation::fluxbase::note_revocation_change]
);
extension_sql_file!(
    "../../sql/extension/30_sign_in.sql",
    name = "sign_in",
    requires = [
        "revocation_triggers",
        password::fluxbase::hash_password,
        password::fluxbase::verify_password,
        password::fluxbase::password_needs_rehash,
        password::fluxbase::random_token,
        jwt::fluxbase::sign_token,
        claims::auth::uid,
        claims::auth::jwt,
        claims::auth::session_id,
        claims::auth::aal,
    ]
);
extension_sql_file!(
    "../../sql/extension/40_account.sql",
    name = "account",
    requires = ["sign_in"]
);
extension_sql_file!(
    "../../sql/extension/45_mfa.sql",
    name = "mfa",
    requires = [
        "account",
        mfa::fluxbase::totp_new_secret,
        mfa::fluxbase::totp_uri,
        mfa::fluxbase::totp_match,
        mfa::fluxbase::encrypt_secret,
        mfa::fluxbase::decrypt_secret,
        mfa::fluxbase::totp_current_code,
        claims::fluxbase::enrolment_claims,
    ]
);
extension_sql_file!(
    "../../sql/extension/50_security_report.sql",
    name = "security_report",
    requires = ["mfa"]
);
extension_sql_file!(
    "../../sql/extension/55_schema_events.sql",
    name = "schema_events",
    requires = ["security_report"]
);
extension_sql_file!(
    "../../sql/extension/60_audit.sql",
    name = "audit",
    requires = [
        "schema_events",
        audit::fluxbase::audit_link,
        audit::fluxbase::audit_hash,
        audit::fluxbase::audit_outer_role,
        audit::fluxbase::audit_caller_is_superuser,
        audit_capture::fluxbase::audit_capture,
        audit_capture::fluxbase::audit_forget_tracking,
        claims::auth::uid,
        claims::auth::role,
        claims::auth::session_id,
    ]
);
extension_sql_file!(
    "../../sql/extension/65_rate_limit.sql",
    name = "rate_limit",
    requires = ["audit"]
);
extension_sql_file!(
    "../../sql/extension/66_security_feed.sql",
    name = "security_feed",
    requires = ["rate_limit"]
);
extension_sql_file!(
    "../../sql/extension/90_grants.sql",
    name = "grants",
    finalize
);

/// Called when the library is loaded. Fluxbase must be preloaded so that its settings (above
/// all the superuser-only signing secret) are defined before any session could read them as
/// unprotected placeholders.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        error!("fluxbase must be loaded at server start: add it to shared_preload_libraries");
    }
    settings::init();
    revocation::init();
    rolled_back_failures::init();
    guard::install();
}

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    /// The extension refuses to load unless preloaded, and signs nothing without a secret.
    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![
            "shared_preload_libraries = 'fluxbase'",
            "fluxbase.jwt_secret = 'pg-test-secret-that-is-at-least-32-bytes-long'",
            "fluxbase.mfa_encryption_key = 'pg-test-mfa-key-that-is-at-least-32-bytes'",
        ]
    }
}
