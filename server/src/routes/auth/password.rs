//! Password reset (request and confirm) and the expired-password change.
//!
//! Why the reset request always answers the same: whether an address has an account is
//! exactly what an attacker enumerating accounts wants to learn. The request answers one
//! fixed 200 for every address, does the same database work up to the token, and sends the
//! e-mail from a background task so the answer's timing does not depend on it. Only a bad
//! `redirect_to` is refused (400), and that is decided before touching the database.
use super::{call_json, call_json_audited, client_ip, record_auth_event, AuditSpec};
use crate::config::PasswordResetConfig;
use crate::db::{with_server_tx, Access};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::observability::RequestContext;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

/// The token, and the address to send it to: the account's own (normalized) address, not the
/// one typed. NFKC and lower-casing map look-alike spellings (e.g. with U+212A KELVIN SIGN)
/// to an account's address; mailing the typed spelling could deliver to someone else.
pub const CREATE_RESET_SQL: &str =
    "SELECT auth.create_password_reset($1::text, $2::text::inet), auth.normalize_email($1::text)";
pub const RESET_PASSWORD_SQL: &str =
    "SELECT auth.reset_password($1::text, $2::text, $3::text::inet)::text";
pub const CHANGE_EXPIRED_SQL: &str =
    "SELECT auth.change_expired_password($1::text, $2::text, $3::text::inet)::text";

/// The one answer to a reset request.
pub const RESET_REQUESTED_MESSAGE: &str =
    "If an account exists for this address, a reset link has been sent.";

/// The longest `redirect_to` accepted.
const MAX_REDIRECT_LEN: usize = 2048;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequestBody {
    pub email: Option<String>,
    pub redirect_to: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirmBody {
    pub token: Option<String>,
    pub new_password: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeBody {
    pub password_change_token: Option<String>,
    pub new_password: Option<String>,
}

/// `POST /auth/password/reset` `{email, redirect_to?}` → always 200 with
/// [`RESET_REQUESTED_MESSAGE`]. When the address has an account, the reset link
/// (`{redirect_to or base_url}?token=…&type=recovery`) is e-mailed in the background.
pub async fn request_reset(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<ResetRequestBody>,
) -> Result<Response, ApiError> {
    let reset_config = &state.config().auth.password_reset;
    let redirect = check_redirect(reset_config, body.redirect_to.as_deref())?;
    let email = body
        .email
        .filter(|e| !e.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("VALIDATION_ERROR", "email is required"))?;
    let ip = client_ip(&ctx);
    // As the login role: anon may not call it, since the token it returns is as good as
    // the password.
    let created = with_server_tx(state.pool(), &ctx.request_id, async |tx| {
        let statement = tx.prepare_cached(CREATE_RESET_SQL).await?;
        let row = tx.query_one(&statement, &[&email, &ip]).await?;
        let token = row.try_get::<_, Option<String>>(0)?;
        let address = row.try_get::<_, Option<String>>(1)?;
        Ok(token.zip(address))
    })
    .await;
    let created = match created {
        Ok(created) => created,
        // An unreachable database says nothing about the account: report it.
        Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => return Err(e),
        Err(e) => {
            // Anything else could differ between existing and unknown addresses: same answer.
            tracing::error!(request_id = %ctx.request_id, error = %e, "password reset could not be started");
            None
        }
    };
    let spec = AuditSpec {
        event: "auth.password_reset",
        email: Some(&email),
        step: Some("request"),
        ..AuditSpec::default()
    };
    // "requested" whether or not the address has an account: the file is for the operator,
    // but the request's outcome is the same either way (the database's own event says more).
    record_auth_event(
        &state,
        &ctx,
        spec,
        &Ok::<(), ApiError>(()),
        None,
        Some("requested"),
    );
    if let Some((token, address)) = created {
        let base = redirect.or(reset_config.base_url.as_deref());
        send_reset_mail(&state, &ctx, address, base, &token);
    }
    Ok((
        StatusCode::OK,
        Json(json!({ "message": RESET_REQUESTED_MESSAGE })),
    )
        .into_response())
}

/// Spawns the e-mail; warns (without the token) when it cannot be sent.
fn send_reset_mail(
    state: &AppState,
    ctx: &RequestContext,
    address: String,
    base: Option<&str>,
    token: &str,
) {
    let request_id = ctx.request_id.clone();
    let (Some(mailer), Some(base)) = (state.mailer(), base) else {
        tracing::warn!(
            request_id = %request_id,
            "a password reset was requested but auth.smtp (or auth.password_reset.base_url) is not configured: no e-mail sent"
        );
        return;
    };
    let mailer = mailer.clone();
    let link = reset_link(base, token);
    tokio::spawn(async move {
        match mailer.send_password_reset(&address, &link).await {
            Ok(()) => tracing::info!(request_id = %request_id, "password reset e-mail sent"),
            Err(e) => {
                tracing::warn!(request_id = %request_id, error = %e, "password reset e-mail not sent")
            }
        }
    });
}

/// `POST /auth/password/reset/confirm` `{token, new_password}` → 200 `{success: true}`;
/// 400 `INVALID_RESET_TOKEN` (unknown, used or expired) or `WEAK_PASSWORD`.
pub async fn confirm_reset(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<ResetConfirmBody>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ctx);
    call_json_audited(
        &state,
        &ctx,
        Access::ReadWrite,
        None,
        RESET_PASSWORD_SQL,
        &[&body.token, &body.new_password, &ip],
        AuditSpec {
            event: "auth.password_reset",
            step: Some("confirm"),
            ..AuditSpec::default()
        },
    )
    .await
}

/// `POST /auth/password/change` `{password_change_token, new_password}`: the sign-in whose
/// password had expired continues with a new one. Answers like sign-in (token response or
/// 2FA challenge); 400 `INVALID_TOKEN` or `WEAK_PASSWORD`.
pub async fn change_expired(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<PasswordChangeBody>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ctx);
    call_json(
        &state,
        &ctx,
        Access::ReadWrite,
        None,
        CHANGE_EXPIRED_SQL,
        &[&body.password_change_token, &body.new_password, &ip],
    )
    .await
}

