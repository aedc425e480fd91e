//! `rate_limiting:` and `server.trusted_proxies` of `fluxbase.yaml`.
//!
//! On by default. Why these defaults: the global budget (per client IP, and per bearer token)
//! is far above what one person's browser or app sends, so only scripts notice it; the auth
//! endpoints get the guide's much stricter budgets, since each request there costs an argon2
//! hash (or sends an e-mail) and is what a guesser or a spammer hammers. The database's own
//! lockout (`max_login_attempts`) still counts failures per account; these limits also cap
//! successful and unknown-account attempts.
//!
//! `endpoints:` entries are merged over the defaults (an entry replaces the default of its
//! path), so adding one endpoint never silently drops the protection of the others. Aliases
//! share one budget: `/api/v1/auth/signin` is `/api/v1/auth/login` and `/api/v1/auth/logout`
//! is `/api/v1/auth/signout` (else the alias would double the budget).
use super::{invalid, ConfigError};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Where the counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitStore {
    /// In this process (the `governor` crate, GCRA): each server counts alone.
    Memory,
    /// In PostgreSQL (`fluxbase.rate_limit_hit`, fixed windows): every server sharing the
    /// database shares the budget.
    Postgres,
}

/// One budget: at most `per_minute` requests a minute and `per_hour` an hour (either may be
/// absent, not both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[serde(default)]
    pub per_minute: Option<u32>,
    #[serde(default)]
    pub per_hour: Option<u32>,
}

impl Budget {
    pub const fn new(per_minute: u32, per_hour: u32) -> Budget {
        Budget {
            per_minute: Some(per_minute),
            per_hour: Some(per_hour),
        }
    }

    /// The (limit, window seconds) pairs of this budget.
    pub fn windows(&self) -> Vec<(u32, u32)> {
        let mut out = Vec::with_capacity(2);
        if let Some(n) = self.per_minute {
            out.push((n, 60));
        }
        if let Some(n) = self.per_hour {
            out.push((n, 3600));
        }
        out
    }

    fn validate(&self, key: &'static str, what: &str) -> Result<(), ConfigError> {
        if self.per_minute.is_none() && self.per_hour.is_none() {
            return invalid(key, format!("{what}: give per_minute, per_hour or both"));
        }
        if self.per_minute == Some(0) || self.per_hour == Some(0) {
            return invalid(
                key,
                format!(
                    "{what}: limits must be greater than 0 (to block a path, do not expose it)"
                ),
            );
        }
        Ok(())
    }
}

