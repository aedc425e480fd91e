//! Rate limiting: per client IP (global and per endpoint) and per bearer token.
//!
//! What is counted, for every request but `/health` (load balancers poll it):
//! - the global budget (`rate_limiting.per_minute` / `per_hour`) of the client IP
//!   ([`crate::client_ip`]: the peer, or what a trusted proxy recorded);
//! - the endpoint's budget of that IP, when its path has one (the auth endpoints by default);
//! - the per-user budget of the bearer token, when the request carries a user token.
//!
//! Why the per-user key is a hash of the whole token and not its `sub` claim: the server does
//! not hold the signing secret (the extension verifies tokens inside PostgreSQL), so a claim
//! read here is unverified. Keyed on `sub`, anyone could forge tokens naming a victim and use
//! up the victim's budget. A token hash cannot be aimed at anyone else's budget without
//! holding their token, and spreading requests over many made-up tokens gains nothing: each
//! request still counts against its IP's budget, and such tokens are refused (401). The
//! unverified payload only decides *whether* the per-user budget applies: tokens without a
//! `sub` (anon and service API keys, shared by every client of an app) are left to the IP
//! budgets, else one client could exhaust the anon key's budget for all. Claiming no `sub`
//! gains a forger nothing over sending no token at all. A user with several sessions has one
//! budget per token; how many tokens one can obtain is itself limited (sign-in, refresh).
//!
//! Stores: `memory` keeps GCRA cells in this process (`governor`); `postgres` keeps fixed
//! window counters in the database (`fluxbase.rate_limit_hit`, an UNLOGGED table), so every
//! server sharing the database shares the budgets. A store that cannot be reached fails open
//! (logged): the request needs the same database anyway and will fail on its own.
use crate::config::rate_limiting::{canonical_endpoint, Budget};
use crate::config::{RateLimitConfig, RateLimitStore};
use crate::error::ApiError;
use crate::observability::{RequestContext, RouteTemplate};
use crate::AppState;
use axum::extract::{MatchedPath, OriginalUri, Request, State};
use axum::http::{header, StatusCode};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use deadpool_postgres::Pool;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

type KeyedLimiter = governor::RateLimiter<
    String,
    DefaultKeyedStateStore<String>,
    DefaultClock,
    StateInformationMiddleware,
>;

/// The SQL of one round trip for all of a request's budgets (sql/extension/65_rate_limit.sql).
pub const HIT_SQL: &str = "SELECT h.allowed, h.remaining, h.reset_seconds \
    FROM unnest($1::text[], $2::int[], $3::int[]) WITH ORDINALITY AS l(k, n, w, i), \
    LATERAL fluxbase.rate_limit_hit(l.k, l.n, l.w) AS h ORDER BY l.i";
/// Drops windows that have ended (run now and then by one task per server).
pub const PURGE_SQL: &str = "SELECT fluxbase.rate_limit_purge()";

/// Which budget refused a request; the metrics label (never an IP or a user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// `ip` or `user`.
    pub scope: &'static str,
    /// The endpoint's configured path, or `global`.
    pub endpoint: String,
}

/// The outcome for one request: the headers to send and, when refused, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the reported budget is whole again (refused: until the next request
    /// may pass).
    pub reset_seconds: u64,
    pub rejected: Option<Rejection>,
}

impl Decision {
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (IETF draft), and
    /// `Retry-After` when refused.
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("ratelimit-limit", HeaderValue::from(self.limit));
        h.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
        h.insert("ratelimit-reset", HeaderValue::from(self.reset_seconds));
        if self.rejected.is_some() {
            h.insert("retry-after", HeaderValue::from(self.reset_seconds));
        }
        h
    }
}

/// Marks a response the limiter refused, for the metrics (never the client's key).
#[derive(Debug, Clone)]
pub struct Refused(pub Rejection);

/// 429 in the error shape; [`enforce`] adds `Retry-After` and the `RateLimit-*` headers.
pub fn too_many_requests() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        "Too many requests; retry after the time in Retry-After",
    )
}

