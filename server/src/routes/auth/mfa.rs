//! TOTP two-factor authentication: enrolment (with a QR code), enable, disable, status and
//! the second sign-in step.
//!
//! The secret and the codes are checked in the database (`auth.mfa_*`); the server only
//! renders the enrolment URI as a QR code. Neither the secret, the URI, the QR code nor any
//! code is ever logged.
use super::{call_json, call_json_audited, client_ip, refused, AuditSpec};
use crate::db::{with_request_tx, Access, TxError};
use crate::error::ApiError;
use crate::extract::{ApiJson, BearerToken};
use crate::observability::RequestContext;
use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

pub const MFA_SETUP_SQL: &str = "SELECT auth.mfa_setup()::text";
pub const MFA_ENABLE_SQL: &str = "SELECT auth.mfa_enable($1::text, $2::text)::text";
pub const MFA_DISABLE_SQL: &str = "SELECT auth.mfa_disable($1::text, $2::text)::text";
pub const MFA_STATUS_SQL: &str = "SELECT auth.mfa_status()::text";
pub const MFA_VERIFY_SQL: &str = "SELECT auth.mfa_verify($1::text, $2::text, $3::text::inet)::text";

/// The smallest side of the QR image, in pixels: scannable from a screen.
const QR_MIN_PIXELS: u32 = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnableBody {
    pub code: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisableBody {
    pub password: Option<String>,
    pub code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    pub mfa_token: Option<String>,
    pub code: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("the text does not fit in a QR code: {0}")]
    Encode(#[from] qrcode::types::QrError),
    #[error("cannot encode the PNG: {0}")]
    Png(#[from] image::ImageError),
}

/// `text` as a QR code in a `data:image/png;base64,…` URI (error correction level M).
pub fn qr_data_uri(text: &str) -> Result<String, QrError> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)?;
    let picture = code
        .render::<image::Luma<u8>>()
        .min_dimensions(QR_MIN_PIXELS, QR_MIN_PIXELS)
        .build();
    let mut png = Vec::new();
    picture.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    ))
}

/// Adds `totp.qr_code` to an `auth.mfa_setup()` result.
fn add_qr_code(result: &mut Value) -> Result<(), ApiError> {
    let totp = result
        .get_mut("totp")
        .and_then(Value::as_object_mut)
        .ok_or_else(ApiError::internal)?;
    let uri = totp
        .get("uri")
        .and_then(Value::as_str)
        .ok_or_else(ApiError::internal)?;
    let qr = qr_data_uri(uri).map_err(|e| {
        tracing::error!(error = %e, "cannot render the TOTP QR code");
        ApiError::internal()
    })?;
    totp.insert("qr_code".to_owned(), Value::String(qr));
    Ok(())
}

/// `POST /auth/2fa/setup` with the user's token → `{id, type: "totp", totp: {secret, uri,
/// qr_code}}`. Not active until `2fa/enable`. The QR code is made inside the transaction:
/// if it cannot be, the new secret is rolled back rather than handed out half-done.
pub async fn setup(
    State(state): State<AppState>,
    ctx: RequestContext,
    BearerToken(token): BearerToken,
) -> Result<Response, ApiError> {
    let token = token.ok_or_else(ApiError::unauthorized)?;
    let result = with_request_tx(
        state.pool(),
        Access::ReadWrite,
        Some(&token),
        &ctx.request_id,
        async |tx| {
            let statement = tx.prepare_cached(MFA_SETUP_SQL).await?;
            let row = tx.query_one(&statement, &[]).await?;
            let text = row
                .try_get::<_, Option<String>>(0)?
                .ok_or_else(ApiError::internal)?;
            let mut result: Value =
                serde_json::from_str(&text).map_err(|_| TxError::Api(ApiError::internal()))?;
            if result.get("error").is_none() {
                add_qr_code(&mut result)?;
            }
            Ok(result)
        },
    )
    .await?;
    if let Some(err) = refused(&ctx, &result) {
        return Err(err);
    }
    Ok(Json(result).into_response())
}

