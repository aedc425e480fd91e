//! `/api/v1/tables/{table}` and `/api/v1/tables/{schema}/{table}`: GET, POST, PATCH, DELETE
//! in the PostgREST dialect.
//!
//! Each handler resolves the table in the schema cache (404 when it is not in an exposed
//! schema), parses the query against it, checks the body's keys against its columns, builds
//! one statement ([`crate::rest::sql`]) and runs it in the request transaction. PostgreSQL —
//! grants and RLS for the role `auth.authenticate` chose — decides what the caller may see
//! or change.
use crate::db::{with_request_tx, Access};
use crate::error::ApiError;
use crate::extract::{ApiPath, BearerToken, RawJson};
use crate::observability::RequestContext;
use crate::rest::query::{self, is_plain_name, ApiQuery};
use crate::rest::schema_cache::{Column, Table};
use crate::rest::sql::{self, Statement};
use crate::routes::json_text;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

pub fn router() -> Router<AppState> {
    let methods = || {
        get(read_rows)
            .post(insert_rows)
            .patch(update_rows)
            .delete(delete_rows)
    };
    Router::new()
        .route("/tables/{table}", methods())
        .route("/tables/{schema}/{table}", methods())
}

type PathParams = ApiPath<HashMap<String, String>>;

/// Finds the table named by the path. A schema that is not exposed answers exactly like a
/// table that does not exist, so the API reveals nothing about other schemas.
async fn resolve_table(
    state: &AppState,
    params: &HashMap<String, String>,
    request_id: &str,
) -> Result<Arc<Table>, ApiError> {
    let table = params.get("table").map(String::as_str).unwrap_or_default();
    let schema = params
        .get("schema")
        .map(String::as_str)
        .unwrap_or(state.config().default_schema());
    let not_found = || table_not_found(schema, table);
    if !state
        .config()
        .api
        .exposed_schemas
        .iter()
        .any(|s| s == schema)
    {
        return Err(not_found());
    }
    if let Some(found) = state.schema().snapshot().table(schema, table) {
        return Ok(found);
    }
    // A miss may be a table created after the cache was loaded: reload (rate-limited, see
    // SchemaCacheHandle) and look again.
    if state.schema().claim_miss_reload().await {
        let client = state
            .pool()
            .get()
            .await
            .map_err(|e| crate::error::from_pool_error(&e, false, request_id))?;
        state
            .schema()
            .reload_claimed(&client)
            .await
            .map_err(|e| crate::error::from_db_error(&e, false, request_id))?;
        if let Some(found) = state.schema().snapshot().table(schema, table) {
            return Ok(found);
        }
    }
    Err(not_found())
}

fn table_not_found(schema: &str, table: &str) -> ApiError {
    let message = if is_plain_name(schema) && is_plain_name(table) {
        format!("Table \"{schema}.{table}\" not found")
    } else {
        "Table not found".to_owned()
    };
    ApiError::new(StatusCode::NOT_FOUND, "TABLE_NOT_FOUND", message)
}

/// Whether `Prefer` asks for `return=representation` (comma-separated preferences; several
/// headers allowed).
pub fn wants_representation(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("return=representation"))
}

fn not_allowed_here(what: &str, method: &str) -> ApiError {
    ApiError::bad_request(
        "INVALID_PARAMETER",
        format!("\"{what}\" is not supported on {method}"),
    )
}

/// Refuses query parts that a method would otherwise silently ignore.
fn refuse_unused(
    q: &ApiQuery<'_>,
    method: &str,
    filters: bool,
    paging: bool,
    columns: bool,
) -> Result<(), ApiError> {
    if !filters && q.has_filters() {
        return Err(not_allowed_here("filters", method));
    }
    if !paging {
        for (name, given) in [
            ("order", !q.order.is_empty()),
            ("limit", q.limit.is_some()),
            ("offset", q.offset.is_some()),
        ] {
            if given {
                return Err(not_allowed_here(name, method));
            }
        }
    }
    if !columns && q.columns.is_some() {
        return Err(not_allowed_here("columns", method));
    }
    Ok(())
}

/// Runs a statement that yields one JSON text row, or (no `RETURNING`) only a row count.
async fn run(
    state: &AppState,
    access: Access,
    token: Option<&str>,
    request_id: &str,
    stmt: &Statement,
    yields_json: bool,
) -> Result<Option<String>, ApiError> {
    with_request_tx(state.pool(), access, token, request_id, async |tx| {
        let params = stmt.param_refs();
        if yields_json {
            let row = tx.query_one(stmt.sql.as_str(), &params).await?;
            Ok(Some(
                row.try_get::<_, Option<String>>(0)?
                    .unwrap_or_else(|| "[]".to_owned()),
            ))
        } else {
            tx.execute(stmt.sql.as_str(), &params).await?;
            Ok(None)
        }
    })
    .await
}

fn pairs(raw: &Option<String>) -> Result<Vec<(String, String)>, ApiError> {
    query::decode_pairs(raw.as_deref())
}

/// `GET`: the matching rows as a JSON array, in a read-only transaction.
async fn read_rows(
    State(state): State<AppState>,
    ctx: RequestContext,
    BearerToken(token): BearerToken,
    ApiPath(params): PathParams,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = pairs(&raw)?;
    let table = resolve_table(&state, &params, &ctx.request_id).await?;
    let q = query::parse(&pairs, &table)?;
    refuse_unused(&q, "GET", true, true, false)?;
    let stmt = sql::select(&table, &q, state.config().api.max_rows);
    let text = run(
        &state,
        Access::ReadOnly,
        token.as_deref(),
        &ctx.request_id,
        &stmt,
        true,
    )
    .await?;
    Ok(json_text(
        StatusCode::OK,
        text.unwrap_or_else(|| "[]".to_owned()),
    ))
}

