//! The `auth:` section of `fluxbase.yaml`.
//!
//! Two kinds of keys. The rule keys (password policy, token lifetimes, lockout, 2FA, JWT
//! issuer and audience) belong to the database: the server writes the ones given to
//! `auth.settings` at start (`auth.apply_settings`), so every server and every SQL session
//! agree, and a key left out keeps whatever the database holds. They are validated here too,
//! with the same rules as the database, so a typo stops the server naming `auth.<key>` before
//! it connects. The server-only keys (`smtp`, `password_reset`) never reach the database.
use super::{invalid, ConfigError};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Hosts an SMTP connection may reach without TLS: the relay is on this machine.
const LOCAL_HOSTS: [&str; 3] = ["127.0.0.1", "localhost", "::1"];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub password_min_length: Option<i64>,
    pub password_require_uppercase: Option<bool>,
    pub password_require_lowercase: Option<bool>,
    pub password_require_number: Option<bool>,
    pub password_require_special: Option<bool>,
    pub password_max_age_days: Option<i64>,
    pub require_2fa_for_admins: Option<bool>,
    pub require_2fa_for_sensitive_ops: Option<bool>,
    pub access_token_expiry: Option<String>,
    pub refresh_token_expiry: Option<String>,
    pub lockout_duration: Option<String>,
    pub refresh_token_rotation: Option<bool>,
    pub max_login_attempts: Option<i64>,
    pub lockout_type: Option<String>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    /// Outgoing mail (password reset links). Without it no e-mail is sent.
    pub smtp: Option<SmtpConfig>,
    #[serde(default)]
    pub password_reset: PasswordResetConfig,
}

/// How the server reaches its SMTP relay.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// The sender, `Name <address>` or a bare address.
    pub from: String,
    pub username: Option<String>,
    /// Never logged (see the Debug impl).
    pub password: Option<String>,
    #[serde(default)]
    pub tls: SmtpTls,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .finish()
    }
}

/// `none` (plain text; only to a relay on this machine), `starttls` (upgrade on the
/// submission port, usually 587) or `tls` (TLS from the first byte, usually 465).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    #[default]
    None,
    Starttls,
    Tls,
}

/// Where the link of a password-reset e-mail points.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfig {
    /// The page of the application that takes `?token=…&type=recovery`.
    pub base_url: Option<String>,
    /// Prefixes a client's `redirect_to` must start with (see
    /// [`crate::routes::auth::password::check_redirect`]). Empty: `redirect_to` is refused.
    #[serde(default)]
    pub redirect_allowlist: Vec<String>,
}

