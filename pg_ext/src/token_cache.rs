//! Remembering tokens this backend has already verified.
//!
//! Why: verifying a token (base64, JSON, HMAC) is the largest part of what `auth.authenticate`
//! costs, and a pooled connection sees the same user's token request after request. Whether a
//! given token string has a valid signature, algorithm, key id and token type under a given
//! key set can never change, so that result is remembered, per backend and bounded. Everything
//! that can change is still checked on every request: the times (`exp`, `nbf`) against the
//! clock here, and revocation, session, user, issuer and audience in the database. A change of
//! any signing key (secret, key id, retired keys) empties the cache.
use crate::jwt::{self, TokenError};
use crate::settings;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;

/// At most this many tokens are remembered; past it the cache starts afresh.
const CAPACITY: usize = 512;

pub struct Verified {
    pub claims: Value,
    /// The claims as JSON text, published as `request.jwt.claims`.
    pub json: String,
}

struct Entry {
    claims: Value,
    json: String,
    exp: u64,
    nbf: Option<u64>,
}

#[derive(Default)]
struct Cache {
    keys: Vec<u8>,
    entries: HashMap<String, Entry>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The time checks a remembered token must still pass (the same rules as `jwt::verify`).
fn still_timely(exp: u64, nbf: Option<u64>, now: u64) -> Result<(), TokenError> {
    if exp < now {
        return Err(TokenError::Expired);
    }
    if nbf.is_some_and(|nbf| nbf > now) {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

/// The claims of `token` if it verifies, from the cache when this backend has verified it
/// before under the same keys.
pub fn verify(token: &str) -> Result<Verified, TokenError> {
    let keys = settings::key_fingerprint();
    let now = now();
    let hit = CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.keys != keys {
            cache.entries.clear();
            cache.keys = keys;
        }
        cache.entries.get(token).map(|e| {
            still_timely(e.exp, e.nbf, now).map(|_| Verified {
                claims: e.claims.clone(),
                json: e.json.clone(),
            })
        })
    });
    if let Some(result) = hit {
        return result;
    }
    let claims = jwt::verify(token)?;
    let json = claims.to_string();
    let entry = Entry {
        exp: claims.get("exp").and_then(Value::as_u64).unwrap_or(0),
        nbf: claims.get("nbf").and_then(Value::as_u64),
        claims: claims.clone(),
        json: json.clone(),
    };
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.entries.len() >= CAPACITY {
            cache.entries.clear();
        }
        cache.entries.insert(token.to_owned(), entry);
    });
    Ok(Verified { claims, json })
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;
    use pgrx::prelude::*;

    #[pg_test]
    fn remembered_tokens_still_expire() {
        assert!(still_timely(100, None, 100).is_ok());
        assert_eq!(still_timely(99, None, 100), Err(TokenError::Expired));
        assert_eq!(
            still_timely(200, Some(150), 100),
            Err(TokenError::NotYetValid)
        );
        assert!(still_timely(200, Some(100), 100).is_ok());
    }

    #[pg_test]
    fn a_key_change_forgets_every_token() {
        let token = Spi::get_one::<String>(
            "SELECT fluxbase.sign_token(jsonb_build_object('role', 'anon', 'iat', extract(epoch from now())::bigint - 5, \
             'exp', extract(epoch from now())::bigint + 600, 'iss', 'fluxbase', 'aud', 'authenticated', \
             'jti', gen_random_uuid(), 'token_type', 'access'))",
        )
        .unwrap()
        .unwrap();
        assert!(verify(&token).is_ok());
        assert!(
            verify(&token).is_ok(),
            "the second, remembered, verification"
        );
        Spi::run("SET fluxbase.jwt_secret = 'another-secret-that-is-long-enough-to-use'").unwrap();
        assert_eq!(
            verify(&token).err(),
            Some(TokenError::BadSignature),
            "a remembered token outlived its key"
        );
    }
}
