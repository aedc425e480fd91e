//! `/api/v1/tables/{table}` and `/api/v1/tables/{schema}/{table}`: GET, HEAD, POST, PATCH,
//! DELETE in the PostgREST dialect.
//!
//! Each handler resolves the table in the schema cache (404 when it is not in an exposed
//! schema), parses the query and headers against it ([`crate::rest::parse`]), builds one
//! statement ([`crate::rest::build`]) and runs it in the request transaction (READ ONLY for
//! GET and HEAD). PostgreSQL — grants and RLS for the role `auth.authenticate` chose —
//! decides what the caller may see or change. The body is JSON (or CSV) text built by
//! PostgreSQL and passed through.
use crate::db::{with_request_tx, Access, CachedQueries, TxError};
use crate::error::ApiError;
use crate::extract::{ApiPath, BearerToken, RawJson};
use crate::observability::RequestContext;
use crate::rest::build::read::{self as build_read, Body, Total};
use crate::rest::build::write::{self as build_write, Conflict, InsertGroup, WriteOp};
use crate::rest::build::Statement;
use crate::rest::parse::prefer::{self, CountMethod, Preferences, Resolution, Return};
use crate::rest::parse::{self, is_plain_name, range, ParsedQuery, Purpose};
use crate::rest::profile;
use crate::rest::respond::{self, Format};
use crate::rest::schema_cache::{Column, SchemaCache, Table};
use crate::rest::tree::{Field, Node, SelectColumn, SelectItem};
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderName, Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_postgres::Row;

pub fn router() -> Router<AppState> {
    // `get` also answers HEAD (axum drops the body); the handler sees the method and does
    // not build one.
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

static PREFERENCE_APPLIED: HeaderName = HeaderName::from_static("preference-applied");

/// The cache snapshot for this request. A cache that never loaded (a lazy state) loads
/// here, at most once a second; a loaded one is only ever refreshed by the DDL listener.
async fn cache_for_request(
    state: &AppState,
    request_id: &str,
) -> Result<Arc<SchemaCache>, ApiError> {
    if state.schema().claim_first_load().await {
        let client = state
            .pool()
            .get()
            .await
            .map_err(|e| crate::error::from_pool_error(&e, false, request_id))?;
        state
            .schema()
            .reload(&client)
            .await
            .map_err(|e| crate::error::from_db_error(&e, false, request_id))?;
    }
    Ok(state.schema().snapshot())
}

/// The (schema, table) the request names: the path's schema, else the profile header's
/// (`Accept-Profile` / `Content-Profile`), else the default schema.
fn path_names(
    state: &AppState,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    method: &Method,
) -> Result<(String, String), ApiError> {
    let table = params.get("table").cloned().unwrap_or_default();
    let schema = profile::requested_schema(
        headers,
        method,
        params.get("schema").map(String::as_str),
        &state.config().api.exposed_schemas,
    )?
    .unwrap_or_else(|| state.config().default_schema().to_owned());
    Ok((schema, table))
}

/// Finds the table named by the path: the schema must be exposed (checked before anything
/// else, so it needs no database) and the table in the cache. A schema that is not exposed
/// answers exactly like a table that does not exist, so the API reveals nothing about other
/// schemas.
async fn resolve_table(
    state: &AppState,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    method: &Method,
    request_id: &str,
) -> Result<(Arc<SchemaCache>, Arc<Table>), ApiError> {
    let (schema, table) = path_names(state, params, headers, method)?;
    let (schema, table) = (schema.as_str(), table.as_str());
    let exposed = state
        .config()
        .api
        .exposed_schemas
        .iter()
        .any(|s| s == schema);
    if !exposed {
        return Err(table_not_found(schema, table));
    }
    let cache = cache_for_request(state, request_id).await?;
    let found = cache
        .table(schema, table)
        .ok_or_else(|| table_not_found(schema, table))?;
    Ok((cache, found))
}

fn table_not_found(schema: &str, table: &str) -> ApiError {
    let message = if is_plain_name(schema) && is_plain_name(table) {
        format!("Table \"{schema}.{table}\" not found")
    } else {
        "Table not found".to_owned()
    };
    ApiError::new(StatusCode::NOT_FOUND, "TABLE_NOT_FOUND", message)
}

/// Everything a handler needs before it can build SQL.
struct Prepared<'c> {
    query: ParsedQuery<'c>,
    prefs: Preferences,
    format: Format,
}

