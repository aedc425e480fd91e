//! The `database:` section: where the server logs in, with which password, over which TLS.
//!
//! `sslmode` may be written in the URL (as libpq reads it) and as `database.ssl_mode`; when
//! both are given they must agree. With `require` or `verify-full`, the URL must carry it as
//! well: the same URL is what an operator pastes into psql or pg_dump, and a URL without it
//! would silently connect those in plain text. tokio-postgres knows only `disable`, `prefer`
//! and `require`, so the URL's `sslmode` is taken out before it parses the rest, and the
//! verification is ours ([`crate::tls::database_client_config`]).
use super::secrets::check_secret;
use super::{invalid, ConfigError};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Option<SslMode> {
        Some(match text {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether a connection that cannot be encrypted is refused.
    pub fn requires_tls(self) -> bool {
        matches!(self, SslMode::Require | SslMode::VerifyFull)
    }
}

const SSL_MODES: &str = "disable, prefer, require or verify-full";

/// The database the server logs in to, as a low-privilege member of `fluxbase_authenticator`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// A `postgres://` URL (or a `key=value` connection string). May hold a password, so it is
    /// never logged (see the Debug impl).
    pub url: String,
    /// The password, when it is not in the URL (no URL encoding needed; `_FILE` friendly).
    pub password: Option<String>,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// `disable`, `prefer`, `require` or `verify-full`; default: the URL's `sslmode`, else
    /// `prefer`.
    pub ssl_mode: Option<String>,
    /// PEM CA certificates for `verify-full` (default: the Mozilla roots).
    pub ssl_root_cert: Option<String>,
}

fn default_max_connections() -> usize {
    10
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &"<redacted>")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("max_connections", &self.max_connections)
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_root_cert", &self.ssl_root_cert)
            .finish()
    }
}

/// The URL without its `sslmode`, and the `sslmode` it named.
fn split_sslmode(url: &str) -> (String, Option<String>) {
    let mut found = None;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_owned(), None);
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|param| match param.strip_prefix("sslmode=") {
                Some(mode) => {
                    found = Some(mode.to_owned());
                    false
                }
                None => true,
            })
            .collect();
        let url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        (url, found)
    } else {
        let kept: Vec<&str> = url
            .split_whitespace()
            .filter(|part| match part.strip_prefix("sslmode=") {
                Some(mode) => {
                    found = Some(mode.to_owned());
                    false
                }
                None => true,
            })
            .collect();
        (kept.join(" "), found)
    }
}

impl DatabaseConfig {
    /// The effective mode (valid after validation).
    pub fn ssl_mode(&self) -> SslMode {
        let from_url = split_sslmode(&self.url).1;
        self.ssl_mode
            .as_deref()
            .or(from_url.as_deref())
            .and_then(SslMode::parse)
            .unwrap_or(SslMode::Prefer)
    }

    /// The connection settings for tokio-postgres: the URL (without `sslmode`), the password
    /// key, and the transport's TLS requirement.
    pub fn connect_config(&self) -> Result<tokio_postgres::Config, String> {
        let (url, _) = split_sslmode(&self.url);
        let mut pg: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
        if let Some(password) = &self.password {
            pg.password(password);
        }
        pg.ssl_mode(match self.ssl_mode() {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        });
        Ok(pg)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.url.trim().is_empty() {
            return invalid("database.url", "must not be empty");
        }
        let (_, url_mode) = split_sslmode(&self.url);
        if let Some(mode) = &url_mode {
            if SslMode::parse(mode).is_none() {
                return invalid(
                    "database.url",
                    format!("sslmode=\"{mode}\" must be {SSL_MODES}"),
                );
            }
        }
        // Parse now so a bad URL stops the server at start. The parser's message does not
        // repeat the URL (which holds the password).
        let pg = match self.connect_config() {
            Ok(pg) => pg,
            Err(e) => {
                return invalid(
                    "database.url",
                    format!("not a valid PostgreSQL connection URL ({e})"),
                )
            }
        };
        if let Some(mode) = &self.ssl_mode {
            let Some(parsed) = SslMode::parse(mode) else {
                return invalid(
                    "database.ssl_mode",
                    format!("must be {SSL_MODES}, not \"{mode}\""),
                );
            };
            match &url_mode {
                Some(in_url) if in_url != mode => {
                    return invalid(
                        "database.ssl_mode",
                        format!("is {mode} but database.url says sslmode={in_url}; make them agree"),
                    )
                }
                None if parsed.requires_tls() => {
                    return invalid(
                        "database.url",
                        format!("has no sslmode while database.ssl_mode is {mode}: add sslmode={mode} to the URL, so every tool that uses it connects with TLS too"),
                    )
                }
                _ => {}
            }
        }
        if let Some(root) = &self.ssl_root_cert {
            if self.ssl_mode() != SslMode::VerifyFull {
                return invalid(
                    "database.ssl_root_cert",
                    "is only used with ssl_mode: verify-full (prefer and require encrypt without checking the certificate)",
                );
            }
            crate::tls::load_certs("database.ssl_root_cert", root).map_err(|e| {
                ConfigError::Invalid {
                    key: "database.ssl_root_cert",
                    message: e.to_string(),
                }
            })?;
        }
        if self.max_connections == 0 {
            return invalid("database.max_connections", "must be greater than 0");
        }
        if let Some(password) = &self.password {
            if pg_url_has_password(&self.url) {
                return invalid(
                    "database.password",
                    "is set while database.url holds a password too; keep one",
                );
            }
            check_secret("database.password", password)?;
        } else if let Some(password) = pg.get_password() {
            check_secret("database.url", &String::from_utf8_lossy(password))?;
        }
        Ok(())
    }
}

fn pg_url_has_password(url: &str) -> bool {
    let (url, _) = split_sslmode(url);
    url.parse::<tokio_postgres::Config>()
        .map(|pg| pg.get_password().is_some())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_split_from_the_url() {
        assert_eq!(
            split_sslmode("postgres://u@h/db?sslmode=verify-full&application_name=x"),
            (
                "postgres://u@h/db?application_name=x".to_owned(),
                Some("verify-full".to_owned())
            )
        );
        assert_eq!(
            split_sslmode("postgres://u@h/db?sslmode=require"),
            ("postgres://u@h/db".to_owned(), Some("require".to_owned()))
        );
        assert_eq!(
            split_sslmode("host=h user=u sslmode=disable"),
            ("host=h user=u".to_owned(), Some("disable".to_owned()))
        );
        assert_eq!(split_sslmode("postgres://u@h/db").1, None);
    }
}
