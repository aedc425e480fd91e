//! PostgREST's schema headers: `Accept-Profile` (GET, HEAD) and `Content-Profile` (POST,
//! PATCH, PUT, DELETE) name the schema of a request whose path does not. postgrest-js's
//! `.schema('x')` sends them, so ignoring them would silently read or write the default
//! schema's table of the same name.
//!
//! A profile that is not an exposed schema is refused with 406 `INVALID_SCHEMA` (as
//! PostgREST's PGRST106), whether it exists or not; the message lists the exposed schemas
//! (configuration, no secret) and never echoes the client's value.
use crate::error::ApiError;
use axum::http::{HeaderMap, Method, StatusCode};

/// The header that names the schema for `method`.
fn header_for(method: &Method) -> &'static str {
    if method == Method::GET || method == Method::HEAD {
        "accept-profile"
    } else {
        "content-profile"
    }
}

fn invalid_schema(exposed: &[String]) -> ApiError {
    ApiError::new(
        StatusCode::NOT_ACCEPTABLE,
        "INVALID_SCHEMA",
        format!(
            "The schema must be one of the exposed schemas: {}",
            exposed.join(", ")
        ),
    )
}

/// The schema a request names: the path's `path_schema`, else its profile header, else
/// `None` (the default schema). A profile must be an exposed schema, and agree with the
/// path when both are given.
pub fn requested_schema(
    headers: &HeaderMap,
    method: &Method,
    path_schema: Option<&str>,
    exposed: &[String],
) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(header_for(method)).iter();
    let profile = match (values.next(), values.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => return Err(invalid_schema(exposed)),
        (Some(value), None) => {
            let value = value.to_str().map_err(|_| invalid_schema(exposed))?.trim();
            if !exposed.iter().any(|s| s == value) {
                return Err(invalid_schema(exposed));
            }
            Some(value.to_owned())
        }
    };
    match (path_schema, profile) {
        (Some(path), Some(profile)) if path != profile => Err(invalid_schema(exposed)),
        (Some(path), _) => Ok(Some(path.to_owned())),
        (None, profile) => Ok(profile),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn profiles() {
        let exposed = vec!["public".to_owned(), "api".to_owned()];
        let get = Method::GET;
        let post = Method::POST;
        let ask =
            |h: &HeaderMap, m: &Method, path: Option<&str>| requested_schema(h, m, path, &exposed);
        assert_eq!(ask(&headers(&[]), &get, None).unwrap(), None);
        let api = headers(&[("accept-profile", "api")]);
        assert_eq!(ask(&api, &get, None).unwrap().as_deref(), Some("api"));
        // Accept-Profile does not apply to writes, Content-Profile not to reads.
        assert_eq!(ask(&api, &post, None).unwrap(), None);
        let content = headers(&[("content-profile", "api")]);
        assert_eq!(ask(&content, &post, None).unwrap().as_deref(), Some("api"));
        assert_eq!(
            ask(&content, &Method::DELETE, None).unwrap().as_deref(),
            Some("api")
        );
        assert_eq!(
            ask(&api, &get, Some("api")).unwrap().as_deref(),
            Some("api")
        );
        for bad in ["auth", "AUTH", "nope", "pg_catalog", "public;drop", ""] {
            let e = ask(&headers(&[("accept-profile", bad)]), &get, None).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code.as_ref()),
                (406, "INVALID_SCHEMA")
            );
            assert!(!e.message.contains(';') && !e.message.contains("nope"));
        }
        assert_eq!(
            ask(&api, &get, Some("public")).unwrap_err().code,
            "INVALID_SCHEMA"
        );
        let twice = headers(&[("accept-profile", "api"), ("accept-profile", "public")]);
        assert!(ask(&twice, &get, None).is_err());
        assert_eq!(
            ask(&headers(&[]), &get, Some("public")).unwrap().as_deref(),
            Some("public")
        );
    }
}