impl AuthConfig {
    /// The rule keys that were given, as the flat object `auth.apply_settings` takes.
    /// Empty when the section sets none (then nothing is written to the database).
    pub fn database_settings(&self) -> Map<String, Value> {
        let mut out = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                out.insert(key.to_owned(), value);
            }
        };
        let int = |v: Option<i64>| v.map(Value::from);
        let boolean = |v: Option<bool>| v.map(Value::from);
        let text = |v: &Option<String>| v.clone().map(Value::from);
        put("password_min_length", int(self.password_min_length));
        put(
            "password_require_uppercase",
            boolean(self.password_require_uppercase),
        );
        put(
            "password_require_lowercase",
            boolean(self.password_require_lowercase),
        );
        put(
            "password_require_number",
            boolean(self.password_require_number),
        );
        put(
            "password_require_special",
            boolean(self.password_require_special),
        );
        put("password_max_age_days", int(self.password_max_age_days));
        put(
            "require_2fa_for_admins",
            boolean(self.require_2fa_for_admins),
        );
        put(
            "require_2fa_for_sensitive_ops",
            boolean(self.require_2fa_for_sensitive_ops),
        );
        put("access_token_expiry", text(&self.access_token_expiry));
        put("refresh_token_expiry", text(&self.refresh_token_expiry));
        put("lockout_duration", text(&self.lockout_duration));
        put(
            "refresh_token_rotation",
            boolean(self.refresh_token_rotation),
        );
        put("max_login_attempts", int(self.max_login_attempts));
        put("lockout_type", text(&self.lockout_type));
        put("jwt_issuer", text(&self.jwt_issuer));
        put("jwt_audience", text(&self.jwt_audience));
        out
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        // The database's bounds (sql/extension/10_settings.sql), refused here first so the
        // message names the yaml key: more failures is no lockout, an access token lives on in
        // its clients until it expires, a lockout under a minute locks nothing, and past a
        // year `now() + duration` (or a password age) overflows a timestamp and every sign-in
        // would fail.
        check_int("auth.password_min_length", self.password_min_length, 1, 128)?;
        check_int(
            "auth.password_max_age_days",
            self.password_max_age_days,
            0,
            3650,
        )?;
        check_int("auth.max_login_attempts", self.max_login_attempts, 1, 100)?;
        check_duration(
            "auth.access_token_expiry",
            &self.access_token_expiry,
            1,
            86_400,
        )?;
        check_duration(
            "auth.refresh_token_expiry",
            &self.refresh_token_expiry,
            1,
            YEAR,
        )?;
        check_duration("auth.lockout_duration", &self.lockout_duration, 60, YEAR)?;
        if let Some(kind) = &self.lockout_type {
            if !["ip", "email", "ip_and_email"].contains(&kind.as_str()) {
                return invalid(
                    "auth.lockout_type",
                    format!("must be one of ip, email, ip_and_email, not \"{kind}\""),
                );
            }
        }
        check_text("auth.jwt_issuer", &self.jwt_issuer)?;
        check_text("auth.jwt_audience", &self.jwt_audience)?;
        if let Some(smtp) = &self.smtp {
            smtp.validate()?;
            if self.password_reset.base_url.is_none() {
                return invalid(
                    "auth.password_reset.base_url",
                    "is required when auth.smtp is set: it is the page reset links point to",
                );
            }
        }
        self.password_reset.validate()
    }
}

impl SmtpConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let host = self.host.trim();
        if host.is_empty() {
            return invalid("auth.smtp.host", "must not be empty");
        }
        if self.port == 0 {
            return invalid("auth.smtp.port", "must be greater than 0");
        }
        if self.tls == SmtpTls::None && !LOCAL_HOSTS.contains(&host.to_ascii_lowercase().as_str()) {
            return invalid(
                "auth.smtp.tls",
                format!("must be starttls or tls for the host \"{host}\": mail (with its reset links) is sent in plain text only to a relay on this machine (127.0.0.1, localhost, ::1)"),
            );
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return invalid(
                "auth.smtp.from",
                "must be an e-mail address, optionally with a name (\"Fluxbase <no-reply@example.com>\")",
            );
        }
        match (&self.username, &self.password) {
            (Some(_), Some(password)) => {
                super::secrets::check_secret("auth.smtp.password", password)
            }
            (None, None) => Ok(()),
            (Some(_), None) => invalid("auth.smtp.password", "is required with auth.smtp.username"),
            (None, Some(_)) => invalid("auth.smtp.username", "is required with auth.smtp.password"),
        }
    }
}

impl PasswordResetConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.base_url {
            if !is_http_url(url) || url.contains('#') {
                return invalid(
                    "auth.password_reset.base_url",
                    "must be an absolute http(s) URL without a #fragment",
                );
            }
        }
        for entry in &self.redirect_allowlist {
            if !is_http_url(entry) {
                return invalid(
                    "auth.password_reset.redirect_allowlist",
                    format!("\"{entry}\" is not an absolute http(s) URL such as https://app.example.com"),
                );
            }
        }
        Ok(())
    }
}

/// `http://` or `https://`, a non-empty host, no spaces or control characters.
pub fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    !host.is_empty() && !host.starts_with(':') && url.bytes().all(|b| b.is_ascii_graphic())
}

fn check_int(key: &'static str, value: Option<i64>, min: i64, max: i64) -> Result<(), ConfigError> {
    match value {
        Some(v) if !(min..=max).contains(&v) => invalid(
            key,
            format!("must be a whole number from {min} to {max}, not {v}"),
        ),
        _ => Ok(()),
    }
}

