//! `/api/v1/rpc/{function}` and `/api/v1/rpc/{schema}/{function}`: calling functions of the
//! exposed schemas, with PostgREST's semantics.
//!
//! - `POST` takes a JSON object of named arguments (`{}` or an empty body for none); a
//!   function whose only argument is an unnamed json/jsonb takes the whole body.
//! - `GET` takes the arguments from the query string, and only for STABLE or IMMUTABLE
//!   functions (405 otherwise): a GET must not write.
//! - GET, and POST of a STABLE/IMMUTABLE function, run in a READ ONLY transaction.
//! - Results: a scalar is its JSON value; a composite is one JSON object; a set is a JSON
//!   array (objects for rows) that `select`, filters, `order`, `limit` and `offset` shape,
//!   capped at `api.max_rows`, with `Content-Range` (and the total under `Prefer:
//!   count=exact`); `Accept: application/vnd.pgrst.object+json` asks for exactly one row
//!   (406 otherwise); `RETURNS void` answers 204 (PostgREST since v10).
//!
//! Every call runs in the request transaction that starts with `auth.authenticate`, so the
//! function runs as the caller's role: EXECUTE privileges, RLS inside the function and
//! `auth.uid()` are PostgreSQL's business. A function of a schema that is not exposed, or of a
//! forbidden one (`auth`, ...), answers exactly like one that does not exist.
use crate::db::{with_request_tx, Access, CachedQueries, TxError};
use crate::error::ApiError;
use crate::extract::{is_json_content_type, ApiPath, BearerToken};
use crate::observability::RequestContext;
use crate::rest::functions::call::{self, CallArgs, Paging, Shape};
use crate::rest::functions::result_query::{self, is_reserved, ResultQuery};
use crate::rest::functions::{choose, Function, Returns};
use crate::rest::parse::{decode_pairs, is_plain_name, range};
use crate::rest::respond::{self, Format};
use crate::routes::json_text;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rpc/{function}", get(call_with_get).post(call_with_post))
        .route(
            "/rpc/{schema}/{function}",
            get(call_with_get).post(call_with_post),
        )
}

type PathParams = ApiPath<HashMap<String, String>>;

fn function_not_found(schema: &str, name: &str) -> ApiError {
    let message = if is_plain_name(schema) && is_plain_name(name) {
        format!("Function \"{schema}.{name}\" not found")
    } else {
        "Function not found".to_owned()
    };
    ApiError::new(StatusCode::NOT_FOUND, "FUNCTION_NOT_FOUND", message)
}

/// Every overload of the function the path names. A schema that is not exposed answers like
/// a function that does not exist; a miss reloads the cache (rate-limited) and looks again.
async fn resolve_overloads(
    state: &AppState,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    method: &Method,
    request_id: &str,
) -> Result<Vec<Arc<Function>>, ApiError> {
    let name = params
        .get("function")
        .map(String::as_str)
        .unwrap_or_default();
    // The path's schema, else `Content-Profile` (POST) / `Accept-Profile` (GET).
    let schema = crate::rest::profile::requested_schema(
        headers,
        method,
        params.get("schema").map(String::as_str),
        &state.config().api.exposed_schemas,
    )?
    .unwrap_or_else(|| state.config().default_schema().to_owned());
    let schema = schema.as_str();
    if !state
        .config()
        .api
        .exposed_schemas
        .iter()
        .any(|s| s == schema)
    {
        return Err(function_not_found(schema, name));
    }
    let found = state
        .functions()
        .snapshot()
        .overloads(schema, name)
        .to_vec();
    if !found.is_empty() {
        return Ok(found);
    }
    if state.functions().claim_first_load().await {
        let client = state
            .pool()
            .get()
            .await
            .map_err(|e| crate::error::from_pool_error(&e, false, request_id))?;
        state
            .functions()
            .reload(&client)
            .await
            .map_err(|e| crate::error::from_db_error(&e, false, request_id))?;
        let found = state
            .functions()
            .snapshot()
            .overloads(schema, name)
            .to_vec();
        if !found.is_empty() {
            return Ok(found);
        }
    }
    Err(function_not_found(schema, name))
}

/// The request body of a POST: an empty body is `{}` (postgrest-js sends `{}`, curl users
/// often nothing); anything else must be JSON. Keeps the text, which is what PostgreSQL
/// receives (numbers keep their precision).
fn read_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Value, String), ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large()
        } else {
            ApiError::bad_request("INVALID_JSON", "Could not read the request body")
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok((Value::Object(Default::default()), "{}".to_owned()));
    }
    if !is_json_content_type(headers) {
        return Err(ApiError::bad_request(
            "INVALID_JSON",
            "Expected a JSON body with Content-Type: application/json",
        ));
    }
    let not_json = || ApiError::bad_request("INVALID_JSON", "The request body is not valid JSON");
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| not_json())?;
    let value = serde_json::from_str(&text).map_err(|_| not_json())?;
    Ok((value, text))
}

