//! Signing and verifying Fluxbase access tokens (the `jsonwebtoken` crate).
//!
//! The algorithm is chosen by the server (HS256), never by the token: a token whose header
//! names any other algorithm, `none` included, is refused before its signature is looked at.
use crate::settings;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;

pub const ALGORITHM: Algorithm = Algorithm::HS256;

/// Why a token was refused; each becomes one sentence in the SQL error.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    BadSignature,
    Expired,
    NotYetValid,
    IssuedInTheFuture,
    WrongIssuer,
    WrongAudience,
    WrongAlgorithm,
    MissingClaim(String),
    NotAnAccessToken,
    UnknownKey,
    Revoked,
    NoSecret(&'static str),
}

impl TokenError {
    pub fn message(&self) -> String {
        match self {
            TokenError::Malformed => "the token is malformed".into(),
            TokenError::BadSignature => "the token's signature does not match".into(),
            TokenError::Expired => "the token has expired".into(),
            TokenError::NotYetValid => "the token is not valid yet (nbf is in the future)".into(),
            TokenError::IssuedInTheFuture => "the token claims to be issued in the future".into(),
            TokenError::WrongIssuer => "the token was issued by another issuer".into(),
            TokenError::WrongAudience => "the token is meant for another audience".into(),
            TokenError::WrongAlgorithm => {
                "the token is signed with an algorithm that is not accepted".into()
            }
            TokenError::MissingClaim(c) => format!("the token lacks the required claim \"{c}\""),
            TokenError::NotAnAccessToken => {
                "only an access token can authenticate a request".into()
            }
            TokenError::UnknownKey => "the token was signed with a key that is not known".into(),
            TokenError::Revoked => "the token, its session or its user has been revoked".into(),
            TokenError::NoSecret(why) => (*why).into(),
        }
    }
}

/// Signs `claims` with the configured secret and key id.
pub fn sign(claims: &Value) -> Result<String, TokenError> {
    let secret = settings::jwt_secret().map_err(TokenError::NoSecret)?;
    let mut header = Header::new(ALGORITHM);
    header.kid = Some(settings::jwt_key_id());
    encode(
        &header,
        claims,
        &EncodingKey::from_secret(&secret).map_err(|_| TokenError::Malformed)?,
    )
    .map_err(|_| TokenError::Malformed)
}

/// Verifies signature, algorithm, key id, `exp`, `nbf` and the token type, and returns the
/// claims (`iss` and `aud` are checked by [`check_issuer_and_audience`] once the expected
/// values are read, in the same database round as the revocation check). No clock leeway:
/// the database is the only verifier, so there is no skew.
pub fn verify(token: &str) -> Result<Value, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
        ErrorKind::InvalidAlgorithmName => TokenError::WrongAlgorithm,
        _ => TokenError::Malformed,
    })?;
    let secret = settings::verification_secret(header.kid.as_deref())
        .map_err(TokenError::NoSecret)?
        .ok_or(TokenError::UnknownKey)?;
    let mut validation = Validation::new(ALGORITHM);
    validation.leeway = 0;
    validation.validate_nbf = true;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    let data = decode::<Value>(
        token,
        &DecodingKey::from_secret(&secret).map_err(|_| TokenError::Malformed)?,
        &validation,
    )
    .map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::WrongAlgorithm,
        ErrorKind::MissingRequiredClaim(c) => TokenError::MissingClaim(c.clone()),
        _ => TokenError::Malformed,
    })?;
    let claims = data.claims;
    // The database is the only signer, so a genuine token is never issued in the future (a
    // few seconds are allowed for rounding of the epoch by other signers' tools).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match claims.get("iat").and_then(Value::as_u64) {
        Some(iat) if iat <= now + 5 => {}
        Some(_) => return Err(TokenError::IssuedInTheFuture),
        None => return Err(TokenError::MissingClaim("iat".into())),
    }
    if claims.get("token_type").and_then(Value::as_str) != Some("access") {
        return Err(TokenError::NotAnAccessToken);
    }
    for required in ["role", "jti"] {
        if !claims.get(required).is_some_and(Value::is_string) {
            return Err(TokenError::MissingClaim(required.into()));
        }
    }
    Ok(claims)
}

/// `iss` must equal `issuer`; `aud` must be `audience` or an array containing it.
pub fn check_issuer_and_audience(
    claims: &Value,
    issuer: &str,
    audience: &str,
) -> Result<(), TokenError> {
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(TokenError::WrongIssuer);
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    };
    if aud_ok {
        Ok(())
    } else {
        Err(TokenError::WrongAudience)
    }
}

#[pgrx::pg_schema]
pub mod fluxbase {
    use pgrx::prelude::*;
    use pgrx::JsonB;

    /// Signs a claims object into a JWT (internal: EXECUTE is revoked from everyone, so only
    /// the extension's own SECURITY DEFINER functions can mint tokens).
    #[pg_extern(volatile, parallel_safe)]
    fn sign_token(claims: JsonB) -> String {
        match super::sign(&claims.0) {
            Ok(token) => token,
            Err(e) => crate::errors::raise(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                e.message(),
            ),
        }
    }
}
