//! The small sections of `fluxbase.yaml`: `graphql` (`logging` is in logging.rs).
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