/// Whether a `Prefer` header (comma-separated, several allowed) holds `preference`.
fn prefers(headers: &HeaderMap, preference: &str) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(preference))
}

/// Whether the client asked for one object (`Accept: application/vnd.pgrst.object+json`, what
/// postgrest-js `.single()` sends) or for JSON; `Accept` is negotiated as for tables, among the
/// formats a function's result has (JSON only: `text/csv, application/json;q=0.5` gets JSON,
/// `text/csv` alone 406, rather than an answer in a format not asked for).
fn wants_single_object(headers: &HeaderMap) -> Result<bool, ApiError> {
    let format = respond::negotiate_among(headers, &[Format::Json, Format::SingleObject])?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "NOT_ACCEPTABLE",
                "A function's result is produced as JSON only: use application/json or application/vnd.pgrst.object+json",
            )
        })?;
    Ok(format == Format::SingleObject)
}

/// Applies a `Range` header (`0-9`, `items=5-`) to a set-returning function's result, the way
/// tables do: intersected with `limit`/`offset`. Other results have no rows to page, and the
/// header — well-formed or not — is ignored for them (a server may ignore `Range`).
fn apply_range(
    f: &Function,
    q: &mut ResultQuery<'_>,
    headers: &HeaderMap,
    max_rows: u64,
) -> Result<(), ApiError> {
    if !matches!(
        f.returns,
        Returns::Rows { set: true, .. } | Returns::Scalar { set: true }
    ) {
        return Ok(());
    }
    if let Some(wanted) = range::parse(headers)? {
        let page = range::page(q.limit, q.offset, Some(wanted), max_rows);
        q.limit = Some(page.limit);
        q.offset = Some(page.offset);
    }
    Ok(())
}

/// The result columns `select`, filters and `order` may name, and refusals for query parts
/// that mean nothing for this kind of result.
fn check_result_query(f: &Function, q: &ResultQuery<'_>) -> Result<(), ApiError> {
    let refuse = |what: &str| {
        Err(ApiError::bad_request(
            "INVALID_PARAMETER",
            format!("{what} cannot be applied to the result of this function"),
        ))
    };
    match &f.returns {
        Returns::Void | Returns::Scalar { set: false } if q.shapes_rows() || q.pages() => {
            refuse("select, filters, order, limit and offset")
        }
        Returns::Scalar { set: true } if q.shapes_rows() => {
            refuse("select, filters and order (only limit and offset)")
        }
        Returns::Rows { set: false, .. }
            if !q.filters.is_empty() || !q.order.is_empty() || q.pages() =>
        {
            refuse("filters, order, limit and offset (only select)")
        }
        _ => Ok(()),
    }
}

fn result_columns(f: &Function) -> &[crate::rest::schema_cache::Column] {
    match &f.returns {
        Returns::Rows { columns, .. } => columns,
        _ => &[],
    }
}

/// What a call needs besides the function and its arguments.
struct CallRequest<'a> {
    access: Access,
    token: Option<&'a str>,
    request_id: &'a str,
    single_object: bool,
    count_total: bool,
    offset: u64,
}

