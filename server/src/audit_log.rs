//! The audit log file (`logging.audit_log_file`): one JSON line per security event, and the
//! security alerts (`security.alert`).
//!
//! Where events come from, and why two sources: the events a client causes over HTTP
//! (sign-in, sign-up, sign-out, refresh, password resets, 2FA changes) are written by the
//! handlers, which alone know the user agent and the request id. Administrator actions
//! (`auth.create_user`, `auth.delete_user`, `auth.set_role`, …) and lockouts happen in SQL,
//! where the server sees nothing; the extension records them in `auth.events`, and
//! [`spawn_database_feed`] copies them here by polling `fluxbase.security_events_after(id)`.
//! Polling by id rather than LISTEN/NOTIFY: a notification sent while the server was down
//! or reconnecting is lost, an id is not. The poll re-reads a short tail of ids it has
//! already seen, so an event whose transaction committed after a later id was read is not
//! skipped. Each server tails alone: with several servers each file has every admin event.
//!
//! What is never written: passwords, tokens, TOTP codes, secrets, `Authorization`, cookies.
//! An event carries ids, the e-mail an attempt named, the IP, the user agent and the outcome.
use crate::config::LoggingConfig;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One security event.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    /// `auth.login`, `admin.user_delete`, …
    pub event: String,
    /// `success`, `failure`, `locked`, `mfa_required`, …
    pub outcome: String,
    pub actor_id: Option<String>,
    /// Who ran the statement, for events from SQL (the login role).
    pub actor_role: Option<String>,
    pub target_id: Option<String>,
    /// The e-mail an auth attempt named (normalised by the caller or as given).
    pub email: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// `http` or `database`.
    pub source: &'static str,
    pub details: Value,
    /// When it happened, RFC 3339 (now when empty).
    pub time: Option<String>,
}

/// The `logging.audit_events` name an event is selected by.
pub fn category(event: &str) -> &str {
    match event {
        "auth.2fa_enable" | "auth.2fa_disable" | "auth.2fa_verify" => "auth.2fa",
        "admin.user_unban" => "admin.user_ban",
        e if e.starts_with("admin.")
            && !matches!(
                e,
                "admin.user_create" | "admin.user_delete" | "admin.role_change" | "admin.user_ban"
            ) =>
        {
            "admin.other"
        }
        e => e,
    }
}

/// The audit log and the alert counters. Present even when the file is off: alerts still go
/// to the server log.
pub struct AuditLog {
    config: LoggingConfig,
    file: Option<Mutex<std::fs::File>>,
    alerts: Mutex<AlertCounters>,
}

#[derive(Default)]
struct AlertCounters {
    /// Failure times per key (`ip:…`, `email:…`) within the window.
    failures: HashMap<String, VecDeque<Instant>>,
    /// Keys alerted on, until the window of the alert has passed (one alert per window).
    alerted: HashMap<String, Instant>,
}

/// The most keys the alert counters track; past it the oldest are dropped (a flood of
/// spoofed e-mails must not grow memory without bound).
const MAX_ALERT_KEYS: usize = 100_000;