/// The middleware: counts the request and refuses it (429) or runs it, adding the
/// `RateLimit-*` headers either way.
///
/// Where it sits (see [`crate::app`]): inside the CORS layer, so a browser can read a 429
/// (its CORS headers are added like any error's) and preflights are not counted; inside the
/// request middleware, which gave it the client IP and turns the 429 into the error shape
/// with the request id.
pub async fn enforce(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (Some(limiter), Some(ip)) = (
        state.rate_limiter(),
        req.extensions()
            .get::<RequestContext>()
            .and_then(|c| c.client_ip),
    ) else {
        return next.run(req).await;
    };
    // The full path: nested routers see it with their prefix stripped.
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map(|u| u.0.path().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    let token = bearer(req.headers()).map(str::to_owned);
    let Some(decision) = limiter.hit(ip, &path, token.as_deref()).await else {
        return next.run(req).await;
    };
    let mut response = match &decision.rejected {
        Some(rejection) => {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(|m| RouteTemplate(m.as_str().to_owned()));
            let mut refused = too_many_requests().into_response();
            refused.extensions_mut().insert(Refused(rejection.clone()));
            if let Some(route) = route {
                refused.extensions_mut().insert(route);
            }
            refused
        }
        None => next.run(req).await,
    };
    for (name, value) in &decision.headers() {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// The bearer token of a request for the per-user budget (the extractors check the header's
/// form; here a malformed one just gets no per-user budget).
fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// One budget window to check for a request.
#[derive(Debug, Clone)]
struct Check {
    scope: &'static str,
    endpoint: String,
    key: String,
    limit: u32,
    window: u32,
}

/// The configured limiter, shared by all requests.
pub struct RateLimiter {
    global: Budget,
    user: Budget,
    endpoints: BTreeMap<String, Budget>,
    store: Store,
}

enum Store {
    /// One keyed limiter per (limit, window).
    Memory(HashMap<(u32, u32), Arc<KeyedLimiter>>),
    Postgres(Pool),
}

impl RateLimiter {
    /// `None` when `rate_limiting.enabled` is false.
    pub fn new(config: &RateLimitConfig, pool: &Pool) -> Option<Arc<RateLimiter>> {
        if !config.enabled {
            return None;
        }
        let global = config.global_budget();
        let user = config.user_budget();
        let endpoints = config.effective_endpoints();
        let store = match config.store {
            RateLimitStore::Memory => {
                let mut limiters = HashMap::new();
                let all = [global, user]
                    .into_iter()
                    .chain(endpoints.values().copied());
                for budget in all {
                    for (limit, window) in budget.windows() {
                        limiters
                            .entry((limit, window))
                            .or_insert_with(|| Arc::new(memory_limiter(limit, window)));
                    }
                }
                Store::Memory(limiters)
            }
            RateLimitStore::Postgres => Store::Postgres(pool.clone()),
        };
        let limiter = Arc::new(RateLimiter {
            global,
            user,
            endpoints,
            store,
        });
        limiter.spawn_housekeeping();
        Some(limiter)
    }

    /// Counts one request of `client` to `path` (carrying `token`) and decides. `None`:
    /// the path is not limited (`/health`).
    pub async fn hit(&self, client: IpAddr, path: &str, token: Option<&str>) -> Option<Decision> {
        if path == "/health" {
            return None;
        }
        let checks = self.checks(client, path, token);
        Some(match &self.store {
            Store::Memory(limiters) => memory_decide(limiters, &checks),
            Store::Postgres(pool) => match postgres_decide(pool, &checks).await {
                Ok(decision) => decision,
                Err(e) => {
                    tracing::warn!(error = %e, "rate-limit store unavailable; request let through");
                    return None;
                }
            },
        })
    }

    /// The windows of a request, strictest (the endpoint's) first.
    fn checks(&self, client: IpAddr, path: &str, token: Option<&str>) -> Vec<Check> {
        let ip = client_key(client);
        let mut checks = Vec::new();
        let endpoint = canonical_endpoint(path);
        if let Some(budget) = self.endpoints.get(endpoint) {
            for (limit, window) in budget.windows() {
                checks.push(Check {
                    scope: "ip",
                    endpoint: endpoint.to_owned(),
                    key: format!("ip:{endpoint}:{ip}"),
                    limit,
                    window,
                });
            }
        }
        for (limit, window) in self.global.windows() {
            checks.push(Check {
                scope: "ip",
                endpoint: "global".to_owned(),
                key: format!("ip:global:{ip}"),
                limit,
                window,
            });
        }
        if let Some(user_key) = token.and_then(user_key) {
            for (limit, window) in self.user.windows() {
                checks.push(Check {
                    scope: "user",
                    endpoint: "global".to_owned(),
                    key: format!("user:{user_key}"),
                    limit,
                    window,
                });
            }
        }
        checks
    }

    /// Memory: forget idle keys every minute (the limiters would otherwise keep every IP
    /// ever seen). Postgres: drop ended windows every five minutes.
    fn spawn_housekeeping(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let every = match self.store {
            Store::Memory(_) => Duration::from_secs(60),
            Store::Postgres(_) => Duration::from_secs(300),
        };
        // Only inside a runtime (router tests build states without one).
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(this) = weak.upgrade() else { return };
                match &this.store {
                    Store::Memory(limiters) => {
                        for limiter in limiters.values() {
                            limiter.retain_recent();
                            limiter.shrink_to_fit();
                        }
                    }
                    Store::Postgres(pool) => {
                        if let Ok(client) = pool.get().await {
                            if let Err(e) = client.execute(PURGE_SQL, &[]).await {
                                tracing::warn!(error = %e, "rate-limit purge failed");
                            }
                        }
                    }
                }
            }
        });
    }
}

