//! Request extractors whose rejections use the API error shape.
//!
//! Why custom: axum's own rejections answer in plain text (and 415/422 where this API
//! promises 400 `INVALID_JSON`). These wrap axum's extractors, or replace them, and turn
//! every failure into an [`ApiError`].
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The bearer token of the request: `None` when there is no `Authorization` header (the
/// request is anonymous). A header that is present but not `Bearer <token>` is refused
/// with 401 rather than treated as anonymous, so a client bug never silently downgrades.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerToken(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        bearer_token(&parts.headers).map(BearerToken)
    }
}

/// Parses the `Authorization` header (see [`BearerToken`]).
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let malformed = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
            "The Authorization header must be of the form \"Bearer <token>\"",
        )
    };
    if values.next().is_some() {
        return Err(malformed());
    }
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    let token_ok = !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic());
    if !scheme.eq_ignore_ascii_case("bearer") || !token_ok {
        return Err(malformed());
    }
    Ok(Some(token.to_owned()))
}

/// A typed JSON body (`deny_unknown_fields` structs refuse unknown keys).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

/// `text` with every backtick-quoted value serde put in it left out.
fn without_quoted_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    for c in text.chars() {
        if c == '`' {
            if !quoted {
                out.push_str("a value");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// Maps axum's JSON rejections to the error shape.
pub fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            // The inner serde error names the field (`email: invalid type …`); the values it
            // quotes in backticks (`integer \`987654321\``) are the client's input, which may
            // be a password sent with the wrong type: they are never echoed (a response body
            // can end up in a proxy's or client's log).
            let detail = std::error::Error::source(e)
                .map(|s| without_quoted_values(&s.to_string()))
                .unwrap_or_default();
            ApiError::bad_request(
                "VALIDATION_ERROR",
                format!("Invalid request body: {detail}"),
            )
        }
        JsonRejection::MissingJsonContentType(_) => missing_content_type(),
        JsonRejection::BytesRejection(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            too_large()
        }
        JsonRejection::JsonSyntaxError(_) => not_json(),
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        _ => ApiError::bad_request("INVALID_JSON", "Could not read the request body"),
    }
}

/// A JSON body that may be left out: an empty (or all-whitespace) body is `None`, whatever
/// its Content-Type; anything else must be JSON of type `T`, refused like [`ApiJson`].
/// For endpoints such as sign-out whose body only carries optional settings.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = is_json_content_type(req.headers());
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::bad_request("INVALID_JSON", "Could not read the request body")
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        if !json_type {
            return Err(missing_content_type());
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(OptionalJson(Some(value))),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn not_json() -> ApiError {
    ApiError::bad_request("INVALID_JSON", "The request body is not valid JSON")
}

fn missing_content_type() -> ApiError {
    ApiError::bad_request(
        "INVALID_JSON",
        "Expected a JSON body with Content-Type: application/json",
    )
}

fn too_large() -> ApiError {
    ApiError::payload_too_large()
}

/// An untyped JSON body that also keeps its original text.
///
/// Why keep the text: it is what PostgreSQL receives (`json_populate_recordset($1::json)`),
/// so numbers keep their full precision instead of going through `f64`. The parsed value is
/// only used to check the shape and the keys.
#[derive(Debug)]
pub struct RawJson {
    pub value: Value,
    pub text: String,
}

impl<S: Send + Sync> FromRequest<S> for RawJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(req.headers()) {
            return Err(missing_content_type());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::bad_request("INVALID_JSON", "Could not read the request body")
            }
        })?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| not_json())?;
        let value = serde_json::from_str(&text).map_err(|_| not_json())?;
        Ok(RawJson { value, text })
    }
}

/// `application/json` or `application/<something>+json`, parameters allowed.
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Path parameters with the error shape on failure (e.g. invalid percent-encoding).
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(_) => Err(ApiError::bad_request(
                "INVALID_PATH",
                "The request path is malformed",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_body_of_the_wrong_type_is_refused_without_echoing_its_values() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct SignIn {
            email: String,
            password: String,
        }
        let err =
            serde_path_to_error::deserialize::<_, SignIn>(&mut serde_json::Deserializer::from_str(
                r#"{"email": "a@example.com", "password": 987654321123}"#,
            ))
            .unwrap_err();
        let shown = without_quoted_values(&err.to_string());
        assert!(!shown.contains("987654321123"), "{shown}");
        assert!(shown.contains("password"), "{shown}");
        assert_eq!(without_quoted_values("a `b` c `d`"), "a a value c a value");
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(&HeaderMap::new()).unwrap(), None);
        assert_eq!(
            bearer_token(&with_auth(&["Bearer abc.def.ghi"])).unwrap(),
            Some("abc.def.ghi".into())
        );
        assert_eq!(
            bearer_token(&with_auth(&["bearer  xyz "])).unwrap(),
            Some("xyz".into())
        );
        for bad in [
            &["Basic dXNlcjpwYXNz"][..],
            &["Bearer"],
            &["Bearer "],
            &["Bearer a b"],
            &["abc"],
            &["Bearer a", "Bearer b"],
        ] {
            let err = bearer_token(&with_auth(bad)).unwrap_err();
            assert_eq!(
                (err.status, err.code.as_ref()),
                (StatusCode::UNAUTHORIZED, "INVALID_TOKEN"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn json_content_types() {
        let ct = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            is_json_content_type(&h)
        };
        assert!(ct("application/json"));
        assert!(ct("application/json; charset=utf-8"));
        assert!(ct("application/vnd.pgrst.object+json"));
        assert!(!ct("text/plain"));
        assert!(!ct("application/x-www-form-urlencoded"));
        assert!(!is_json_content_type(&HeaderMap::new()));
    }
}