/// `rate_limiting:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    #[serde(default = "default_store")]
    pub store: RateLimitStore,
    /// Every request of one client IP (`/health` excepted: load balancers poll it).
    #[serde(default = "default_per_minute")]
    pub per_minute: u32,
    #[serde(default = "default_per_hour")]
    pub per_hour: u32,
    /// Every request carrying one bearer token (the per-user budget; see
    /// `crate::rate_limit` for why the token and not its claimed `sub`). Defaults to the
    /// global numbers.
    #[serde(default)]
    pub per_user: Option<Budget>,
    /// Stricter budgets per path (exact paths), per client IP, on top of the global one.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Budget>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: default_enabled(),
            store: default_store(),
            per_minute: default_per_minute(),
            per_hour: default_per_hour(),
            per_user: None,
            endpoints: BTreeMap::new(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_store() -> RateLimitStore {
    RateLimitStore::Memory
}
fn default_per_minute() -> u32 {
    300
}
fn default_per_hour() -> u32 {
    5000
}

/// The default per-endpoint budgets (per client IP).
pub fn default_endpoints() -> BTreeMap<String, Budget> {
    [
        ("/api/v1/auth/login", Budget::new(5, 30)),
        ("/api/v1/auth/signup", Budget::new(3, 20)),
        ("/api/v1/auth/password/reset", Budget::new(3, 10)),
        ("/api/v1/auth/password/reset/confirm", Budget::new(5, 30)),
        ("/api/v1/auth/password/change", Budget::new(5, 30)),
        ("/api/v1/auth/refresh", Budget::new(30, 300)),
        ("/api/v1/auth/2fa/verify", Budget::new(5, 30)),
    ]
    .into_iter()
    .map(|(path, budget)| (path.to_owned(), budget))
    .collect()
}

/// The path whose budget a request path uses (aliases share one).
pub fn canonical_endpoint(path: &str) -> &str {
    match path {
        "/api/v1/auth/signin" => "/api/v1/auth/login",
        "/api/v1/auth/logout" => "/api/v1/auth/signout",
        other => other,
    }
}

/// The fixed paths an `endpoints:` key may name besides concrete `/api/v1/tables/…` and
/// `/api/v1/rpc/…` paths. A typo would otherwise leave the intended path unprotected.
const KNOWN_PATHS: [&str; 18] = [
    "/api/v1/auth/signup",
    "/api/v1/auth/signin",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/signout",
    "/api/v1/auth/logout",
    "/api/v1/auth/user",
    "/api/v1/auth/config",
    "/api/v1/auth/password/reset",
    "/api/v1/auth/password/reset/confirm",
    "/api/v1/auth/password/change",
    "/api/v1/auth/2fa/setup",
    "/api/v1/auth/2fa/enable",
    "/api/v1/auth/2fa/disable",
    "/api/v1/auth/2fa/status",
    "/api/v1/auth/2fa/verify",
    "/api/v1/graphql",
    "/api/v1/rpc",
];

impl RateLimitConfig {
    /// The per-user budget (the global numbers unless `per_user` is given).
    pub fn user_budget(&self) -> Budget {
        self.per_user
            .unwrap_or(Budget::new(self.per_minute, self.per_hour))
    }

    /// The global (per IP) budget.
    pub fn global_budget(&self) -> Budget {
        Budget::new(self.per_minute, self.per_hour)
    }

    /// The defaults with the configured entries merged over them, keyed by canonical path.
    pub fn effective_endpoints(&self) -> BTreeMap<String, Budget> {
        let mut all = default_endpoints();
        for (path, budget) in &self.endpoints {
            all.insert(canonical_endpoint(path).to_owned(), *budget);
        }
        all
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.per_minute == 0 {
            return invalid("rate_limiting.per_minute", "must be greater than 0");
        }
        if self.per_hour == 0 {
            return invalid("rate_limiting.per_hour", "must be greater than 0");
        }
        if let Some(user) = &self.per_user {
            user.validate("rate_limiting.per_user", "the per-user budget")?;
        }
        for (path, budget) in &self.endpoints {
            let concrete = ["/api/v1/tables/", "/api/v1/rpc/"]
                .iter()
                .any(|p| path.starts_with(p) && path.len() > p.len());
            if !KNOWN_PATHS.contains(&path.as_str()) && !concrete {
                return invalid(
                    "rate_limiting.endpoints",
                    format!("\"{path}\" is not a route of the API (give the exact path, e.g. /api/v1/auth/login)"),
                );
            }
            budget.validate("rate_limiting.endpoints", path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_merge() {
        let c = RateLimitConfig::default();
        assert!(c.enabled);
        assert_eq!(c.store, RateLimitStore::Memory);
        let e = c.effective_endpoints();
        assert_eq!(e["/api/v1/auth/login"], Budget::new(5, 30));
        assert!(e.contains_key("/api/v1/auth/2fa/verify"));
        let mut c = RateLimitConfig::default();
        c.endpoints
            .insert("/api/v1/auth/signin".to_owned(), Budget::new(2, 9));
        let e = c.effective_endpoints();
        assert_eq!(e["/api/v1/auth/login"], Budget::new(2, 9));
        assert!(!e.contains_key("/api/v1/auth/signin"));
        assert_eq!(e["/api/v1/auth/signup"], Budget::new(3, 20));
        assert_eq!(c.user_budget(), Budget::new(300, 5000));
    }

    #[test]
    fn refusals_name_the_key() {
        let mut c = RateLimitConfig::default();
        c.endpoints
            .insert("/api/v1/auth/logn".to_owned(), Budget::new(2, 9));
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("rate_limiting.endpoints") && err.contains("logn"),
            "{err}"
        );
        let mut c = RateLimitConfig::default();
        c.endpoints.insert(
            "/api/v1/auth/login".to_owned(),
            Budget {
                per_minute: None,
                per_hour: None,
            },
        );
        assert!(c.validate().is_err());
        let c = RateLimitConfig {
            per_minute: 0,
            ..RateLimitConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("per_minute"));
        let mut c = RateLimitConfig::default();
        c.endpoints
            .insert("/api/v1/tables/notes".to_owned(), Budget::new(1, 2));
        assert!(c.validate().is_ok());
    }
}