/// The IP part of a key: an IPv4 address as it is; an IPv6 address by its /64 network. Why:
/// one IPv6 host is normally given a whole /64 and may use any address in it, so keyed per
/// address it would have 2^64 budgets.
pub fn client_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let network = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{network}/64")
        }
    }
}

/// The per-user key of a bearer token: a hash of the whole token, for user tokens only (a
/// payload with a `sub`; see the module comment). Never the token itself, which would then
/// sit in memory or in the database's counters table.
pub fn user_key(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let has_sub = claims
        .get("sub")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !has_sub {
        return None;
    }
    let digest = Sha256::digest(token.as_bytes());
    Some(digest.iter().take(16).map(|b| format!("{b:02x}")).collect())
}

/// A GCRA limiter allowing `limit` requests per `window` seconds, all of them at once
/// (burst = limit), one more every `window / limit`.
fn memory_limiter(limit: u32, window: u32) -> KeyedLimiter {
    let burst = NonZeroU32::new(limit).unwrap_or(NonZeroU32::MIN);
    let period = Duration::from_secs(u64::from(window)) / burst.get();
    let quota = governor::Quota::with_period(period)
        .unwrap_or_else(|| governor::Quota::per_second(burst))
        .allow_burst(burst);
    governor::RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>()
}

fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs();
    if d.subsec_nanos() > 0 {
        s + 1
    } else {
        s
    }
}

fn memory_decide(limiters: &HashMap<(u32, u32), Arc<KeyedLimiter>>, checks: &[Check]) -> Decision {
    let mut tightest: Option<Decision> = None;
    for check in checks {
        let Some(limiter) = limiters.get(&(check.limit, check.window)) else {
            continue;
        };
        match limiter.check_key(&check.key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = check.limit.saturating_sub(remaining);
                let per_cell = Duration::from_secs(u64::from(check.window)) / check.limit.max(1);
                let decision = Decision {
                    limit: check.limit,
                    remaining,
                    reset_seconds: ceil_secs(per_cell * used),
                    rejected: None,
                };
                if tightest
                    .as_ref()
                    .is_none_or(|t| decision.remaining < t.remaining)
                {
                    tightest = Some(decision);
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(limiter.clock().now());
                return Decision {
                    limit: check.limit,
                    remaining: 0,
                    reset_seconds: ceil_secs(wait).max(1),
                    rejected: Some(Rejection {
                        scope: check.scope,
                        endpoint: check.endpoint.clone(),
                    }),
                };
            }
        }
    }
    tightest.unwrap_or(Decision {
        limit: 0,
        remaining: 0,
        reset_seconds: 0,
        rejected: None,
    })
}