fn prepare<'c>(
    cache: &'c SchemaCache,
    table: &'c Table,
    raw: &Option<String>,
    headers: &HeaderMap,
    purpose: Purpose,
) -> Result<Prepared<'c>, ApiError> {
    let pairs = parse::decode_pairs(raw.as_deref())?;
    let format = respond::negotiate(headers)?;
    let prefs = prefer::parse(headers)?;
    let query = parse::parse_query(&pairs, cache, table, purpose)?;
    if format == Format::Csv {
        one_csv_column_per_name(&query)?;
    }
    Ok(Prepared {
        query,
        prefs,
        format,
    })
}

/// A CSV row reads its cells by output name, so two selected columns under one name (JSON keeps
/// both keys, `select=id,id`) would be ambiguous: refused, with the way out.
fn one_csv_column_per_name(query: &ParsedQuery<'_>) -> Result<(), ApiError> {
    let names = query.root.output_names();
    let mut seen = std::collections::HashSet::new();
    match names.iter().find(|n| !seen.insert(**n)) {
        Some(name) => Err(ApiError::bad_request(
            "INVALID_SELECT",
            format!("text/csv needs one column per name, and \"{name}\" is selected twice: rename one (select=a:{name},...)"),
        )),
        None => Ok(()),
    }
}

/// What can be refused without the schema: the headers and the query string's encoding
/// (so a malformed request never waits for, or costs, a database connection).
fn check_before_database(raw: &Option<String>, headers: &HeaderMap) -> Result<(), ApiError> {
    parse::decode_pairs(raw.as_deref())?;
    respond::negotiate(headers)?;
    prefer::parse(headers)?;
    range::parse(headers)?;
    Ok(())
}

/// `Preference-Applied`, when anything was.
fn applied_header(applied: &[&str]) -> Option<(HeaderName, String)> {
    (!applied.is_empty()).then(|| (PREFERENCE_APPLIED.clone(), applied.join(", ")))
}

/// `GET` / `HEAD`: the matching rows, in a read-only transaction.
async fn read_rows(
    State(state): State<AppState>,
    ctx: RequestContext,
    BearerToken(token): BearerToken,
    method: Method,
    ApiPath(params): PathParams,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_before_database(&raw, &headers)?;
    let (cache, table) = resolve_table(&state, &params, &headers, &method, &ctx.request_id).await?;
    let table: &Table = &table;
    let Prepared {
        query,
        prefs,
        format,
    } = prepare(&cache, table, &raw, &headers, Purpose::Read)?;
    let max_rows = state.config().api.max_rows;
    let page = range::page(
        query.root.limit,
        query.root.offset,
        range::parse(&headers)?,
        max_rows,
    );
    let count = prefs.count.or(query.count);
    let head = method == Method::HEAD;
    let body = if head { Body::None } else { format.body() };
    let total = match count {
        None | Some(CountMethod::Planned) => Total::None,
        Some(CountMethod::Exact) => Total::Exact,
        Some(CountMethod::Estimated) => Total::Capped(max_rows),
    };
    let stmt = build_read::read(&query.root, page, body, total, max_rows);
    let estimate = matches!(count, Some(CountMethod::Planned | CountMethod::Estimated));
    let explain = estimate.then(|| build_read::explain_count(&query.root));
    // For a caller under RLS the planner's figure is no answer: it comes from statistics
    // over the whole table, hidden rows included (an estimate of 5000 where the caller sees
    // none tells them the rows exist, and selectivities of filters on hidden values leak
    // too). Such callers get the exact count, which RLS filters.
    let exact = estimate.then(|| build_read::read(&query.root, page, body, Total::Exact, max_rows));
    if !estimate {
        // The common read: one statement, so one pipelined round trip (see db::read_one).
        let row = crate::db::read_one(
            state.pool(),
            token.as_deref(),
            &ctx.request_id,
            stmt.sql.as_str(),
            &stmt.param_refs(),
        )
        .await?;
        let (text, returned, total) = read_row(&row)
            .map_err(|e| crate::error::from_db_error(&e, token.is_some(), &ctx.request_id))?;
        return finish_read(format, page, head, text, returned, total, count);
    }
    let (text, returned, total, counted) = with_request_tx(
        state.pool(),
        Access::ReadOnly,
        token.as_deref(),
        &ctx.request_id,
        async |tx| {
            let under_rls = match &exact {
                Some(_) => subject_to_rls(tx).await?,
                None => false,
            };
            let (stmt, explain, counted) = match (&exact, under_rls) {
                (Some(exact), true) => (exact, None, Some(CountMethod::Exact)),
                _ => (&stmt, explain.as_ref(), count),
            };
            let row = tx
                .query_one_cached(stmt.sql.as_str(), &stmt.param_refs())
                .await?;
            let (text, returned, mut total) = read_row(&row)?;
            if let Some(explain) = explain {
                let capped_over = total.is_none_or(|t| u64::try_from(t).unwrap_or(0) > max_rows);
                if capped_over {
                    let planned = planned_rows(tx, explain).await?;
                    total = Some(total.map_or(planned, |t| t.max(planned)));
                }
            }
            Ok((text, returned, total, counted))
        },
    )
    .await?;
    finish_read(format, page, head, text, returned, total, counted)
}

