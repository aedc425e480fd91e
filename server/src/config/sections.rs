//! The small sections of `fluxbase.yaml`: `graphql` and `logging`.
use super::{invalid, ConfigError};
use serde::Deserialize;

/// `graphql:`. The GraphQL endpoint is not built yet; the key exists so deployments can state
/// it and `fluxbase check` can gate on it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlConfig {
    /// Schema introspection: handy in development, a map of the API for attackers in
    /// production (`fluxbase check` fails when it is on).
    #[serde(default)]
    pub introspection: bool,
}

/// `logging:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// `trace`, `debug`, `info`, `warn` or `error`. `FLUXBASE_LOG` (a full tracing filter such
    /// as `info,fluxbase_server=debug`) wins when set.
    #[serde(default = "default_level")]
    pub level: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: default_level(),
        }
    }
}

fn default_level() -> String {
    "info".to_owned()
}

const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

impl LoggingConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
        Ok(())
    }
}