async fn postgres_decide(pool: &Pool, checks: &[Check]) -> Result<Decision, String> {
    let keys: Vec<&str> = checks.iter().map(|c| c.key.as_str()).collect();
    let limits: Vec<i32> = checks
        .iter()
        .map(|c| i32::try_from(c.limit).unwrap_or(i32::MAX))
        .collect();
    let windows: Vec<i32> = checks
        .iter()
        .map(|c| i32::try_from(c.window).unwrap_or(i32::MAX))
        .collect();
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let statement = client
        .prepare_cached(HIT_SQL)
        .await
        .map_err(|e| e.to_string())?;
    let rows = client
        .query(&statement, &[&keys, &limits, &windows])
        .await
        .map_err(|e| e.to_string())?;
    let mut tightest: Option<Decision> = None;
    let mut refused: Option<Decision> = None;
    for (check, row) in checks.iter().zip(&rows) {
        let allowed: bool = row.try_get(0).map_err(|e| e.to_string())?;
        let remaining: i32 = row.try_get(1).map_err(|e| e.to_string())?;
        let reset: f64 = row.try_get(2).map_err(|e| e.to_string())?;
        let reset_seconds = reset.max(0.0).ceil() as u64;
        let decision = Decision {
            limit: check.limit,
            remaining: u32::try_from(remaining.max(0)).unwrap_or(0),
            reset_seconds,
            rejected: None,
        };
        if !allowed {
            // Of several refusing windows, the one that lasts longest is when to retry.
            if refused
                .as_ref()
                .is_none_or(|r| reset_seconds > r.reset_seconds)
            {
                refused = Some(Decision {
                    remaining: 0,
                    reset_seconds: reset_seconds.max(1),
                    rejected: Some(Rejection {
                        scope: check.scope,
                        endpoint: check.endpoint.clone(),
                    }),
                    ..decision
                });
            }
        } else if tightest
            .as_ref()
            .is_none_or(|t| decision.remaining < t.remaining)
        {
            tightest = Some(decision);
        }
    }
    Ok(refused.or(tightest).unwrap_or(Decision {
        limit: 0,
        remaining: 0,
        reset_seconds: 0,
        rejected: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn token(payload: &str) -> String {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.sig", b.encode("{}"), b.encode(payload))
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a = client_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = client_key("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(a, b);
        assert_ne!(a, client_key("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(client_key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
    }

    #[test]
    fn user_key_only_for_user_tokens_and_never_the_token() {
        let t = token(r#"{"sub":"u1","role":"authenticated"}"#);
        let k = user_key(&t).unwrap();
        assert_eq!(k.len(), 32);
        assert!(!t.contains(&k));
        // Same claims, another signature: another key (a forger cannot aim at a victim).
        assert_ne!(user_key(&format!("{t}x")).unwrap(), k);
        assert_eq!(user_key(&token(r#"{"role":"anon"}"#)), None);
        assert_eq!(user_key(&token(r#"{"sub":""}"#)), None);
        assert_eq!(user_key("garbage"), None);
    }

    fn limiter(config: &str) -> Arc<RateLimiter> {
        let config: RateLimitConfig = serde_norway::from_str(config).unwrap();
        let pool = crate::db::create_pool(
            &serde_norway::from_str("url: postgres://u@127.0.0.1/db").unwrap(),
            Duration::from_secs(1),
        )
        .unwrap();
        RateLimiter::new(&config, &pool).unwrap()
    }

    #[tokio::test]
    async fn endpoint_budget_is_stricter_and_aliases_share_it() {
        let l = limiter(
            "per_minute: 100\nper_hour: 1000\nendpoints: { /api/v1/auth/login: { per_minute: 2 } }",
        );
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let first = l.hit(ip, "/api/v1/auth/login", None).await.unwrap();
        assert_eq!((first.limit, first.remaining), (2, 1));
        assert!(l
            .hit(ip, "/api/v1/auth/signin", None)
            .await
            .unwrap()
            .rejected
            .is_none());
        let refused = l.hit(ip, "/api/v1/auth/login", None).await.unwrap();
        assert_eq!(
            refused.rejected,
            Some(Rejection {
                scope: "ip",
                endpoint: "/api/v1/auth/login".to_owned()
            })
        );
        assert!((29..=30).contains(&refused.reset_seconds), "{refused:?}");
        assert_eq!(
            refused.headers()["retry-after"],
            refused.reset_seconds.to_string().as_str()
        );
        // Another IP, another path: untouched.
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l
            .hit(other, "/api/v1/auth/login", None)
            .await
            .unwrap()
            .rejected
            .is_none());
        let table = l.hit(ip, "/api/v1/tables/notes", None).await.unwrap();
        assert!(table.rejected.is_none());
        assert_eq!(table.limit, 100);
        assert!(l.hit(ip, "/health", None).await.is_none());
    }

    #[tokio::test]
    async fn user_budget_follows_the_token_across_ips() {
        let l = limiter("per_minute: 100\nper_hour: 1000\nper_user: { per_minute: 2 }");
        let t = token(r#"{"sub":"u1"}"#);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l
            .hit(a, "/api/v1/auth/user", Some(&t))
            .await
            .unwrap()
            .rejected
            .is_none());
        assert!(l
            .hit(b, "/api/v1/auth/user", Some(&t))
            .await
            .unwrap()
            .rejected
            .is_none());
        let refused = l.hit(b, "/api/v1/auth/user", Some(&t)).await.unwrap();
        assert_eq!(refused.rejected.unwrap().scope, "user");
        let other = token(r#"{"sub":"u2"}"#);
        assert!(l
            .hit(b, "/api/v1/auth/user", Some(&other))
            .await
            .unwrap()
            .rejected
            .is_none());
    }
}
