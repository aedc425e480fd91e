//! Password hashing with argon2id (the `argon2` crate), at OWASP's recommended parameters.
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::OnceLock;

/// Longest password accepted, in bytes. Refused before hashing so a huge body cannot make the
/// database spend seconds in argon2.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// OWASP: argon2id, 19 MiB of memory, 2 passes, 1 lane.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing cannot fail for these inputs")
        .to_string()
}

/// A hash of nothing in particular, verified against when the account does not exist so that
/// an unknown e-mail costs the same time as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash("fluxbase-dummy-password-for-timing"))
}

/// True when `password` matches `stored`. With no stored hash (unknown account) it still
/// runs a full verification and returns false.
pub fn verify(stored: Option<&str>, password: &str) -> bool {
    let (phc, real) = match stored {
        Some(s) => (s, true),
        None => (dummy_hash(), false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let ok = hasher()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && real
}

/// True when a stored hash was made with other parameters than today's (an older cost, or
/// another algorithm) and should be replaced on the next successful sign-in.
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return true;
    };
    let current = hasher();
    let p = current.params();
    parsed.algorithm.as_str() != "argon2id"
        || parsed.version != Some(0x13)
        || parsed.params.get_decimal("m") != Some(p.m_cost())
        || parsed.params.get_decimal("t") != Some(p.t_cost())
        || parsed.params.get_decimal("p") != Some(p.p_cost())
}

#[pgrx::pg_schema]
pub mod fluxbase {
    use pgrx::prelude::*;

    /// argon2id PHC string for a password (internal: only the auth functions call it).
    #[pg_extern(volatile, parallel_safe)]
    fn hash_password(password: &str) -> String {
        if password.len() > super::MAX_PASSWORD_BYTES {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_STRING_DATA_RIGHT_TRUNCATION,
                "password is longer than 1024 bytes"
            );
        }
        super::hash(password)
    }

    /// Whether a stored hash uses older parameters and should be re-hashed.
    #[pg_extern(immutable, parallel_safe)]
    fn password_needs_rehash(stored_hash: &str) -> bool {
        super::needs_rehash(stored_hash)
    }

    /// A fresh opaque token (32 random bytes, hex): refresh, reset and challenge tokens.
    #[pg_extern(volatile, parallel_safe)]
    fn random_token() -> String {
        use argon2::password_hash::rand_core::RngCore;
        let mut bytes = [0u8; 32];
        super::OsRng.fill_bytes(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether a password matches a stored hash; a NULL hash costs a full dummy verification.
    #[pg_extern(volatile, parallel_safe)]
    fn verify_password(stored_hash: Option<&str>, password: Option<&str>) -> bool {
        let password = password.unwrap_or("");
        if password.len() > super::MAX_PASSWORD_BYTES {
            return false;
        }
        super::verify(stored_hash, password)
    }
}