/// A read statement's one row: the JSON (or CSV) text, the rows returned, the total when
/// counted (see `build::read`).
fn read_row(row: &Row) -> Result<(Option<String>, i64, Option<i64>), tokio_postgres::Error> {
    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
}

/// The response of a read: single-object check, status, `Content-Range`,
/// `Preference-Applied`, and the body (none for HEAD).
fn finish_read(
    format: Format,
    page: range::Page,
    head: bool,
    text: Option<String>,
    returned: i64,
    total: Option<i64>,
    counted: Option<CountMethod>,
) -> Result<Response, ApiError> {
    if format == Format::SingleObject && returned != 1 {
        return Err(respond::not_single_object(returned));
    }
    let status = respond::read_status(page.offset, returned, total)?;
    let mut out = vec![(
        header::CONTENT_RANGE,
        respond::content_range(page.offset, returned, total),
    )];
    let applied: Vec<&str> = counted.iter().map(|c| count_applied(*c)).collect();
    out.extend(applied_header(&applied));
    let text = if head {
        None
    } else {
        Some(text.unwrap_or_else(|| "[]".to_owned()))
    };
    Ok(respond::response(status, format, text, out))
}

fn count_applied(c: CountMethod) -> &'static str {
    match c {
        CountMethod::Exact => "count=exact",
        CountMethod::Planned => "count=planned",
        CountMethod::Estimated => "count=estimated",
    }
}

const SUBJECT_TO_RLS_SQL: &str = include_str!("../../../sql/server/subject_to_rls.sql");

/// Whether the request's role is subject to row-level security (not BYPASSRLS, as
/// `service_role` is).
async fn subject_to_rls(tx: &deadpool_postgres::ClientWrapper) -> Result<bool, TxError> {
    let row = tx.query_one_cached(SUBJECT_TO_RLS_SQL, &[]).await?;
    Ok(row.try_get(0)?)
}

/// The planner's row estimate for `explain` (an `EXPLAIN (FORMAT JSON)`).
async fn planned_rows(
    tx: &deadpool_postgres::ClientWrapper,
    explain: &Statement,
) -> Result<i64, TxError> {
    let row = tx
        .query_one(explain.sql.as_str(), &explain.param_refs())
        .await?;
    let plan: Value = row.try_get(0)?;
    let rows = plan
        .get(0)
        .and_then(|p| p.get("Plan"))
        .and_then(|p| p.get("Plan Rows"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    Ok(rows.max(0.0).round() as i64)
}

/// What a write statement produced.
struct Written {
    body: Option<String>,
    affected: i64,
}

/// How a write is run and answered.
struct WriteRun<'a> {
    state: &'a AppState,
    ctx: &'a RequestContext,
    token: Option<&'a str>,
    prefs: &'a Preferences,
    format: Format,
}

impl WriteRun<'_> {
    /// Runs `op`: with `RETURNING` (the representation of `root`) when `returning`, else as
    /// plain statements. A single-object request that affected ≠ 1 row is rolled back with
    /// 406; `tx=rollback` rolls back a successful one (to a savepoint taken after
    /// authentication, so the role switch stays).
    async fn run(
        &self,
        root: &Node<'_>,
        op: &WriteOp<'_>,
        returning: bool,
    ) -> Result<Written, ApiError> {
        let max_rows = self.state.config().api.max_rows;
        let single = self.format == Format::SingleObject;
        let representation = returning
            .then(|| build_write::with_representation(root, op, self.format.body(), max_rows));
        let plain = (!returning).then(|| build_write::minimal(root, op));
        let rollback = self.prefs.tx_rollback;
        with_request_tx(
            self.state.pool(),
            Access::ReadWrite,
            self.token,
            &self.ctx.request_id,
            async |tx| {
                if rollback {
                    tx.batch_execute("SAVEPOINT fluxbase_tx_rollback").await?;
                }
                let written = match (&representation, &plain) {
                    (Some(stmt), _) => {
                        let row = tx
                            .query_one_cached(stmt.sql.as_str(), &stmt.param_refs())
                            .await?;
                        Written {
                            body: row.try_get(0)?,
                            affected: row.try_get(1)?,
                        }
                    }
                    (None, Some(statements)) => {
                        let mut affected = 0u64;
                        for stmt in statements {
                            affected += tx
                                .execute_cached(stmt.sql.as_str(), &stmt.param_refs())
                                .await?;
                        }
                        Written {
                            body: None,
                            affected: i64::try_from(affected).unwrap_or(i64::MAX),
                        }
                    }
                    (None, None) => return Err(TxError::Api(ApiError::internal())),
                };
                if single && written.affected != 1 {
                    return Err(TxError::Api(respond::not_single_object(written.affected)));
                }
                if rollback {
                    tx.batch_execute("ROLLBACK TO SAVEPOINT fluxbase_tx_rollback")
                        .await?;
                }
                Ok(written)
            },
        )
        .await
    }

    /// The common headers: `Preference-Applied`, and `Content-Range: */n` when a count was
    /// asked for.
    fn headers(
        &self,
        written: &Written,
        applied: &mut Vec<&'static str>,
    ) -> Vec<(HeaderName, String)> {
        let mut out = Vec::new();
        if let Some(count) = self.prefs.count {
            applied.push(count_applied(count));
            out.push((header::CONTENT_RANGE, format!("*/{}", written.affected)));
        }
        if self.prefs.tx_rollback {
            applied.push("tx=rollback");
        }
        out.extend(applied_header(applied));
        out
    }
}