/// Runs the call and shapes the HTTP answer.
async fn run_call(
    state: &AppState,
    f: &Function,
    args: &CallArgs<'_>,
    q: &ResultQuery<'_>,
    req: CallRequest<'_>,
) -> Result<Response, ApiError> {
    let stmt = call::build(
        f,
        args,
        q,
        Paging {
            max_rows: state.config().api.max_rows,
            count_total: req.count_total,
        },
    );
    let single_object = req.single_object;
    let offset = req.offset;
    let outcome = with_request_tx(
        state.pool(),
        req.access,
        req.token,
        req.request_id,
        async |tx| {
            let params = stmt.param_refs();
            match stmt.shape {
                Shape::Void => {
                    tx.execute_cached(stmt.sql.as_str(), &params).await?;
                    Ok(Outcome::NoContent)
                }
                Shape::Value => {
                    let row = tx.query_opt_cached(stmt.sql.as_str(), &params).await?;
                    let text = match row {
                        Some(row) => row.try_get::<_, Option<String>>(0)?,
                        None => None,
                    };
                    Ok(Outcome::Value(text.unwrap_or_else(|| "null".to_owned())))
                }
                Shape::Set => {
                    let row = tx.query_one_cached(stmt.sql.as_str(), &params).await?;
                    let array: Option<String> = row.try_get(0)?;
                    let rows: i64 = row.try_get(1)?;
                    let total: Option<i64> = row.try_get(2)?;
                    let first: Option<String> = row.try_get(3)?;
                    if single_object && rows != 1 {
                        // An error inside the transaction, so whatever the function did is
                        // rolled back (as PostgREST does).
                        return Err(TxError::Api(not_single_object(rows)));
                    }
                    // 206 when the count shows rows past this page, 416 past the end — an
                    // error inside the transaction, like the one above.
                    let status = if single_object {
                        StatusCode::OK
                    } else {
                        respond::read_status(offset, rows, total).map_err(TxError::Api)?
                    };
                    let body = if single_object {
                        first.unwrap_or_else(|| "null".to_owned())
                    } else {
                        array.unwrap_or_else(|| "[]".to_owned())
                    };
                    Ok(Outcome::Set {
                        status,
                        body,
                        rows,
                        total,
                    })
                }
            }
        },
    )
    .await?;
    Ok(match outcome {
        Outcome::NoContent => StatusCode::NO_CONTENT.into_response(),
        Outcome::Value(text) => json_text(StatusCode::OK, text),
        Outcome::Set {
            status,
            body,
            rows,
            total,
        } => {
            let mut response = json_text(status, body);
            let range = respond::content_range(req.offset, rows, total);
            if let Ok(value) = HeaderValue::from_str(&range) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            response
        }
    })
}

enum Outcome {
    NoContent,
    Value(String),
    Set {
        status: StatusCode,
        body: String,
        rows: i64,
        total: Option<i64>,
    },
}

/// 406 for `Accept: application/vnd.pgrst.object+json` and not exactly one row. `details`
/// says how many, in PostgREST's words: postgrest-js `.maybeSingle()` looks for "0 rows".
fn not_single_object(rows: i64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_ACCEPTABLE,
        "NOT_SINGLE_OBJECT",
        "JSON object requested, multiple (or no) rows returned",
    )
    .with_details(Value::String(format!("The result contains {rows} rows")))
}