/// The columns named by the keys of `objects`, each checked against the table, in table
/// order (so equal key sets give equal SQL).
fn body_columns<'t>(
    table: &'t Table,
    objects: &[&serde_json::Map<String, Value>],
) -> Result<Vec<&'t Column>, ApiError> {
    for object in objects {
        for key in object.keys() {
            query::resolve(table, key)?;
        }
    }
    Ok(table
        .columns
        .iter()
        .filter(|c| objects.iter().any(|o| o.contains_key(&c.name)))
        .collect())
}

/// `POST`: inserts one object or an array of objects. 201; with `Prefer:
/// return=representation` the body is the inserted rows (projected by `select`).
async fn insert_rows(
    State(state): State<AppState>,
    ctx: RequestContext,
    BearerToken(token): BearerToken,
    ApiPath(params): PathParams,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: RawJson,
) -> Result<Response, ApiError> {
    let pairs = pairs(&raw)?;
    let table = resolve_table(&state, &params, &ctx.request_id).await?;
    let q = query::parse(&pairs, &table)?;
    refuse_unused(&q, "POST", false, false, true)?;
    let shape_error = || {
        ApiError::bad_request(
            "VALIDATION_ERROR",
            "The body must be a JSON object or an array of objects",
        )
    };
    let (objects, rows_json) = match &body.value {
        Value::Object(o) => (vec![o], format!("[{}]", body.text)),
        Value::Array(items) => {
            let objects = items
                .iter()
                .map(Value::as_object)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(shape_error)?;
            (objects, body.text.clone())
        }
        _ => return Err(shape_error()),
    };
    let columns = match &q.columns {
        // `columns=` picks the keys to insert; other keys are ignored, as in PostgREST.
        Some(columns) => columns.clone(),
        None => body_columns(&table, &objects)?,
    };
    let returning = wants_representation(&headers);
    let stmt = sql::insert(&table, &q, &columns, rows_json, returning);
    let text = run(
        &state,
        Access::ReadWrite,
        token.as_deref(),
        &ctx.request_id,
        &stmt,
        returning,
    )
    .await?;
    Ok(match text {
        Some(text) => json_text(StatusCode::CREATED, text),
        None => StatusCode::CREATED.into_response(),
    })
}

/// `PATCH`: sets the body's columns on every row matching the filters (at least one filter
/// required). 204, or 200 with the changed rows under `return=representation`.
async fn update_rows(
    State(state): State<AppState>,
    ctx: RequestContext,
    BearerToken(token): BearerToken,
    ApiPath(params): PathParams,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: RawJson,
) -> Result<Response, ApiError> {
    let pairs = pairs(&raw)?;
    let table = resolve_table(&state, &params, &ctx.request_id).await?;
    let q = query::parse(&pairs, &table)?;
    refuse_unused(&q, "PATCH", true, false, false)?;
    if !q.has_filters() {
        return Err(sql::filter_required());
    }
    let Value::Object(object) = &body.value else {
        return Err(ApiError::bad_request(
            "VALIDATION_ERROR",
            "The body must be a JSON object",
        ));
    };
    let columns = body_columns(&table, &[object])?;
    let returning = wants_representation(&headers);
    let stmt = sql::update(&table, &q, &columns, body.text.clone(), returning)?;
    let text = run(
        &state,
        Access::ReadWrite,
        token.as_deref(),
        &ctx.request_id,
        &stmt,
        returning,
    )
    .await?;
    Ok(match text {
        Some(text) => json_text(StatusCode::OK, text),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// `DELETE`: removes every row matching the filters (at least one filter required). 204, or
/// 200 with the deleted rows under `return=representation`.
async fn delete_rows(
    State(state): State<AppState>,
    ctx: RequestContext,
    BearerToken(token): BearerToken,
    ApiPath(params): PathParams,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let pairs = pairs(&raw)?;
    let table = resolve_table(&state, &params, &ctx.request_id).await?;
    let q = query::parse(&pairs, &table)?;
    refuse_unused(&q, "DELETE", true, false, false)?;
    let returning = wants_representation(&headers);
    let stmt = sql::delete(&table, &q, returning)?;
    let text = run(
        &state,
        Access::ReadWrite,
        token.as_deref(),
        &ctx.request_id,
        &stmt,
        returning,
    )
    .await?;
    Ok(match text {
        Some(text) => json_text(StatusCode::OK, text),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn prefer_header() {
        let mut h = HeaderMap::new();
        assert!(!wants_representation(&h));
        h.insert("prefer", HeaderValue::from_static("return=minimal"));
        assert!(!wants_representation(&h));
        h.insert(
            "prefer",
            HeaderValue::from_static("count=exact, return=representation"),
        );
        assert!(wants_representation(&h));
    }

    #[test]
    fn not_found_messages() {
        assert_eq!(
            table_not_found("public", "nope").message,
            "Table \"public.nope\" not found"
        );
        assert_eq!(
            table_not_found("public", "x;drop table y").message,
            "Table not found"
        );
    }
}
