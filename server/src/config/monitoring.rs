//! `monitoring:`: the Prometheus endpoint, on its own listener so metrics (route names,
//! pool sizes, error rates) are never served on the public port.
use super::{invalid, ConfigError};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringConfig {
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Loopback by default: a scraper on the same host or a sidecar.
    #[serde(default = "default_host")]
    pub host: String,
    /// 0 picks a free port (tests). 9464 by default, not 9090: that is Prometheus' own.
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default = "default_path")]
    pub path: String,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        Self {
            enabled: default_enabled(),
            host: default_host(),
            port: default_port(),
            path: default_path(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_host() -> String {
    "127.0.0.1".to_owned()
}
fn default_port() -> u16 {
    9464
}
fn default_path() -> String {
    "/metrics".to_owned()
}

impl MonitoringConfig {
    /// `server_port`: the public port, which the metrics listener must not share.
    pub fn validate(&self, server_port: u16) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if self.host.trim().is_empty() {
            return invalid("monitoring.host", "must not be empty");
        }
        if !self.path.starts_with('/') || self.path.len() < 2 {
            return invalid("monitoring.path", "must be a path such as /metrics");
        }
        if self.port != 0 && self.port == server_port {
            return invalid(
                "monitoring.port",
                "must differ from server.port: metrics are never served on the public port",
            );
        }
        Ok(())
    }
}
