//! The edge keys of `fluxbase.yaml`: `server.cors` and `security.headers` (the body limit and
//! the request timeout are plain numbers on [`super::ServerConfig`]).
//!
//! Why so strict about origins: CORS matching is byte-exact (a browser sends
//! `https://app.example.com`, never `https://App.example.com/` or `https://app.example.com:443`),
//! so an origin written any other way would silently never match. Such entries are refused at
//! start instead, naming `server.cors.allowed_origins`.
use super::{invalid, ConfigError};
use axum::http::{HeaderName, HeaderValue, Method};
use serde::Deserialize;

/// The longest preflight cache a browser honours (Firefox; Chromium caps at 2 hours).
const MAX_CORS_MAX_AGE: u64 = 86_400;

/// Cross-origin access for browsers. No `allowed_origins` (the default): no CORS headers at
/// all, so browsers keep the same-origin policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins (`scheme://host[:port]`), or the single entry `"*"` (any origin, only
    /// without credentials). `null` is never allowed.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default = "default_cors_methods")]
    pub allowed_methods: Vec<String>,
    #[serde(default = "default_cors_headers")]
    pub allowed_headers: Vec<String>,
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long (seconds) a browser may cache a preflight answer.
    #[serde(default = "default_cors_max_age")]
    pub max_age: u64,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            allowed_methods: default_cors_methods(),
            allowed_headers: default_cors_headers(),
            allow_credentials: false,
            max_age: default_cors_max_age(),
        }
    }
}

fn default_cors_methods() -> Vec<String> {
    ["GET", "POST", "PATCH", "DELETE"]
        .map(str::to_owned)
        .to_vec()
}

/// What the Supabase client libraries send on API calls.
fn default_cors_headers() -> Vec<String> {
    [
        "authorization",
        "content-type",
        "prefer",
        "range",
        "apikey",
        "x-client-info",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn default_cors_max_age() -> u64 {
    600
}

impl CorsConfig {
    /// Whether any CORS header is sent at all.
    pub fn enabled(&self) -> bool {
        !self.allowed_origins.is_empty()
    }

    /// `allowed_origins: ["*"]`.
    pub fn allows_any_origin(&self) -> bool {
        self.allowed_origins.iter().any(|o| o == "*")
    }

    /// The allowed methods, parsed (valid after [`CorsConfig::validate`]).
    pub fn methods(&self) -> Vec<Method> {
        self.allowed_methods
            .iter()
            .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
            .collect()
    }

    /// The allowed request headers, parsed and lower-cased.
    pub fn headers(&self) -> Vec<HeaderName> {
        self.allowed_headers
            .iter()
            .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
            .collect()
    }

    /// The allowed origins as header values (empty for `"*"`).
    pub fn origins(&self) -> Vec<HeaderValue> {
        self.allowed_origins
            .iter()
            .filter(|o| *o != "*")
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        const ORIGINS: &str = "server.cors.allowed_origins";
        if self.allows_any_origin() {
            if self.allowed_origins.len() > 1 {
                return invalid(ORIGINS, "\"*\" must be the only entry when it is used");
            }
            if self.allow_credentials {
                return invalid(
                    "server.cors",
                    "allowed_origins: [\"*\"] cannot be combined with allow_credentials: true \
                     (any web site could make credentialed requests); list the origins instead",
                );
            }
        }
        for (i, origin) in self.allowed_origins.iter().enumerate() {
            if origin != "*" {
                check_origin(origin).map_err(|message| ConfigError::Invalid {
                    key: ORIGINS,
                    message: format!("\"{origin}\": {message}"),
                })?;
            }
            if self.allowed_origins[..i].contains(origin) {
                return invalid(ORIGINS, format!("lists \"{origin}\" twice"));
            }
        }
        if self.allowed_methods.is_empty() && self.enabled() {
            return invalid(
                "server.cors.allowed_methods",
                "must name at least one method",
            );
        }
        for method in &self.allowed_methods {
            let token = !method.is_empty()
                && method.bytes().all(|b| b.is_ascii_uppercase() || b == b'-')
                && Method::from_bytes(method.as_bytes()).is_ok();
            if !token || method == "*" {
                return invalid(
                    "server.cors.allowed_methods",
                    format!("\"{method}\" is not an upper-case HTTP method name such as GET"),
                );
            }
        }
        for name in &self.allowed_headers {
            if name == "*" || HeaderName::from_bytes(name.as_bytes()).is_err() {
                return invalid(
                    "server.cors.allowed_headers",
                    format!("\"{name}\" is not a header name (wildcards are not allowed)"),
                );
            }
        }
        if self.max_age > MAX_CORS_MAX_AGE {
            return invalid(
                "server.cors.max_age",
                format!("must be at most {MAX_CORS_MAX_AGE} seconds (browsers cap it)"),
            );
        }
        Ok(())
    }
}

/// An origin exactly as a browser serialises it: `http(s)://host[:port]`, lower case, no
/// path, no default port.
fn check_origin(origin: &str) -> Result<(), String> {
    if origin.eq_ignore_ascii_case("null") {
        return Err("the \"null\" origin (sandboxed frames, file: pages) is never allowed".into());
    }
    let (scheme, rest) = origin
        .split_once("://")
        .ok_or("must be of the form https://host[:port]")?;
    if scheme != "https" && scheme != "http" {
        return Err("the scheme must be http or https, in lower case".into());
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ', '*']) {
        return Err("must be scheme://host[:port] only, without a path or a trailing /".into());
    }
    if rest.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("must be in lower case (browsers send origins in lower case)".into());
    }
    // `[::1]` alone has colons inside the brackets and no port.
    let bracketed_without_port = rest.starts_with('[') && rest.ends_with(']');
    if let Some((host, port)) = rest.rsplit_once(':').filter(|_| !bracketed_without_port) {
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or("the port must be a number from 1 to 65535")?;
        if (scheme == "https" && port == 443) || (scheme == "http" && port == 80) {
            return Err(format!(
                "leave out the default port (browsers send {scheme}://{host})"
            ));
        }
        if host.is_empty() {
            return Err("has no host".into());
        }
    }
    if HeaderValue::from_str(origin).is_err() {
        return Err("contains characters that cannot be sent in a header".into());
    }
    Ok(())
}

/// The `security:` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    #[serde(default)]
    pub headers: SecurityHeadersConfig,
}