/// A year in seconds: the longest duration setting.
const YEAR: u64 = 365 * 86_400;

/// Seconds as the largest unit that says them whole (`1m`, `24h`, `365d`).
fn duration_text(seconds: u64) -> String {
    match seconds {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `^[1-9][0-9]{0,8}(s|m|h|d)$`, as the database checks it, from `min_seconds` to
/// `max_seconds`.
fn check_duration(
    key: &'static str,
    value: &Option<String>,
    min_seconds: u64,
    max_seconds: u64,
) -> Result<(), ConfigError> {
    let Some(value) = value else {
        return Ok(());
    };
    let unit = match value.chars().last() {
        Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3_600,
        Some('d') => 86_400,
        _ => 0,
    };
    let digits = value.strip_suffix(['s', 'm', 'h', 'd']).unwrap_or_default();
    let ok = (1..=9).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if !ok {
        return invalid(
            key,
            format!("must be a positive duration like 30s, 15m, 1h or 7d, not \"{value}\""),
        );
    }
    let seconds = digits
        .parse::<u64>()
        .unwrap_or(u64::MAX)
        .saturating_mul(unit);
    if seconds > max_seconds {
        return invalid(
            key,
            format!(
                "must be at most {}, not \"{value}\"",
                duration_text(max_seconds)
            ),
        );
    }
    if seconds < min_seconds {
        return invalid(
            key,
            format!(
                "must be at least {}, not \"{value}\"",
                duration_text(min_seconds)
            ),
        );
    }
    Ok(())
}

fn check_text(key: &'static str, value: &Option<String>) -> Result<(), ConfigError> {
    match value {
        Some(v) if v.trim().is_empty() => invalid(key, "must not be empty"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, SmtpTls};
    use serde_json::json;

    const DB: &str = "database: { url: \"postgres://u:unit-test-password@127.0.0.1:5432/db\" }\n";

    fn parse(auth: &str) -> Result<Config, ConfigError> {
        Config::from_yaml_str_with_env(&format!("{DB}auth:\n{auth}"), |_| None)
    }

    fn invalid_key(auth: &str) -> &'static str {
        match parse(auth) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("{auth:?}: expected an invalid key, got {other:?}"),
        }
    }

    #[test]
    fn no_auth_section_sets_nothing() {
        let c = Config::from_yaml_str_with_env(DB, |_| None).unwrap();
        assert!(c.auth.database_settings().is_empty());
        assert!(c.auth.smtp.is_none());
        assert!(c.auth.password_reset.redirect_allowlist.is_empty());
        assert!(parse("  {}\n").unwrap().auth.database_settings().is_empty());
    }

    #[test]
    fn every_rule_key_reaches_the_database_settings() {
        let c = parse(
            r#"
  password_min_length: 14
  password_require_uppercase: true
  password_require_lowercase: false
  password_require_number: true
  password_require_special: false
  password_max_age_days: 0
  require_2fa_for_admins: true
  require_2fa_for_sensitive_ops: false
  access_token_expiry: 15m
  refresh_token_expiry: 7d
  lockout_duration: 90s
  refresh_token_rotation: true
  max_login_attempts: 5
  lockout_type: ip_and_email
  jwt_issuer: https://auth.example.com
  jwt_audience: authenticated
"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::Value::Object(c.auth.database_settings()),
            json!({
                "password_min_length": 14,
                "password_require_uppercase": true,
                "password_require_lowercase": false,
                "password_require_number": true,
                "password_require_special": false,
                "password_max_age_days": 0,
                "require_2fa_for_admins": true,
                "require_2fa_for_sensitive_ops": false,
                "access_token_expiry": "15m",
                "refresh_token_expiry": "7d",
                "lockout_duration": "90s",
                "refresh_token_rotation": true,
                "max_login_attempts": 5,
                "lockout_type": "ip_and_email",
                "jwt_issuer": "https://auth.example.com",
                "jwt_audience": "authenticated",
            })
        );
        // Only the keys given.
        let c = parse("  max_login_attempts: 3\n").unwrap();
        assert_eq!(
            serde_json::Value::Object(c.auth.database_settings()),
            json!({"max_login_attempts": 3})
        );
    }

    #[test]
    fn the_ceilings_themselves_are_allowed() {
        for yaml in [
            "  access_token_expiry: 1d\n  max_login_attempts: 100\n",
            "  access_token_expiry: 24h\n",
            "  access_token_expiry: 86400s\n",
            "  refresh_token_expiry: 365d\n  lockout_duration: 1m\n",
            "  password_max_age_days: 3650\n  password_min_length: 128\n",
        ] {
            assert!(parse(yaml).is_ok(), "{yaml}");
        }
    }

    #[test]
    fn rule_values_are_checked_by_key() {
        for (yaml, key) in [
            ("  password_min_length: 0\n", "auth.password_min_length"),
            ("  password_min_length: -3\n", "auth.password_min_length"),
            ("  max_login_attempts: 0\n", "auth.max_login_attempts"),
            ("  max_login_attempts: 101\n", "auth.max_login_attempts"),
            ("  access_token_expiry: 25h\n", "auth.access_token_expiry"),
            ("  access_token_expiry: 3650d\n", "auth.access_token_expiry"),
            (
                "  refresh_token_expiry: 999999999d\n",
                "auth.refresh_token_expiry",
            ),
            ("  lockout_duration: 1s\n", "auth.lockout_duration"),
            ("  lockout_duration: 366d\n", "auth.lockout_duration"),
            (
                "  password_max_age_days: 3651\n",
                "auth.password_max_age_days",
            ),
            ("  password_min_length: 129\n", "auth.password_min_length"),
            (
                "  password_max_age_days: -1\n",
                "auth.password_max_age_days",
            ),
            (
                "  password_max_age_days: 1000000000\n",
                "auth.password_max_age_days",
            ),
            ("  access_token_expiry: 15\n", "auth.access_token_expiry"),
            ("  access_token_expiry: 0m\n", "auth.access_token_expiry"),
            ("  access_token_expiry: 15min\n", "auth.access_token_expiry"),
            ("  refresh_token_expiry: 1w\n", "auth.refresh_token_expiry"),
            ("  lockout_duration: 015m\n", "auth.lockout_duration"),
            ("  lockout_duration: \" 15m\"\n", "auth.lockout_duration"),
            ("  lockout_duration: 1234567890s\n", "auth.lockout_duration"),
            ("  lockout_type: username\n", "auth.lockout_type"),
            ("  jwt_issuer: \"\"\n", "auth.jwt_issuer"),
            ("  jwt_audience: \" \"\n", "auth.jwt_audience"),
        ] {
            assert_eq!(invalid_key(yaml), key, "{yaml}");
            let err = parse(yaml).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
        for ok in ["60s", "15m", "1h", "7d", "31536000s"] {
            assert!(
                parse(&format!("  lockout_duration: {ok}\n")).is_ok(),
                "{ok}"
            );
        }
        for kind in ["ip", "email", "ip_and_email"] {
            assert!(
                parse(&format!("  lockout_type: {kind}\n")).is_ok(),
                "{kind}"
            );
        }
    }

    #[test]
    fn wrong_types_and_unknown_keys_are_named() {
        for (yaml, needle) in [
            ("  max_login_attempt: 5\n", "max_login_attempt"),
            (
                "  password_require_number: yes please\n",
                "password_require_number",
            ),
            ("  password_min_length: twelve\n", "password_min_length"),
            (
                "  smtp: { host: h, port: 25, from: a@b.co, tsl: tls }\n",
                "tsl",
            ),
            ("  password_reset: { base: x }\n", "base"),
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(matches!(err, ConfigError::Parse(_)), "{yaml}: {err}");
            assert!(err.to_string().contains(needle), "{yaml}: {err}");
        }
    }

    const RESET: &str = "  password_reset: { base_url: \"https://app.example.com/reset\" }\n";

    #[test]
    fn smtp_needs_tls_off_this_machine() {
        let c = parse(&format!(
            "  smtp: {{ host: 127.0.0.1, port: 2525, from: \"Fluxbase <no-reply@example.com>\" }}\n{RESET}"
        ))
        .unwrap();
        let smtp = c.auth.smtp.as_ref().unwrap();
        assert_eq!((smtp.port, smtp.tls), (2525, SmtpTls::None));
        assert!(parse(&format!(
            "  smtp: {{ host: localhost, port: 25, from: a@example.com, tls: none }}\n{RESET}"
        ))
        .is_ok());
        let key = invalid_key(&format!(
            "  smtp: {{ host: smtp.example.com, port: 25, from: a@example.com }}\n{RESET}"
        ));
        assert_eq!(key, "auth.smtp.tls");
        for tls in ["starttls", "tls"] {
            let c = parse(&format!("  smtp: {{ host: smtp.example.com, port: 587, from: a@example.com, tls: {tls}, username: u, password: smtp-test-password }}\n{RESET}")).unwrap();
            assert!(c.auth.smtp.as_ref().unwrap().tls != SmtpTls::None);
            // The SMTP password never shows in Debug output.
            assert!(!format!("{c:?}").contains("smtp-test-password"));
        }
        let err = parse(&format!(
            "  smtp: {{ host: h, port: 25, from: a@b.co, tls: ssl }}\n{RESET}"
        ))
        .unwrap_err();
        assert!(matches!(err, ConfigError::Parse(_)), "{err}");
    }

    #[test]
    fn smtp_fields_are_checked() {
        let smtp =
            |fields: &str| format!("  smtp: {{ host: 127.0.0.1, port: 25, {fields} }}\n{RESET}");
        assert_eq!(invalid_key(&smtp("from: not-an-address")), "auth.smtp.from");
        assert_eq!(
            invalid_key(&smtp("from: a@example.com, username: u")),
            "auth.smtp.password"
        );
        assert_eq!(
            invalid_key(&smtp("from: a@example.com, password: p")),
            "auth.smtp.username"
        );
        assert_eq!(
            invalid_key("  smtp: { host: \" \", port: 25, from: a@example.com }\n"),
            "auth.smtp.host"
        );
        assert_eq!(
            invalid_key(&smtp("from: a@example.com").replace("port: 25", "port: 0")),
            "auth.smtp.port"
        );
        // Reset links need somewhere to point.
        assert_eq!(
            invalid_key("  smtp: { host: 127.0.0.1, port: 25, from: a@example.com }\n"),
            "auth.password_reset.base_url"
        );
        // host, port and from are required.
        assert!(matches!(
            parse(&format!(
                "  smtp: {{ host: 127.0.0.1, from: a@example.com }}\n{RESET}"
            )),
            Err(ConfigError::Parse(_))
        ));
    }

    #[test]
    fn password_reset_urls_are_checked() {
        let c = parse(
            "  password_reset:\n    base_url: https://app.example.com/reset\n    redirect_allowlist: [\"https://app.example.com\", \"http://localhost:3000/\"]\n",
        )
        .unwrap();
        assert_eq!(c.auth.password_reset.redirect_allowlist.len(), 2);
        for bad in [
            "app.example.com/reset",
            "https://",
            "ftp://x.example",
            "https://a.example/#x",
            "https://a b.example",
        ] {
            assert_eq!(
                invalid_key(&format!("  password_reset: {{ base_url: \"{bad}\" }}\n")),
                "auth.password_reset.base_url",
                "{bad}"
            );
        }
        for bad in [
            "*.example.com",
            "https://",
            "//app.example.com",
            "https://:443",
        ] {
            assert_eq!(
                invalid_key(&format!(
                    "  password_reset: {{ redirect_allowlist: [\"{bad}\"] }}\n"
                )),
                "auth.password_reset.redirect_allowlist",
                "{bad}"
            );
        }
    }
}
