//! `logging:`: the log level, the audit log file and the security alerts.
//!
//! The audit log is a JSON-lines file of security events, apart from the access log (which
//! is on stdout and may be sampled or shipped elsewhere): one line per sign-in, sign-out,
//! sign-up, password reset, 2FA change, lockout and administrator action, with time, actor,
//! IP, user agent and outcome. See [`crate::audit_log`].
use super::{invalid, ConfigError};
use serde::Deserialize;
use std::path::PathBuf;

/// Every event name `logging.audit_events` may select.
pub const AUDIT_EVENTS: [&str; 13] = [
    "auth.login",
    "auth.logout",
    "auth.signup",
    "auth.refresh",
    "auth.password_reset",
    "auth.lockout",
    "auth.2fa",
    "admin.user_create",
    "admin.user_delete",
    "admin.role_change",
    "admin.user_ban",
    "admin.other",
    "security.alert",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// `trace`, `debug`, `info`, `warn` or `error`. `FLUXBASE_LOG` (a full tracing filter such
    /// as `info,fluxbase_server=debug`) wins when set.
    #[serde(default = "default_level")]
    pub level: String,
    #[serde(default)]
    pub audit_enabled: bool,
    /// Appended to (created with mode 0600 when missing). Required when `audit_enabled`.
    #[serde(default)]
    pub audit_log_file: Option<PathBuf>,
    /// Which events are written (names from [`AUDIT_EVENTS`]); default all.
    #[serde(default)]
    pub audit_events: Option<Vec<String>>,
    /// How often (milliseconds) the server reads new administrator events from
    /// `auth.events` (they happen in SQL, not over HTTP).
    #[serde(default = "default_poll_ms")]
    pub audit_poll_interval_ms: u64,
    #[serde(default)]
    pub alerts: AlertsConfig,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: default_level(),
            audit_enabled: false,
            audit_log_file: None,
            audit_events: None,
            audit_poll_interval_ms: default_poll_ms(),
            alerts: AlertsConfig::default(),
        }
    }
}

fn default_level() -> String {
    "info".to_owned()
}

const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

fn default_poll_ms() -> u64 {
    1000
}

/// `logging.alerts`: thresholds that raise a `security.alert` event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Failed sign-ins (wrong password, unknown e-mail, locked, bad 2FA code) from one IP or
    /// against one e-mail within `window_seconds`.
    #[serde(default = "default_failed_logins")]
    pub failed_logins: Threshold,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            failed_logins: default_failed_logins(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub threshold: u32,
    pub window_seconds: u64,
}

fn default_failed_logins() -> Threshold {
    Threshold {
        threshold: 10,
        window_seconds: 300,
    }
}

impl LoggingConfig {
    /// Whether `event` (e.g. `auth.login`) is selected.
    pub fn selects(&self, event: &str) -> bool {
        self.audit_enabled
            && match &self.audit_events {
                None => true,
                Some(list) => list.iter().any(|e| e == event),
            }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !LEVELS.contains(&self.level.as_str()) {
            return invalid(
                "logging.level",
                format!(
                    "must be one of {}, not \"{}\"",
                    LEVELS.join(", "),
                    self.level
                ),
            );
        }
        if self.audit_enabled && self.audit_log_file.is_none() {
            return invalid(
                "logging.audit_log_file",
                "is required when logging.audit_enabled is true",
            );
        }
        if let Some(list) = &self.audit_events {
            for e in list {
                if !AUDIT_EVENTS.contains(&e.as_str()) {
                    return invalid(
                        "logging.audit_events",
                        format!("unknown event \"{e}\" (known: {})", AUDIT_EVENTS.join(", ")),
                    );
                }
            }
        }
        if self.audit_poll_interval_ms == 0 || self.audit_poll_interval_ms > 60_000 {
            return invalid(
                "logging.audit_poll_interval_ms",
                "must be between 1 and 60000",
            );
        }
        let t = self.alerts.failed_logins;
        if t.threshold == 0 {
            return invalid(
                "logging.alerts.failed_logins.threshold",
                "must be greater than 0",
            );
        }
        if t.window_seconds == 0 || t.window_seconds > 86_400 {
            return invalid(
                "logging.alerts.failed_logins.window_seconds",
                "must be between 1 and 86400",
            );
        }
        Ok(())
    }
}
