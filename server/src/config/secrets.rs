//! Rules for the secrets of `fluxbase.yaml` (the database password, the SMTP password):
//! not too short, not a well-known default, and (for `fluxbase check`) not written literally
//! in the file.
//!
//! Why a minimum length and a deny-list rather than an entropy estimate: both are predictable
//! for an operator (the message says exactly what to change) and catch the passwords that
//! scanners try first. The server's other secret, the JWT signing key, lives only inside
//! PostgreSQL (`fluxbase.jwt_secret`, checked by the extension and `Dockerfile.postgres`).
use super::{invalid, ConfigError};
use serde_norway::Value;

/// The shortest password accepted for a service account.
pub const MIN_SECRET_LENGTH: usize = 12;

/// Passwords from documentation, images and tutorials (compared case-insensitively).
const KNOWN_DEFAULTS: [&str; 16] = [
    "password",
    "password123",
    "postgres",
    "postgrespassword",
    "changeme",
    "change-me",
    "changeit",
    "secret",
    "supersecret",
    "admin",
    "fluxbase",
    "fluxbase_server",
    "your-super-secret-and-long-postgres-password",
    "your-password",
    "123456789012",
    "qwertyuiop",
];

/// Refuses a well-known or too-short secret, naming the key (never the value).
pub fn check_secret(key: &'static str, value: &str) -> Result<(), ConfigError> {
    if KNOWN_DEFAULTS
        .iter()
        .any(|d| d.eq_ignore_ascii_case(value.trim()))
    {
        return invalid(
            key,
            "is a well-known default password; set a random one (e.g. openssl rand -base64 32)",
        );
    }
    let length = value.chars().count();
    if length < MIN_SECRET_LENGTH {
        return invalid(
            key,
            format!(
                "the password is too short ({length} characters, at least {MIN_SECRET_LENGTH})"
            ),
        );
    }
    Ok(())
}

/// The secret keys whose value is written literally in the file (not through `${VAR}`):
/// `raw` is the file before interpolation.
pub fn inline_secrets(raw: &str) -> Vec<&'static str> {
    let Ok(root) = serde_norway::from_str::<Value>(raw) else {
        return Vec::new();
    };
    let get = |path: &[&str]| -> Option<String> {
        let mut node = &root;
        for part in path {
            node = node.get(part)?;
        }
        node.as_str().map(str::to_owned)
    };
    let literal = |text: &str| !text.is_empty() && !text.contains("${");
    let mut out = Vec::new();
    if let Some(url) = get(&["database", "url"]) {
        if url_password(&url).is_some_and(literal) {
            out.push("database.url");
        }
    }
    if get(&["database", "password"]).is_some_and(|p| literal(&p)) {
        out.push("database.password");
    }
    if get(&["auth", "smtp", "password"]).is_some_and(|p| literal(&p)) {
        out.push("auth.smtp.password");
    }
    out
}

/// The password part of `scheme://user:password@host…`, or of `password=…`, as written.
fn url_password(url: &str) -> Option<&str> {
    if let Some(rest) = url.split_once("://").map(|(_, r)| r) {
        let userinfo = rest.split_once('@')?.0;
        return userinfo.split_once(':').map(|(_, p)| p);
    }
    url.split_whitespace()
        .find_map(|part| part.strip_prefix("password="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_secrets() {
        assert!(check_secret("k", "postgres").is_err());
        assert!(check_secret("k", "ChangeMe").is_err());
        let err = check_secret("database.password", "short-pw").unwrap_err();
        assert!(err.to_string().contains("database.password"), "{err}");
        assert!(!err.to_string().contains("short-pw"), "{err}");
        assert!(check_secret("k", "a-long-random-password").is_ok());
    }

    #[test]
    fn inline_detection() {
        let raw = "database: { url: \"postgres://u:literal-password@h/db\" }\nauth: { smtp: { password: \"${SMTP}\" } }";
        assert_eq!(inline_secrets(raw), ["database.url"]);
        let raw = "database: { url: \"postgres://u:${PW}@h/db\", password: x }";
        assert_eq!(inline_secrets(raw), ["database.password"]);
        assert!(inline_secrets("database: { url: \"postgres://u@h/db\" }").is_empty());
        assert_eq!(url_password("host=h password=abc user=u"), Some("abc"));
    }
}