/// `POST /rpc/{function}`: named arguments from the JSON body.
async fn call_with_post(
    State(state): State<AppState>,
    ctx: RequestContext,
    BearerToken(token): BearerToken,
    ApiPath(path): PathParams,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let pairs = decode_pairs(raw.as_deref())?;
    let overloads =
        resolve_overloads(&state, &path, &headers, &Method::POST, &ctx.request_id).await?;
    let (value, text) = read_body(&headers, body)?;
    // A body that is not an object can only be the argument of a whole-body function.
    let candidates: Vec<Arc<Function>> = match &value {
        Value::Object(_) => overloads,
        _ => overloads
            .into_iter()
            .filter(|f| f.takes_whole_body())
            .collect(),
    };
    if candidates.is_empty() {
        return Err(ApiError::bad_request(
            "VALIDATION_ERROR",
            "The body must be a JSON object of named arguments",
        ));
    }
    let keys: Vec<&str> = match &value {
        Value::Object(object) => object.keys().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    let f = choose(&candidates, &keys, true)?.clone();
    let args = if f.takes_whole_body() {
        CallArgs::WholeBody(text)
    } else {
        CallArgs::Named {
            given: f
                .arguments
                .iter()
                .filter(|a| keys.contains(&a.name.as_str()))
                .collect(),
            json: text,
        }
    };
    let query_pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let single_object = wants_single_object(&headers)?;
    let mut q = result_query::parse(&query_pairs, result_columns(&f))?;
    check_result_query(&f, &q)?;
    apply_range(&f, &mut q, &headers, state.config().api.max_rows)?;
    let access = if f.volatility.is_read_only() {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    let req = CallRequest {
        access,
        token: token.as_deref(),
        request_id: &ctx.request_id,
        single_object,
        count_total: prefers(&headers, "count=exact"),
        offset: q.offset.unwrap_or(0),
    };
    run_call(&state, &f, &args, &q, req).await
}

/// `GET /rpc/{function}?arg=value&...`: query keys that are arguments of the function are
/// its arguments; the others shape the result. Only STABLE and IMMUTABLE functions.
async fn call_with_get(
    State(state): State<AppState>,
    ctx: RequestContext,
    BearerToken(token): BearerToken,
    ApiPath(path): PathParams,
    RawQuery(raw): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let pairs = decode_pairs(raw.as_deref())?;
    let overloads = resolve_overloads(&state, &path, &headers, &method, &ctx.request_id).await?;
    let is_argument =
        |key: &str| !is_reserved(key) && overloads.iter().any(|f| f.argument(key).is_some());
    let mut arguments = serde_json::Map::new();
    let mut rest: Vec<(&str, &str)> = Vec::new();
    for (key, value) in &pairs {
        if is_argument(key) {
            if arguments
                .insert(key.clone(), Value::String(value.clone()))
                .is_some()
            {
                return Err(ApiError::bad_request(
                    "INVALID_PARAMETER",
                    format!("The argument \"{key}\" is given twice"),
                ));
            }
        } else {
            rest.push((key.as_str(), value.as_str()));
        }
    }
    let keys: Vec<&str> = arguments.keys().map(String::as_str).collect();
    let f = match choose(&overloads, &keys, false) {
        Ok(f) => f,
        // A function that takes the whole body can only be called with a body.
        Err(e) if overloads.iter().all(|f| f.takes_whole_body()) => {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "This function takes a JSON body: call it with POST",
            )
            .with_details(Value::String(e.message)))
        }
        Err(e) => return Err(e),
    };
    if !f.volatility.is_read_only() {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("The function is VOLATILE (it may write): call it with POST, not {method}"),
        ));
    }
    let single_object = wants_single_object(&headers)?;
    let mut q = result_query::parse(&rest, result_columns(f))?;
    check_result_query(f, &q)?;
    apply_range(f, &mut q, &headers, state.config().api.max_rows)?;
    let args = CallArgs::Named {
        given: f
            .arguments
            .iter()
            .filter(|a| arguments.contains_key(&a.name))
            .collect(),
        json: Value::Object(arguments.clone()).to_string(),
    };
    let req = CallRequest {
        access: Access::ReadOnly,
        token: token.as_deref(),
        request_id: &ctx.request_id,
        single_object,
        count_total: prefers(&headers, "count=exact"),
        offset: q.offset.unwrap_or(0),
    };
    run_call(&state, f, &args, &q, req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{app, Config};
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    /// Answers decided before any SQL: the pool points at a port nothing listens on.
    async fn without_database(method: Method, path: &str) -> (StatusCode, Value) {
        let config = Config::from_yaml_str(
            "server: { host: 127.0.0.1, port: 0 }\n\
             database: { url: \"postgres://fluxbase_server:unit-test-password@127.0.0.1:1/fluxbase\" }\n",
        )
        .expect("config");
        let router = app(AppState::lazy(&config).expect("lazy state"));
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .expect("request");
        let response = router.oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn hidden_schemas_are_404_before_any_sql() {
        for path in [
            "/api/v1/rpc/auth/sign_in",
            "/api/v1/rpc/auth/authenticate",
            "/api/v1/rpc/pg_catalog/pg_sleep",
            "/api/v1/rpc/fluxbase/sign_token",
            "/api/v1/rpc/private/secret",
        ] {
            for method in [Method::GET, Method::POST] {
                let (status, body) = without_database(method.clone(), path).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
                assert_eq!(body["code"], "FUNCTION_NOT_FOUND", "{path}");
            }
        }
        let (status, body) = without_database(Method::PUT, "/api/v1/rpc/add_them").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    }

    #[test]
    fn headers() {
        let mut h = HeaderMap::new();
        assert!(!wants_single_object(&h).unwrap() && !prefers(&h, "count=exact"));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.pgrst.object+json"),
        );
        h.insert(
            "prefer",
            HeaderValue::from_static("return=minimal, count=exact"),
        );
        assert!(wants_single_object(&h).unwrap() && prefers(&h, "count=exact"));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/csv"));
        assert_eq!(
            wants_single_object(&h).unwrap_err().status,
            StatusCode::NOT_ACCEPTABLE
        );
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
        assert_eq!(
            wants_single_object(&h).unwrap_err().status,
            StatusCode::NOT_ACCEPTABLE
        );
        for fallback in [
            "text/csv, application/json;q=0.5",
            "application/json;q=0.5, text/csv;q=0.9",
            "text/*, */*;q=0.1",
        ] {
            h.insert(header::ACCEPT, HeaderValue::from_static(fallback));
            assert!(!wants_single_object(&h).unwrap(), "{fallback}");
        }
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json;Q=0"),
        );
        assert!(wants_single_object(&h).is_err(), "Q=0 refuses JSON");
    }

    #[test]
    fn not_found_messages() {
        assert_eq!(
            function_not_found("public", "nope").message,
            "Function \"public.nope\" not found"
        );
        assert_eq!(
            function_not_found("public", "x();drop").message,
            "Function not found"
        );
        let e = not_single_object(0);
        assert_eq!(e.status, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(
            e.details,
            Some(Value::String("The result contains 0 rows".into()))
        );
    }
}