/// `POST /auth/2fa/enable` `{code, password}` with the user's token → `{success,
/// backup_codes}`; 401 `INVALID_CREDENTIALS` for a wrong password (counted toward the lockout).
pub async fn enable(
    State(state): State<AppState>,
    ctx: RequestContext,
    BearerToken(token): BearerToken,
    ApiJson(body): ApiJson<EnableBody>,
) -> Result<Response, ApiError> {
    let token = token.ok_or_else(ApiError::unauthorized)?;
    call_json_audited(
        &state,
        &ctx,
        Access::ReadWrite,
        Some(&token),
        MFA_ENABLE_SQL,
        &[&body.code, &body.password],
        AuditSpec {
            event: "auth.2fa_enable",
            token: Some(&token),
            ..AuditSpec::default()
        },
    )
    .await
}

/// `POST /auth/2fa/disable` `{password, code}` with the user's token → `{success}`.
pub async fn disable(
    State(state): State<AppState>,
    ctx: RequestContext,
    BearerToken(token): BearerToken,
    ApiJson(body): ApiJson<DisableBody>,
) -> Result<Response, ApiError> {
    let token = token.ok_or_else(ApiError::unauthorized)?;
    call_json_audited(
        &state,
        &ctx,
        Access::ReadWrite,
        Some(&token),
        MFA_DISABLE_SQL,
        &[&body.password, &body.code],
        AuditSpec {
            event: "auth.2fa_disable",
            token: Some(&token),
            ..AuditSpec::default()
        },
    )
    .await
}

/// `GET /auth/2fa/status` with the user's token → `{enabled, pending, type,
/// backup_codes_left}`.
pub async fn status(
    State(state): State<AppState>,
    ctx: RequestContext,
    BearerToken(token): BearerToken,
) -> Result<Response, ApiError> {
    let token = token.ok_or_else(ApiError::unauthorized)?;
    call_json(
        &state,
        &ctx,
        Access::ReadOnly,
        Some(&token),
        MFA_STATUS_SQL,
        &[],
    )
    .await
}

/// `POST /auth/2fa/verify` `{mfa_token, code}` → the aal2 token response; 401
/// `INVALID_MFA_TOKEN` / `INVALID_MFA_CODE` (a wrong code counts toward the lockout, and
/// that count is committed).
pub async fn verify(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Response, ApiError> {
    let ip = client_ip(&ctx);
    call_json_audited(
        &state,
        &ctx,
        Access::ReadWrite,
        None,
        MFA_VERIFY_SQL,
        &[&body.mfa_token, &body.code, &ip],
        AuditSpec {
            event: "auth.login",
            step: Some("2fa"),
            ..AuditSpec::default()
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

    fn decode(uri: &str) -> Vec<u8> {
        let b64 = uri
            .strip_prefix("data:image/png;base64,")
            .expect("a PNG data URI");
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("valid base64")
    }

    #[test]
    fn qr_code_is_a_png_data_uri() {
        let uri =
            "otpauth://totp/Fluxbase:alice%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Fluxbase";
        let png = decode(&qr_data_uri(uri).unwrap());
        assert_eq!(png[..8], PNG_SIGNATURE);
        let picture = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
            .expect("decodes as PNG");
        assert!(picture.width() >= QR_MIN_PIXELS && picture.height() == picture.width());
        // Both dark and light modules are there.
        let luma = picture.to_luma8();
        assert!(luma.pixels().any(|p| p.0[0] == 0));
        assert!(luma.pixels().any(|p| p.0[0] == 255));
    }

    #[test]
    fn qr_code_refuses_what_does_not_fit() {
        assert!(matches!(
            qr_data_uri(&"x".repeat(5000)),
            Err(QrError::Encode(_))
        ));
    }

    #[test]
    fn setup_result_gets_the_qr_code() {
        let mut result = serde_json::json!({
            "id": "f", "type": "totp",
            "totp": {"secret": "JBSWY3DPEHPK3PXP", "uri": "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP"}
        });
        add_qr_code(&mut result).unwrap();
        let qr = result["totp"]["qr_code"].as_str().unwrap();
        assert_eq!(decode(qr)[..8], PNG_SIGNATURE);
        assert_eq!(result["totp"]["secret"], "JBSWY3DPEHPK3PXP");
        let mut broken = serde_json::json!({"id": "f", "totp": {}});
        assert_eq!(add_qr_code(&mut broken).unwrap_err().status.as_u16(), 500);
    }
}