/// The columns named by the keys of `objects`, each checked against the table, in table
/// order (so equal key sets give equal SQL).
fn body_columns<'t>(
    table: &'t Table,
    objects: &[&serde_json::Map<String, Value>],
) -> Result<Vec<&'t Column>, ApiError> {
    for object in objects {
        for key in object.keys() {
            parse::resolve(table, key)?;
        }
    }
    Ok(table
        .columns
        .iter()
        .filter(|c| objects.iter().any(|o| o.contains_key(&c.name)))
        .collect())
}

fn body_shape_error() -> ApiError {
    ApiError::bad_request(
        "VALIDATION_ERROR",
        "The body must be a JSON object or an array of objects",
    )
}

/// The insert groups: one with the union of the keys (absent keys NULL), or under
/// `missing=default` one per distinct key set (absent keys DEFAULT).
fn insert_groups<'c>(
    table: &'c Table,
    body: &RawJson,
    chosen: Option<&[&'c Column]>,
    missing_default: bool,
) -> Result<Vec<InsertGroup<'c>>, ApiError> {
    let objects: Vec<&serde_json::Map<String, Value>> = match &body.value {
        Value::Object(o) => vec![o],
        Value::Array(items) => items
            .iter()
            .map(Value::as_object)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(body_shape_error)?,
        _ => return Err(body_shape_error()),
    };
    let all_rows = match &body.value {
        Value::Object(_) => format!("[{}]", body.text),
        _ => body.text.clone(),
    };
    let columns = match chosen {
        // `columns=` picks the keys to insert; other keys are ignored, as in PostgREST.
        Some(columns) => columns.to_vec(),
        None => body_columns(table, &objects)?,
    };
    if !missing_default {
        return Ok(vec![InsertGroup {
            columns,
            rows_json: all_rows,
        }]);
    }
    // Group by key set, keeping each row's original text (numbers at full precision).
    let raw_rows: Vec<&RawValue> = match &body.value {
        Value::Object(_) => vec![serde_json::from_str(&body.text).map_err(|_| body_shape_error())?],
        _ => serde_json::from_str(&body.text).map_err(|_| body_shape_error())?,
    };
    let mut groups: Vec<(Vec<&'c Column>, Vec<&str>)> = Vec::new();
    for (object, raw) in objects.iter().zip(&raw_rows) {
        let present: Vec<&Column> = columns
            .iter()
            .copied()
            .filter(|c| object.contains_key(&c.name))
            .collect();
        match groups.iter_mut().find(|(cols, _)| *cols == present) {
            Some((_, rows)) => rows.push(raw.get()),
            None => groups.push((present, vec![raw.get()])),
        }
    }
    Ok(groups
        .into_iter()
        .map(|(columns, rows)| InsertGroup {
            columns,
            rows_json: format!("[{}]", rows.join(",")),
        })
        .collect())
}