/// Checks a client's `redirect_to` against `auth.password_reset.redirect_allowlist`.
///
/// An entry matches when `redirect_to` equals it, or starts with it and either the entry
/// ends with `/` or the next character is `/`, `?` or `#`. So `https://app.example.com`
/// allows `https://app.example.com/reset` but not `https://app.example.com.evil.test` or
/// `https://app.example.com@evil.test`. No allowlist: any `redirect_to` is refused.
pub fn check_redirect<'a>(
    config: &PasswordResetConfig,
    redirect_to: Option<&'a str>,
) -> Result<Option<&'a str>, ApiError> {
    let Some(url) = redirect_to else {
        return Ok(None);
    };
    let shape_ok = url.len() <= MAX_REDIRECT_LEN && crate::config::auth::is_http_url(url);
    let allowed = shape_ok
        && config.redirect_allowlist.iter().any(|entry| {
            url.strip_prefix(entry.as_str()).is_some_and(|rest| {
                rest.is_empty() || entry.ends_with('/') || rest.starts_with(['/', '?', '#'])
            })
        });
    if allowed {
        Ok(Some(url))
    } else {
        Err(ApiError::bad_request(
            "INVALID_REDIRECT",
            "redirect_to is not an allowed redirect URL",
        ))
    }
}

/// `base` with `token=<token>&type=recovery` added to its query (before any `#fragment`).
pub fn reset_link(base: &str, token: &str) -> String {
    let (before, fragment) = match base.find('#') {
        Some(i) => base.split_at(i),
        None => (base, ""),
    };
    let separator = if before.contains('?') {
        if before.ends_with(['?', '&']) {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    format!(
        "{before}{separator}token={}&type=recovery{fragment}",
        percent_encode(token)
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(entries: &[&str]) -> PasswordResetConfig {
        PasswordResetConfig {
            base_url: None,
            redirect_allowlist: entries.iter().map(|e| (*e).to_owned()).collect(),
        }
    }

    #[test]
    fn redirect_allowlist() {
        let config = allow(&["https://app.example.com", "http://localhost:3000/auth/"]);
        assert_eq!(check_redirect(&config, None).unwrap(), None);
        for ok in [
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/reset?x=1",
            "https://app.example.com?x=1",
            "https://app.example.com#frag",
            "http://localhost:3000/auth/",
            "http://localhost:3000/auth/reset",
        ] {
            assert_eq!(check_redirect(&config, Some(ok)).unwrap(), Some(ok), "{ok}");
        }
        for bad in [
            "https://app.example.com.evil.test",
            "https://app.example.com@evil.test",
            "https://app.example.com:8443",
            "https://app.example.comx/",
            "http://app.example.com/",
            "https://evil.test/?https://app.example.com",
            "http://localhost:3000/auther",
            "http://localhost:3000/",
            "javascript:alert(1)",
            "//app.example.com",
            "https://app.example.com/ spaced",
            "https://app.example.com/\r\nBcc: x",
            "",
        ] {
            let err = check_redirect(&config, Some(bad)).unwrap_err();
            assert_eq!(
                (err.status, err.code.as_ref()),
                (StatusCode::BAD_REQUEST, "INVALID_REDIRECT"),
                "{bad:?}"
            );
        }
        let long = format!("https://app.example.com/{}", "a".repeat(MAX_REDIRECT_LEN));
        assert!(check_redirect(&config, Some(&long)).is_err());
        // No allowlist: redirect_to must be absent.
        let none = allow(&[]);
        assert_eq!(check_redirect(&none, None).unwrap(), None);
        assert!(check_redirect(&none, Some("https://app.example.com")).is_err());
    }

    #[test]
    fn reset_links() {
        assert_eq!(
            reset_link("https://app.example.com/reset", "ab12"),
            "https://app.example.com/reset?token=ab12&type=recovery"
        );
        assert_eq!(
            reset_link("https://app.example.com/reset?lang=en", "ab12"),
            "https://app.example.com/reset?lang=en&token=ab12&type=recovery"
        );
        assert_eq!(
            reset_link("https://app.example.com/reset?", "ab12"),
            "https://app.example.com/reset?token=ab12&type=recovery"
        );
        assert_eq!(
            reset_link("https://app.example.com/#/reset", "ab12"),
            "https://app.example.com/?token=ab12&type=recovery#/reset"
        );
        assert_eq!(
            reset_link("https://a.example/r", "a b&c=d"),
            "https://a.example/r?token=a%20b%26c%3Dd&type=recovery"
        );
    }
}