impl AuditLog {
    /// Opens (appends to, creating with mode 0600) the file when `logging.audit_enabled`.
    pub fn open(config: &LoggingConfig) -> std::io::Result<Arc<AuditLog>> {
        let file = match (&config.audit_enabled, &config.audit_log_file) {
            (true, Some(path)) => {
                let mut options = std::fs::OpenOptions::new();
                options.create(true).append(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                Some(Mutex::new(options.open(path)?))
            }
            _ => None,
        };
        Ok(Arc::new(AuditLog {
            config: config.clone(),
            file,
            alerts: Mutex::new(AlertCounters::default()),
        }))
    }

    /// Writes the event (when selected) and raises an alert when it crosses a threshold.
    pub fn record(&self, event: AuditEvent) {
        self.write(&event);
        self.check_alerts(&event);
    }

    fn write(&self, event: &AuditEvent) {
        let Some(file) = &self.file else { return };
        if !self.config.selects(category(&event.event)) {
            return;
        }
        let time = event.time.clone().unwrap_or_else(now_rfc3339);
        let line = json!({
            "time": time,
            "event": event.event,
            "outcome": event.outcome,
            "actor_id": event.actor_id,
            "actor_role": event.actor_role,
            "target_id": event.target_id,
            "email": event.email,
            "ip": event.ip,
            "user_agent": event.user_agent,
            "request_id": event.request_id,
            "source": event.source,
            "details": event.details,
        });
        let mut text = line.to_string();
        text.push('\n');
        // One write of the whole line to a file opened O_APPEND: lines never interleave.
        let written = match file.lock() {
            Ok(mut f) => f.write_all(text.as_bytes()),
            Err(_) => Err(std::io::Error::other("audit log lock poisoned")),
        };
        if let Err(e) = written {
            tracing::error!(error = %e, event = %event.event, "cannot write the audit log");
        }
    }

    /// Failed sign-ins (password step or 2FA step) per IP and per e-mail.
    fn check_alerts(&self, event: &AuditEvent) {
        let failed = matches!(event.event.as_str(), "auth.login" | "auth.2fa_verify")
            && matches!(event.outcome.as_str(), "failure" | "locked");
        if !failed {
            return;
        }
        let threshold = self.config.alerts.failed_logins;
        let window = Duration::from_secs(threshold.window_seconds);
        let now = Instant::now();
        let mut keys = Vec::new();
        if let Some(ip) = &event.ip {
            keys.push(("ip", ip.clone()));
        }
        if let Some(email) = &event.email {
            keys.push(("email", email.clone()));
        }
        let mut fired = Vec::new();
        {
            let Ok(mut counters) = self.alerts.lock() else {
                return;
            };
            if counters.failures.len() > MAX_ALERT_KEYS {
                counters
                    .failures
                    .retain(|_, times| times.back().is_some_and(|t| now - *t < window));
                counters.alerted.retain(|_, until| *until > now);
            }
            for (kind, value) in keys {
                let key = format!("{kind}:{value}");
                let times = counters.failures.entry(key.clone()).or_default();
                times.push_back(now);
                while times.front().is_some_and(|t| now - *t >= window) {
                    times.pop_front();
                }
                let count = times.len();
                let already = counters.alerted.get(&key).is_some_and(|until| *until > now);
                if count >= threshold.threshold as usize && !already {
                    counters.alerted.insert(key, now + window);
                    fired.push((kind, value, count));
                }
            }
        }
        for (kind, value, count) in fired {
            tracing::warn!(
                target: "fluxbase::security",
                alert = "failed_logins",
                key_kind = kind,
                count,
                window_seconds = threshold.window_seconds,
                "security.alert"
            );
            let (ip, email) = match kind {
                "ip" => (Some(value), None),
                _ => (None, Some(value)),
            };
            self.write(&AuditEvent {
                event: "security.alert".to_owned(),
                outcome: "raised".to_owned(),
                ip,
                email,
                source: "http",
                details: json!({
                    "alert": "failed_logins",
                    "key": kind,
                    "count": count,
                    "threshold": threshold.threshold,
                    "window_seconds": threshold.window_seconds,
                }),
                ..AuditEvent::default()
            });
        }
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The SQL of the database feed (sql/extension/66_security_feed.sql).
pub const HEAD_SQL: &str = "SELECT fluxbase.security_events_head()";
pub const AFTER_SQL: &str =
    "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
    event, outcome, actor_id::text, target_id::text, ip, details::text, login_role \
    FROM fluxbase.security_events_after($1, 500)";

/// How many ids behind the newest seen one each poll looks again (see the module comment).
const REREAD_IDS: i64 = 200;

/// Copies administrator and lockout events from `auth.events` into the audit log, every
/// `logging.audit_poll_interval_ms`, until the audit log is dropped. Starts at the newest
/// event (history is not replayed). Errors are logged and retried at the next tick.
pub fn spawn_database_feed(audit: &Arc<AuditLog>, pool: deadpool_postgres::Pool) {
    if audit.file.is_none() {
        return;
    }
    let every = Duration::from_millis(audit.config.audit_poll_interval_ms);
    let weak = Arc::downgrade(audit);
    tokio::spawn(async move {
        // Events up to `start` happened before this server started: not replayed.
        let mut start: Option<i64> = None;
        let mut newest: i64 = 0;
        let mut seen: HashSet<i64> = HashSet::new();
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            let Some(audit) = weak.upgrade() else { return };
            let Ok(client) = pool.get().await else {
                continue;
            };
            let Some(start) = start else {
                match client.query_one(HEAD_SQL, &[]).await {
                    Ok(row) => {
                        start = row.try_get::<_, i64>(0).ok();
                        newest = start.unwrap_or(0);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "audit feed: cannot read the newest event")
                    }
                }
                continue;
            };
            let from = (newest - REREAD_IDS).max(start);
            let rows = match client.query(AFTER_SQL, &[&from]).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "audit feed: cannot read events");
                    continue;
                }
            };
            for row in rows {
                let Ok(id) = row.try_get::<_, i64>(0) else {
                    continue;
                };
                if id <= start || !seen.insert(id) {
                    continue;
                }
                newest = newest.max(id);
                let details: Option<String> = row.try_get(7).ok().flatten();
                audit.record(AuditEvent {
                    time: row.try_get(1).ok(),
                    event: row.try_get(2).unwrap_or_default(),
                    outcome: row.try_get(3).unwrap_or_default(),
                    actor_id: row.try_get(4).ok().flatten(),
                    target_id: row.try_get(5).ok().flatten(),
                    ip: row.try_get(6).ok().flatten(),
                    details: details
                        .and_then(|d| serde_json::from_str(&d).ok())
                        .unwrap_or(Value::Null),
                    actor_role: row.try_get(8).ok().flatten(),
                    source: "database",
                    ..AuditEvent::default()
                });
            }
            seen.retain(|id| *id > newest - REREAD_IDS);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        assert_eq!(category("auth.login"), "auth.login");
        assert_eq!(category("auth.2fa_enable"), "auth.2fa");
        assert_eq!(category("admin.user_delete"), "admin.user_delete");
        assert_eq!(category("admin.user_unban"), "admin.user_ban");
        assert_eq!(category("admin.api_key_issue"), "admin.other");
    }

    #[test]
    fn alert_once_per_window_at_the_threshold() {
        let dir = std::env::temp_dir().join(format!("fluxbase-audit-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.log");
        let config: LoggingConfig = serde_norway::from_str(&format!(
            "audit_enabled: true\naudit_log_file: {}\nalerts: {{ failed_logins: {{ threshold: 3, window_seconds: 60 }} }}",
            path.display()
        ))
        .unwrap();
        let log = AuditLog::open(&config).unwrap();
        for _ in 0..5 {
            log.record(AuditEvent {
                event: "auth.login".to_owned(),
                outcome: "failure".to_owned(),
                ip: Some("192.0.2.9".to_owned()),
                source: "http",
                ..AuditEvent::default()
            });
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 6, "{text}");
        let alerts: Vec<&Value> = lines
            .iter()
            .filter(|l| l["event"] == "security.alert")
            .collect();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0]["ip"], "192.0.2.9");
        assert_eq!(alerts[0]["details"]["count"], 3);
        // The alert follows the third failure.
        assert_eq!(lines[3]["event"], "security.alert");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