/// The root node projected to the primary key (for `Location`).
fn primary_key_node<'c>(root: &Node<'c>) -> Option<Node<'c>> {
    let table = root.table;
    if table.primary_key.is_empty() {
        return None;
    }
    let mut node = Node::new(table);
    for name in &table.primary_key {
        node.select.push(SelectItem::Column(SelectColumn {
            field: Field::plain(table.column(name)?),
            alias: None,
            cast: None,
        }));
    }
    Some(node)
}

/// `/api/v1/tables/{schema}/{table}?pk=eq.value&…` for the one written row.
fn location(table: &Table, body: Option<&str>) -> Option<String> {
    let rows: Value = serde_json::from_str(body?).ok()?;
    let [row] = rows.as_array()?.as_slice() else {
        return None;
    };
    let mut query = Vec::new();
    for name in &table.primary_key {
        let value = match row.get(name)? {
            Value::String(s) => s.clone(),
            Value::Null => return None,
            other => other.to_string(),
        };
        query.push((name.clone(), format!("eq.{value}")));
    }
    let query = serde_urlencoded::to_string(&query).ok()?;
    Some(format!(
        "/api/v1/tables/{}/{}?{query}",
        urlencode_segment(&table.schema),
        urlencode_segment(&table.name)
    ))
}

fn urlencode_segment(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|p| p.trim_start_matches('=').replace('+', "%20"))
        .unwrap_or_default()
}

/// `POST`: inserts one object or an array of objects (201). `Prefer: return=` minimal
/// (default: no body), headers-only (`Location` of a single row), representation (the rows,
/// projected by `select`, embeds included); `resolution=` upserts on `on_conflict` (default:
/// the primary key); `missing=default` gives absent keys their DEFAULT.
async fn insert_rows(
    State(state): State<AppState>,
    ctx: RequestContext,
    BearerToken(token): BearerToken,
    ApiPath(params): PathParams,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: RawJson,
) -> Result<Response, ApiError> {
    check_before_database(&raw, &headers)?;
    let (cache, table) =
        resolve_table(&state, &params, &headers, &Method::POST, &ctx.request_id).await?;
    let table: &Table = &table;
    let Prepared {
        query,
        prefs,
        format,
    } = prepare(&cache, table, &raw, &headers, Purpose::Insert)?;
    let mut applied: Vec<&'static str> = Vec::new();
    let conflict = match (prefs.resolution, &query.on_conflict) {
        (None, None) => None,
        (None, Some(_)) => return Err(parse::invalid_parameter(
            "on_conflict needs Prefer: resolution=merge-duplicates or resolution=ignore-duplicates",
        )),
        (Some(resolution), target) => {
            let target: Vec<&Column> = match target {
                Some(columns) => columns.clone(),
                None if table.primary_key.is_empty() => return Err(parse::invalid_parameter(
                    "This table has no primary key: name the conflict columns with on_conflict=",
                )),
                None => table
                    .primary_key
                    .iter()
                    .filter_map(|name| table.column(name))
                    .collect(),
            };
            applied.push(match resolution {
                Resolution::MergeDuplicates => "resolution=merge-duplicates",
                Resolution::IgnoreDuplicates => "resolution=ignore-duplicates",
            });
            Some(match resolution {
                Resolution::MergeDuplicates => Conflict::Merge(target),
                Resolution::IgnoreDuplicates => Conflict::Ignore(target),
            })
        }
    };
    if prefs.missing_default {
        applied.push("missing=default");
    }
    let groups = insert_groups(
        table,
        &body,
        query.columns.as_deref(),
        prefs.missing_default,
    )?;
    let op = WriteOp::Insert { groups, conflict };
    let return_ = prefs.return_.unwrap_or(Return::Minimal);
    let run = WriteRun {
        state: &state,
        ctx: &ctx,
        token: token.as_deref(),
        prefs: &prefs,
        format,
    };
    let (written, location) = match return_ {
        Return::HeadersOnly => match primary_key_node(&query.root) {
            Some(pk) => {
                let written = WriteRun {
                    format: Format::Json,
                    ..run
                };
                let w = written.run(&pk, &op, true).await?;
                let loc = location(table, w.body.as_deref());
                (Written { body: None, ..w }, loc)
            }
            None => (run.run(&query.root, &op, false).await?, None),
        },
        Return::Representation => (run.run(&query.root, &op, true).await?, None),
        Return::Minimal => (run.run(&query.root, &op, false).await?, None),
    };
    if prefs.return_.is_some() {
        applied.push(Preferences::return_name(return_));
    }
    let mut out = run.headers(&written, &mut applied);
    if let Some(location) = location {
        out.push((header::LOCATION, location));
    }
    let body = match return_ {
        Return::Representation => Some(written.body.unwrap_or_else(|| "[]".to_owned())),
        _ => None,
    };
    Ok(respond::response(StatusCode::CREATED, format, body, out))
}

