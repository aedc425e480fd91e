//! The REST layer: from a PostgREST-style request to one parameterised SQL statement.
//!
//! Stages, one module each:
//! - [`schema_cache`]: what exists (tables, columns, foreign keys), kept fresh by
//!   [`listener`] (DDL notifications);
//! - [`relationships`]: which foreign key an embed means;
//! - [`parse`]: the query string and headers, resolved against the cache into [`tree`];
//! - [`build`]: SQL from the tree (identifiers from the cache, values as parameters);
//! - [`respond`]: content negotiation, `Content-Range`, statuses;
//! - [`profile`]: `Accept-Profile` / `Content-Profile`, the schema a path leaves out;
//! - [`functions`]: the function cache and call building for `/rpc/{fn}`.
//!
//! The HTTP handlers that drive them are in [`crate::routes::tables`].
pub mod build;
pub mod fixture;
pub mod functions;
pub mod listener;
pub mod parse;
pub mod profile;
pub mod relationships;
pub mod respond;
pub mod schema_cache;
pub mod tree;

#[cfg(test)]
mod proptests;

use crate::error::ApiError;
use parse::{decode_pairs, parse_query, Purpose};

/// The parser and SQL builder on a raw query string, for the fuzz target (`fuzz/`) and the
/// property tests: parses `query` against the [`fixture`] table `books` for every purpose
/// and builds the statements. Returns the SQL built, or the first (4xx) error. Never
/// panics, whatever the input.
pub fn parse_request_for_fuzzing(query: &str) -> Result<Vec<String>, ApiError> {
    let cache = fixture::library();
    let table = cache
        .table_ref("public", "books")
        .ok_or_else(ApiError::internal)?;
    let pairs = decode_pairs(Some(query))?;
    let mut sql = Vec::new();
    let mut first_error = None;
    for purpose in [
        Purpose::Read,
        Purpose::Insert,
        Purpose::Update,
        Purpose::Delete,
    ] {
        let q = match parse_query(&pairs, &cache, table, purpose) {
            Ok(q) => q,
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        let page = parse::range::page(q.root.limit, q.root.offset, None, 100);
        match purpose {
            Purpose::Read => {
                for body in [build::read::Body::Json, build::read::Body::Csv] {
                    sql.push(
                        build::read::read(&q.root, page, body, build::read::Total::Exact, 100).sql,
                    );
                }
                sql.push(build::read::explain_count(&q.root).sql);
            }
            Purpose::Insert => {
                let op = build::write::WriteOp::Insert {
                    groups: vec![build::write::InsertGroup {
                        columns: table.columns.iter().collect(),
                        rows_json: "[]".into(),
                    }],
                    conflict: None,
                };
                sql.push(
                    build::write::with_representation(&q.root, &op, build::read::Body::Json, 100)
                        .sql,
                );
            }
            Purpose::Update | Purpose::Delete => {
                let op = build::write::WriteOp::Delete;
                sql.extend(
                    build::write::minimal(&q.root, &op)
                        .into_iter()
                        .map(|s| s.sql),
                );
            }
        }
    }
    match (sql.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        _ => Ok(sql),
    }
}