/// Headers sent on every response, errors included.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityHeadersConfig {
    /// The API serves JSON, never pages: by default nothing may load, frame or run.
    #[serde(default = "default_csp")]
    pub content_security_policy: String,
    /// `DENY` or `SAMEORIGIN`.
    #[serde(default = "default_x_frame_options")]
    pub x_frame_options: String,
    #[serde(default = "default_referrer_policy")]
    pub referrer_policy: String,
    /// `Strict-Transport-Security`. Sent only when the server itself speaks TLS
    /// (`server.tls.enabled`).
    #[serde(default)]
    pub hsts: Option<HstsConfig>,
}

impl Default for SecurityHeadersConfig {
    fn default() -> Self {
        Self {
            content_security_policy: default_csp(),
            x_frame_options: default_x_frame_options(),
            referrer_policy: default_referrer_policy(),
            hsts: None,
        }
    }
}

fn default_csp() -> String {
    "default-src 'none'; frame-ancestors 'none'".to_owned()
}
fn default_x_frame_options() -> String {
    "DENY".to_owned()
}
fn default_referrer_policy() -> String {
    "strict-origin-when-cross-origin".to_owned()
}

/// The referrer policies a browser knows, without `unsafe-url` (which sends full URLs, query
/// strings with filter values included, to every other site).
const REFERRER_POLICIES: [&str; 7] = [
    "no-referrer",
    "no-referrer-when-downgrade",
    "origin",
    "origin-when-cross-origin",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
];

/// `Strict-Transport-Security: max-age=<max_age>[; includeSubDomains][; preload]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HstsConfig {
    #[serde(default = "default_hsts_max_age")]
    pub max_age: u64,
    #[serde(default)]
    pub include_subdomains: bool,
    #[serde(default)]
    pub preload: bool,
}

fn default_hsts_max_age() -> u64 {
    31_536_000
}

impl HstsConfig {
    /// The header value (for when TLS exists).
    pub fn header_value(&self) -> String {
        let mut value = format!("max-age={}", self.max_age);
        if self.include_subdomains {
            value.push_str("; includeSubDomains");
        }
        if self.preload {
            value.push_str("; preload");
        }
        value
    }
}