/// `PATCH` and `DELETE` answer alike: 200 with the rows under `return=representation`,
/// else 204.
async fn change_rows(
    state: AppState,
    ctx: RequestContext,
    token: Option<String>,
    params: HashMap<String, String>,
    raw: Option<String>,
    headers: HeaderMap,
    body: Option<RawJson>,
) -> Result<Response, ApiError> {
    let (purpose, method) = if body.is_some() {
        (Purpose::Update, Method::PATCH)
    } else {
        (Purpose::Delete, Method::DELETE)
    };
    check_before_database(&raw, &headers)?;
    let (cache, table) = resolve_table(&state, &params, &headers, &method, &ctx.request_id).await?;
    let table: &Table = &table;
    let Prepared {
        query,
        prefs,
        format,
    } = prepare(&cache, table, &raw, &headers, purpose)?;
    // Never every row by accident: a filter is required; to change all rows, say so with a
    // filter that matches them all (e.g. `id=not.is.null`).
    if query.root.filters.is_empty() {
        return Err(filter_required());
    }
    let op = match &body {
        None => WriteOp::Delete,
        Some(body) => {
            let Value::Object(object) = &body.value else {
                return Err(ApiError::bad_request(
                    "VALIDATION_ERROR",
                    "The body must be a JSON object",
                ));
            };
            let columns = body_columns(table, &[object])?;
            if columns.is_empty() {
                return Err(ApiError::bad_request(
                    "VALIDATION_ERROR",
                    "The body must set at least one column",
                ));
            }
            WriteOp::Update {
                columns,
                row_json: body.text.clone(),
            }
        }
    };
    let return_ = prefs.return_.unwrap_or(Return::Minimal);
    let run = WriteRun {
        state: &state,
        ctx: &ctx,
        token: token.as_deref(),
        prefs: &prefs,
        format,
    };
    let representation = return_ == Return::Representation;
    let written = run.run(&query.root, &op, representation).await?;
    let mut applied = Vec::new();
    if prefs.return_.is_some() {
        applied.push(Preferences::return_name(return_));
    }
    let out = run.headers(&written, &mut applied);
    Ok(if representation {
        respond::response(
            StatusCode::OK,
            format,
            Some(written.body.unwrap_or_else(|| "[]".to_owned())),
            out,
        )
    } else {
        respond::response(StatusCode::NO_CONTENT, format, None, out)
    })
}

/// `PATCH`: sets the body's columns on every row matching the filters.
async fn update_rows(
    State(state): State<AppState>,
    ctx: RequestContext,
    BearerToken(token): BearerToken,
    ApiPath(params): PathParams,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: RawJson,
) -> Result<Response, ApiError> {
    change_rows(state, ctx, token, params, raw, headers, Some(body)).await
}

/// `DELETE`: removes every row matching the filters.
async fn delete_rows(
    State(state): State<AppState>,
    ctx: RequestContext,
    BearerToken(token): BearerToken,
    ApiPath(params): PathParams,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    change_rows(state, ctx, token, params, raw, headers, None).await
}

pub fn filter_required() -> ApiError {
    ApiError::bad_request(
        "FILTER_REQUIRED",
        "This request changes rows and needs at least one filter, e.g. ?id=eq.5 (to change every row, say so: ?id=not.is.null)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn locations() {
        let cache = crate::rest::fixture::library();
        let t = cache.table_ref("public", "books").unwrap();
        assert_eq!(
            location(t, Some("[{\"id\": 5}]")).as_deref(),
            Some("/api/v1/tables/public/books?id=eq.5")
        );
        assert_eq!(location(t, Some("[{\"id\": 5}, {\"id\": 6}]")), None);
        assert_eq!(location(t, Some("[]")), None);
        let t = cache.table_ref("public", "book_tags").unwrap();
        assert_eq!(
            location(t, Some("[{\"book_id\": \"a&b\", \"tag_id\": 2}]")).as_deref(),
            Some("/api/v1/tables/public/book_tags?book_id=eq.a%26b&tag_id=eq.2")
        );
    }
}
