//! The extension's configuration parameters (GUCs), all in one place with the reason for each.
//!
//! Policy settings (token lifetimes, issuer, audience, password rules) live in the table
//! `auth.settings` so they can be changed in SQL; only what must stay secret or must be fixed
//! per cluster is a GUC.
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

/// The HMAC key tokens are signed with. `SUSET` so only a superuser can set it (in
/// postgresql.conf, `ALTER SYSTEM` or `ALTER DATABASE ... SET`), and `SUPERUSER_ONLY` so that
/// `SHOW`, `current_setting()` and `pg_settings` hide it from every other role, the server's
/// among them. The extension reads the C variable directly, so it needs no SQL access.
pub static JWT_SECRET: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// The `kid` header written into new tokens, so a later key rotation can tell keys apart.
pub static JWT_KEY_ID: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"k1"));

/// Keys that are no longer used for signing but still verify tokens until those expire, as
/// `kid:secret,kid:secret`. Rotation: move the current `kid:secret` here, set a new secret and
/// key id, reload; nobody is logged out. Superuser-only and hidden like the secret.
pub static JWT_PREVIOUS_KEYS: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(None);

/// The key TOTP secrets are encrypted with at rest (any string of at least 32 bytes; SHA-256
/// of it is the AES-256 key). Superuser-only, so a dump of auth.mfa_factors read through the
/// server's role, or a stolen backup without the config, yields no usable TOTP secret.
pub static MFA_ENCRYPTION_KEY: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(None);

/// The shortest signing secret accepted: HS256 with a shorter key is guessable offline.
pub const MIN_SECRET_BYTES: usize = 32;

pub fn init() {
    GucRegistry::define_string_guc(
        c"fluxbase.mfa_encryption_key",
        c"Key (at least 32 bytes) that encrypts TOTP secrets at rest.",
        c"Superuser-only: hidden from SHOW, current_setting and pg_settings for other roles.",
        &MFA_ENCRYPTION_KEY,
        GucContext::Suset,
        GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
    );
    GucRegistry::define_string_guc(
        c"fluxbase.jwt_previous_keys",
        c"Retired signing keys still accepted for verification, as kid:secret,kid:secret.",
        c"Superuser-only: hidden from SHOW, current_setting and pg_settings for other roles.",
        &JWT_PREVIOUS_KEYS,
        GucContext::Suset,
        GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
    );
    GucRegistry::define_string_guc(
        c"fluxbase.jwt_secret",
        c"HMAC secret used to sign and verify Fluxbase tokens (at least 32 bytes).",
        c"Superuser-only: hidden from SHOW, current_setting and pg_settings for other roles.",
        &JWT_SECRET,
        GucContext::Suset,
        GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
    );
    GucRegistry::define_string_guc(
        c"fluxbase.jwt_key_id",
        c"Key id (kid) written into the header of tokens signed with fluxbase.jwt_secret.",
        c"",
        &JWT_KEY_ID,
        GucContext::Suset,
        GucFlags::default(),
    );
}

/// The signing secret, or an error that says what to do about it.
pub fn jwt_secret() -> Result<Vec<u8>, &'static str> {
    match JWT_SECRET.get() {
        None => Err("fluxbase.jwt_secret is not set; a superuser must set it in postgresql.conf"),
        Some(s) if s.as_bytes().len() < MIN_SECRET_BYTES => {
            Err("fluxbase.jwt_secret is shorter than 32 bytes; set a longer random secret")
        }
        Some(s) => Ok(s.into_bytes()),
    }
}

pub fn jwt_key_id() -> String {
    JWT_KEY_ID
        .get()
        .map(|k| k.to_string_lossy().into_owned())
        .unwrap_or_else(|| "k1".into())
}

/// The secret that verifies a token signed under `kid`: the current one for the current key id
/// (or no kid), a retired one from `fluxbase.jwt_previous_keys`, or None for an unknown kid.
pub fn verification_secret(kid: Option<&str>) -> Result<Option<Vec<u8>>, &'static str> {
    let current_kid = jwt_key_id();
    match kid {
        None => jwt_secret().map(Some),
        Some(k) if k == current_kid => jwt_secret().map(Some),
        Some(k) => {
            let previous = JWT_PREVIOUS_KEYS
                .get()
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(previous
                .split(',')
                .filter_map(|pair| pair.trim().split_once(':'))
                .find(|(id, secret)| *id == k && secret.len() >= MIN_SECRET_BYTES)
                .map(|(_, secret)| secret.as_bytes().to_vec()))
        }
    }
}

/// The TOTP encryption key material, or an error that says what to do about it.
pub fn mfa_encryption_key() -> Result<Vec<u8>, &'static str> {
    match MFA_ENCRYPTION_KEY.get() {
        None => Err(
            "fluxbase.mfa_encryption_key is not set; a superuser must set it in postgresql.conf",
        ),
        Some(s) if s.as_bytes().len() < MIN_SECRET_BYTES => {
            Err("fluxbase.mfa_encryption_key is shorter than 32 bytes; set a longer random key")
        }
        Some(s) => Ok(s.into_bytes()),
    }
}

/// Everything that decides which tokens verify: the secret, the key id and the retired keys.
/// When it changes, remembered verifications are forgotten (see `token_cache`).
pub fn key_fingerprint() -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    for part in [JWT_SECRET.get(), JWT_KEY_ID.get(), JWT_PREVIOUS_KEYS.get()] {
        if let Some(value) = part {
            out.extend_from_slice(value.as_bytes());
        }
        out.push(0);
    }
    out
}