impl SecurityHeadersConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        const CSP: &str = "security.headers.content_security_policy";
        if self.content_security_policy.trim().is_empty() {
            return invalid(CSP, "must not be empty");
        }
        if HeaderValue::from_str(&self.content_security_policy).is_err() {
            return invalid(CSP, "contains characters that cannot be sent in a header");
        }
        if !matches!(self.x_frame_options.as_str(), "DENY" | "SAMEORIGIN") {
            return invalid(
                "security.headers.x_frame_options",
                format!(
                    "must be DENY or SAMEORIGIN, not \"{}\"",
                    self.x_frame_options
                ),
            );
        }
        if !REFERRER_POLICIES.contains(&self.referrer_policy.as_str()) {
            return invalid(
                "security.headers.referrer_policy",
                format!(
                    "must be one of {} (unsafe-url is refused), not \"{}\"",
                    REFERRER_POLICIES.join(", "),
                    self.referrer_policy
                ),
            );
        }
        if let Some(hsts) = &self.hsts {
            if hsts.max_age == 0 {
                return invalid("security.headers.hsts.max_age", "must be greater than 0");
            }
            if hsts.preload && !(hsts.include_subdomains && hsts.max_age >= 31_536_000) {
                return invalid(
                    "security.headers.hsts.preload",
                    "needs include_subdomains: true and max_age of at least 31536000 (the preload list's rules)",
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    const MINIMAL: &str =
        "database: { url: \"postgres://u:unit-test-password@127.0.0.1:5432/db\" }\n";

    fn parse(extra: &str) -> Result<Config, ConfigError> {
        Config::from_yaml_str_with_env(&format!("{MINIMAL}{extra}"), |_| None)
    }

    /// The refusal names `key` (in the error and in its message).
    fn refused(extra: &str, key: &str) -> String {
        let err = parse(extra).expect_err(extra);
        assert!(
            matches!(&err, ConfigError::Invalid { key: k, .. } if *k == key),
            "{extra}: {err}"
        );
        let text = err.to_string();
        assert!(text.contains(key), "{text}");
        text
    }

    #[test]
    fn edge_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.server.max_body_bytes, 1_048_576);
        assert_eq!(c.server.request_timeout_seconds, 30);
        assert!(!c.server.cors.enabled());
        assert!(!c.server.cors.allow_credentials);
        assert_eq!(c.server.cors.max_age, 600);
        let h = &c.security.headers;
        assert_eq!(
            h.content_security_policy,
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert_eq!(h.x_frame_options, "DENY");
        assert_eq!(h.referrer_policy, "strict-origin-when-cross-origin");
        assert!(h.hsts.is_none());
    }

    #[test]
    fn full_edge_section() {
        let c = parse(
            r#"server:
  max_body_bytes: 4096
  request_timeout_seconds: 5
  cors:
    allowed_origins: ["https://app.example.com", "http://localhost:3000", "http://[::1]:8080"]
    allowed_methods: [GET, POST, PUT]
    allowed_headers: [Authorization, x-custom]
    allow_credentials: true
    max_age: 60
security:
  headers:
    content_security_policy: "default-src 'self'"
    x_frame_options: SAMEORIGIN
    referrer_policy: no-referrer
    hsts: { max_age: 63072000, include_subdomains: true, preload: true }
"#,
        )
        .unwrap();
        assert_eq!(c.server.max_body_bytes, 4096);
        assert_eq!(c.server.request_timeout_seconds, 5);
        assert_eq!(c.server.cors.origins().len(), 3);
        assert_eq!(c.server.cors.methods().len(), 3);
        let headers: Vec<String> = c
            .server
            .cors
            .headers()
            .iter()
            .map(|h| h.to_string())
            .collect();
        assert_eq!(headers, ["authorization", "x-custom"]);
        assert_eq!(
            c.security.headers.hsts.as_ref().unwrap().header_value(),
            "max-age=63072000; includeSubDomains; preload"
        );
    }

    #[test]
    fn zero_limits_are_refused() {
        refused("server: { max_body_bytes: 0 }\n", "server.max_body_bytes");
        refused(
            "server: { request_timeout_seconds: 0 }\n",
            "server.request_timeout_seconds",
        );
        refused(
            "server: { request_timeout_seconds: 86401 }\n",
            "server.request_timeout_seconds",
        );
        assert!(parse("server: { max_body_bytes: -1 }\n").is_err());
    }

    #[test]
    fn wildcard_with_credentials_is_refused() {
        let text = refused(
            "server: { cors: { allowed_origins: [\"*\"], allow_credentials: true } }\n",
            "server.cors",
        );
        assert!(text.contains("allow_credentials"), "{text}");
        refused(
            "server: { cors: { allowed_origins: [\"*\", \"https://a.test\"] } }\n",
            "server.cors.allowed_origins",
        );
        assert!(parse("server: { cors: { allowed_origins: [\"*\"] } }\n").is_ok());
    }

    #[test]
    fn origins_must_be_exact() {
        for origin in [
            "null",
            "NULL",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://App.example.com",
            "HTTPS://app.example.com",
            "ftp://app.example.com",
            "app.example.com",
            "https://",
            "https://app.example.com:443",
            "http://app.example.com:80",
            "https://app.example.com:0",
            "https://app.example.com:99999",
            "https://*.example.com",
            "https://user@app.example.com",
        ] {
            let text = refused(
                &format!("server: {{ cors: {{ allowed_origins: [\"{origin}\"] }} }}\n"),
                "server.cors.allowed_origins",
            );
            assert!(text.contains(origin), "{text}");
        }
        refused(
            "server: { cors: { allowed_origins: [\"https://a.test\", \"https://a.test\"] } }\n",
            "server.cors.allowed_origins",
        );
        assert!(
            parse("server: { cors: { allowed_origins: [\"https://a.test:8443\"] } }\n").is_ok()
        );
    }

    #[test]
    fn cors_methods_headers_and_max_age() {
        const O: &str = "allowed_origins: [\"https://a.test\"]";
        for method in ["get", "*", "GE T", ""] {
            refused(
                &format!("server: {{ cors: {{ {O}, allowed_methods: [\"{method}\"] }} }}\n"),
                "server.cors.allowed_methods",
            );
        }
        refused(
            &format!("server: {{ cors: {{ {O}, allowed_methods: [] }} }}\n"),
            "server.cors.allowed_methods",
        );
        for name in ["*", "bad header", ""] {
            refused(
                &format!("server: {{ cors: {{ {O}, allowed_headers: [\"{name}\"] }} }}\n"),
                "server.cors.allowed_headers",
            );
        }
        refused(
            &format!("server: {{ cors: {{ {O}, max_age: 86401 }} }}\n"),
            "server.cors.max_age",
        );
        let err = parse(&format!("server: {{ cors: {{ {O}, origins: [] }} }}\n")).unwrap_err();
        assert!(matches!(err, ConfigError::Parse(_)));
        assert!(err.to_string().contains("origins"), "{err}");
    }

    #[test]
    fn security_headers_are_validated() {
        for value in ["ALLOW-FROM https://a.test", "deny", "ALLOWALL"] {
            let text = refused(
                &format!("security: {{ headers: {{ x_frame_options: \"{value}\" }} }}\n"),
                "security.headers.x_frame_options",
            );
            assert!(text.contains("DENY or SAMEORIGIN"), "{text}");
        }
        for value in ["unsafe-url", "nope", ""] {
            refused(
                &format!("security: {{ headers: {{ referrer_policy: \"{value}\" }} }}\n"),
                "security.headers.referrer_policy",
            );
        }
        refused(
            "security: { headers: { content_security_policy: \"  \" } }\n",
            "security.headers.content_security_policy",
        );
        refused(
            "security: { headers: { content_security_policy: \"a\\nb\" } }\n",
            "security.headers.content_security_policy",
        );
        refused(
            "security: { headers: { hsts: { max_age: 0 } } }\n",
            "security.headers.hsts.max_age",
        );
        refused(
            "security: { headers: { hsts: { max_age: 600, preload: true } } }\n",
            "security.headers.hsts.preload",
        );
        let err = parse("security: { headers: { x_frame: DENY } }\n").unwrap_err();
        assert!(err.to_string().contains("x_frame"), "{err}");
        let err = parse("security: { header: {} }\n").unwrap_err();
        assert!(err.to_string().contains("header"), "{err}");
    }
}
