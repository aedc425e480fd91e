//! TOTP two-factor primitives: secrets (`totp-rs`), their encryption at rest (AES-256-GCM,
//! `aes-gcm`), and code checks that refuse a code from a time step already used.
use crate::errors::raise;
use crate::settings;
use aes_gcm::aead::{Aead, KeyInit, OsRng as AeadRng};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use pgrx::PgSqlErrorCode;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// RFC 6238 defaults that authenticator apps expect: SHA-1, 6 digits, 30-second steps.
const DIGITS: usize = 6;
const STEP_SECONDS: u64 = 30;
/// Codes from one step either side are accepted (clock drift on phones).
const SKEW_STEPS: i64 = 1;

fn cipher() -> Aes256Gcm {
    let material = settings::mfa_encryption_key().unwrap_or_else(|why| {
        raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            why,
        )
    });
    let key = Sha256::digest(&material);
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key))
}

pub fn encrypt(plain: &str) -> String {
    let nonce = Aes256Gcm::generate_nonce(&mut AeadRng);
    let sealed = cipher()
        .encrypt(&nonce, plain.as_bytes())
        .unwrap_or_else(|_| {
            raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                "could not encrypt the TOTP secret",
            )
        });
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    B64.encode(out)
}

pub fn decrypt(sealed: &str) -> String {
    let fail = || -> ! {
        raise(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            "a TOTP secret cannot be decrypted (was fluxbase.mfa_encryption_key changed?)",
        )
    };
    let bytes = B64.decode(sealed).unwrap_or_else(|_| fail());
    if bytes.len() < 12 {
        fail();
    }
    let (nonce, body) = bytes.split_at(12);
    let plain = cipher()
        .decrypt(Nonce::from_slice(nonce), body)
        .unwrap_or_else(|_| fail());
    String::from_utf8(plain).unwrap_or_else(|_| fail())
}

fn totp(secret_base32: &str, account: &str) -> Totp {
    let secret = Secret::try_from_base32(secret_base32).unwrap_or_else(|_| {
        raise(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            "a stored TOTP secret is not valid base32",
        )
    });
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_step_duration(STEP_SECONDS)
        .with_secret(secret)
        .with_account_name(account.replace(':', "_"))
        .with_issuer(Some("Fluxbase"))
        .build()
        .unwrap_or_else(|e| {
            raise(
                PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                format!("invalid TOTP parameters: {e}"),
            )
        })
}

fn now_step() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (now / STEP_SECONDS) as i64
}

/// The step whose code equals `code`, if it is later than `last_used_step` (so a code works
/// once, even within its own 30 seconds).
pub fn matching_step(secret_base32: &str, code: &str, last_used_step: Option<i64>) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let generator = totp(secret_base32, "check");
    let current = now_step();
    (current - SKEW_STEPS..=current + SKEW_STEPS)
        .filter(|step| last_used_step.is_none_or(|last| *step > last))
        .find(|step| {
            let expected = generator.generate(*step as u64 * STEP_SECONDS).to_string();
            bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
        })
}

#[pgrx::pg_schema]
pub mod fluxbase {
    use pgrx::prelude::*;

    /// A new random TOTP secret (160 bits), base32 as authenticator apps take it.
    #[pg_extern(volatile, parallel_safe)]
    fn totp_new_secret() -> String {
        use argon2::password_hash::rand_core::{OsRng, RngCore};
        let mut bytes = [0u8; 20];
        OsRng.fill_bytes(&mut bytes);
        totp_rs::Secret::from(bytes).to_base32()
    }

    /// The otpauth:// URI for a secret, labelled with the account's e-mail.
    #[pg_extern(immutable, parallel_safe)]
    fn totp_uri(secret_base32: &str, account: &str) -> String {
        super::totp(secret_base32, account)
            .to_url()
            .unwrap_or_else(|e| {
                crate::errors::raise(
                    PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                    format!("cannot build the otpauth URI: {e}"),
                )
            })
    }

    /// The current code of a secret (for tests and for an administrator checking a clock).
    #[pg_extern(volatile, parallel_safe)]
    fn totp_current_code(secret_base32: &str) -> String {
        super::totp(secret_base32, "check")
            .generate(super::now_step() as u64 * super::STEP_SECONDS)
            .to_string()
    }

    /// The time step a code matches, if later than `last_used_step`; NULL otherwise.
    #[pg_extern(volatile, parallel_safe)]
    fn totp_match(
        secret_base32: &str,
        code: Option<&str>,
        last_used_step: Option<i64>,
    ) -> Option<i64> {
        super::matching_step(secret_base32, code?, last_used_step)
    }

    /// Encrypts a TOTP secret with fluxbase.mfa_encryption_key.
    #[pg_extern(volatile, parallel_safe)]
    fn encrypt_secret(plain: &str) -> String {
        super::encrypt(plain)
    }

    /// Decrypts a TOTP secret encrypted by encrypt_secret.
    #[pg_extern(volatile, parallel_safe)]
    fn decrypt_secret(sealed: &str) -> String {
        super::decrypt(sealed)
    }
}
