//! Building the SQL for one REST request from a resolved [`ApiQuery`].
//!
//! The rules, each of which the tests check:
//! - identifiers come only from the schema cache, and are always double-quoted (with `"`
//!   doubled) even though they are trusted;
//! - values are never written into the SQL text: each is a bind parameter passed as text and
//!   cast to the column's type (`$1::text::integer`), so PostgreSQL parses it with the type's
//!   own input function, exactly as if it were a literal of that type;
//! - the only other things spliced in are fixed keywords and the cached `format_type` of a
//!   column, which PostgreSQL itself produced.
//!
//! Every statement returns at most one row with one `text` column (the JSON the client
//! receives), so the HTTP layer never converts PostgreSQL values itself.
use super::query::{ApiQuery, Filter, FilterOp, IsValue, Nulls};
use super::schema_cache::{Column, Table};
use crate::error::ApiError;
use tokio_postgres::types::ToSql;

/// A bind parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Text(String),
    TextArray(Vec<String>),
    Int(i64),
}

/// SQL text plus its parameters, `$1` being `params[0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Param>,
}

impl Statement {
    /// The parameters as `tokio_postgres` takes them.
    pub fn param_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| match p {
                Param::Text(s) => s as &(dyn ToSql + Sync),
                Param::TextArray(v) => v as &(dyn ToSql + Sync),
                Param::Int(i) => i as &(dyn ToSql + Sync),
            })
            .collect()
    }
}

/// `"name"` with any `"` doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."table"`.
pub fn relation(table: &Table) -> String {
    format!(
        "{}.{}",
        quote_ident(&table.schema),
        quote_ident(&table.name)
    )
}

/// Accumulates parameters and hands out their `$n` placeholders.
#[derive(Default)]
struct Params(Vec<Param>);

impl Params {
    fn push(&mut self, p: Param) -> String {
        self.0.push(p);
        format!("${}", self.0.len())
    }
}

fn column_list(columns: &[&Column]) -> String {
    columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The projection: the select list, or `*`.
fn projection(q: &ApiQuery<'_>) -> String {
    match &q.select {
        Some(columns) if !columns.is_empty() => column_list(columns),
        _ => "*".to_owned(),
    }
}

fn filter_sql(f: &Filter<'_>, params: &mut Params) -> String {
    let col = quote_ident(&f.column.name);
    let ty = &f.column.type_sql;
    let expr = match &f.op {
        FilterOp::Compare(op, value) => {
            let p = params.push(Param::Text(value.clone()));
            format!("{col} {} {p}::text::{ty}", op.sql())
        }
        FilterOp::Like {
            case_insensitive,
            pattern,
        } => {
            let p = params.push(Param::Text(pattern.clone()));
            let op = if *case_insensitive { "ILIKE" } else { "LIKE" };
            format!("{col}::text {op} {p}::text")
        }
        FilterOp::In(values) if values.is_empty() => "false".to_owned(),
        FilterOp::In(values) => {
            let p = params.push(Param::TextArray(values.clone()));
            format!("{col} = ANY({p}::text[]::{ty}[])")
        }
        FilterOp::Is(IsValue::Null) => format!("{col} IS NULL"),
        FilterOp::Is(IsValue::True) => format!("{col} IS TRUE"),
        FilterOp::Is(IsValue::False) => format!("{col} IS FALSE"),
    };
    if f.negated {
        format!("NOT ({expr})")
    } else {
        expr
    }
}

fn where_clause(q: &ApiQuery<'_>, params: &mut Params) -> String {
    if q.filters.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = q.filters.iter().map(|f| filter_sql(f, params)).collect();
    format!(" WHERE {}", parts.join(" AND "))
}

fn order_clause(q: &ApiQuery<'_>) -> String {
    if q.order.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = q
        .order
        .iter()
        .map(|o| {
            let mut s = format!(
                "{} {}",
                quote_ident(&o.column.name),
                if o.descending { "DESC" } else { "ASC" }
            );
            match o.nulls {
                Some(Nulls::First) => s.push_str(" NULLS FIRST"),
                Some(Nulls::Last) => s.push_str(" NULLS LAST"),
                None => {}
            }
            s
        })
        .collect();
    format!(" ORDER BY {}", parts.join(", "))
}

/// Wraps a data-modifying statement with `RETURNING` into one JSON-array row.
fn returning_json(dml: String, q: &ApiQuery<'_>) -> String {
    format!(
        "WITH _w AS ({dml} RETURNING {}) SELECT coalesce(json_agg(_w), '[]')::text FROM _w",
        projection(q)
    )
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// GET: the rows as one JSON array. `limit` is capped at `max_rows` and defaults to it.
pub fn select(table: &Table, q: &ApiQuery<'_>, max_rows: u64) -> Statement {
    let mut params = Params::default();
    let filters = where_clause(q, &mut params);
    let limit = params.push(Param::Int(to_i64(
        q.limit.unwrap_or(max_rows).min(max_rows),
    )));
    let offset = match q.offset {
        Some(n) if n > 0 => format!(" OFFSET {}", params.push(Param::Int(to_i64(n)))),
        _ => String::new(),
    };
    let sql = format!(
        "SELECT coalesce(json_agg(_r), '[]')::text FROM (SELECT {} FROM {}{filters}{} LIMIT {limit}{offset}) _r",
        projection(q),
        relation(table),
        order_clause(q),
    );
    Statement {
        sql,
        params: params.0,
    }
}

/// POST: inserts the rows of `rows_json` (a JSON array of objects); only `columns` are taken
/// from each object. `json_populate_recordset` turns each JSON value into the column's type
/// inside PostgreSQL.
pub fn insert(
    table: &Table,
    q: &ApiQuery<'_>,
    columns: &[&Column],
    rows_json: String,
    returning: bool,
) -> Statement {
    let mut params = Params::default();
    let rows = params.push(Param::Text(rows_json));
    let rel = relation(table);
    let source = format!("json_populate_recordset(NULL::{rel}, {rows}::text::json)");
    let dml = if columns.is_empty() {
        // No keys at all: every column takes its default. With no target list and an empty
        // select list PostgreSQL fills all columns from their defaults, one row per object.
        format!("INSERT INTO {rel} SELECT FROM {source}")
    } else {
        let cols = column_list(columns);
        format!("INSERT INTO {rel} ({cols}) SELECT {cols} FROM {source}")
    };
    let sql = if returning {
        returning_json(dml, q)
    } else {
        dml
    };
    Statement {
        sql,
        params: params.0,
    }
}

/// PATCH: sets `columns` of every row matching the filters to the values of `row_json` (a
/// JSON object). Refuses to build an unfiltered update.
pub fn update(
    table: &Table,
    q: &ApiQuery<'_>,
    columns: &[&Column],
    row_json: String,
    returning: bool,
) -> Result<Statement, ApiError> {
    if q.filters.is_empty() {
        return Err(filter_required());
    }
    if columns.is_empty() {
        return Err(ApiError::bad_request(
            "VALIDATION_ERROR",
            "The body must set at least one column",
        ));
    }
    let mut params = Params::default();
    let row = params.push(Param::Text(row_json));
    let rel = relation(table);
    let cols = column_list(columns);
    let source = format!("SELECT {cols} FROM json_populate_record(NULL::{rel}, {row}::text::json)");
    // Row syntax `(a) = (SELECT a …)` with one column is not accepted without ROW(), so a
    // single column uses the plain form.
    let set = if columns.len() == 1 {
        format!("{cols} = ({source})")
    } else {
        format!("({cols}) = ({source})")
    };
    let filters = where_clause(q, &mut params);
    let dml = format!("UPDATE {rel} SET {set}{filters}");
    let sql = if returning {
        returning_json(dml, q)
    } else {
        dml
    };
    Ok(Statement {
        sql,
        params: params.0,
    })
}

/// DELETE: removes every row matching the filters. Refuses to build an unfiltered delete.
pub fn delete(table: &Table, q: &ApiQuery<'_>, returning: bool) -> Result<Statement, ApiError> {
    if q.filters.is_empty() {
        return Err(filter_required());
    }
    let mut params = Params::default();
    let filters = where_clause(q, &mut params);
    let dml = format!("DELETE FROM {}{filters}", relation(table));
    let sql = if returning {
        returning_json(dml, q)
    } else {
        dml
    };
    Ok(Statement {
        sql,
        params: params.0,
    })
}

pub fn filter_required() -> ApiError {
    ApiError::bad_request(
        "FILTER_REQUIRED",
        "This request changes rows and needs at least one filter, e.g. ?id=eq.5",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::query::{decode_pairs, parse};
    use crate::rest::schema_cache::tests::posts;

    const EVIL: &str = "x'); DROP TABLE posts; --";

    fn q<'t>(raw: &str, t: &'t Table) -> ApiQuery<'t> {
        parse(&decode_pairs(Some(raw)).unwrap(), t).unwrap()
    }

    fn enc(s: &str) -> String {
        s.bytes().map(|b| format!("%{b:02X}")).collect()
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("posts"), "\"posts\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(relation(&posts()), "\"public\".\"posts\"");
    }

    #[test]
    fn select_default() {
        let t = posts();
        let s = select(&t, &q("", &t), 1000);
        assert_eq!(
            s.sql,
            "SELECT coalesce(json_agg(_r), '[]')::text FROM (SELECT * FROM \"public\".\"posts\" LIMIT $1) _r"
        );
        assert_eq!(s.params, vec![Param::Int(1000)]);
    }

    #[test]
    fn select_with_everything() {
        let t = posts();
        let raw = format!("select=id,title&title=eq.{}&views=gt.3&published=is.null&id=in.(a,b)&title=not.like.*x*&order=views.desc.nullsfirst&limit=5000&offset=20", enc(EVIL));
        let s = select(&t, &q(&raw, &t), 1000);
        assert_eq!(
            s.sql,
            "SELECT coalesce(json_agg(_r), '[]')::text FROM (SELECT \"id\", \"title\" FROM \"public\".\"posts\" \
             WHERE \"title\" = $1::text::text AND \"views\" > $2::text::integer AND \"published\" IS NULL \
             AND \"id\" = ANY($3::text[]::uuid[]) AND NOT (\"title\"::text LIKE $4::text) \
             ORDER BY \"views\" DESC NULLS FIRST LIMIT $5 OFFSET $6) _r"
        );
        assert_eq!(
            s.params,
            vec![
                Param::Text(EVIL.into()),
                Param::Text("3".into()),
                Param::TextArray(vec!["a".into(), "b".into()]),
                Param::Text("%x%".into()),
                Param::Int(1000), // capped at max_rows
                Param::Int(20),
            ]
        );
        assert!(!s.sql.contains("DROP"));
        assert_eq!(s.param_refs().len(), 6);
    }

    #[test]
    fn weird_identifiers_are_quoted_in_sql() {
        let t = posts();
        let s = select(&t, &q("select=we%22ird&we%22ird=eq.1", &t), 10);
        assert!(s.sql.contains("SELECT \"we\"\"ird\" FROM"));
        assert!(s
            .sql
            .contains("\"we\"\"ird\" = $1::text::character varying(20)"));
    }

    #[test]
    fn empty_in_list_matches_nothing() {
        let t = posts();
        let s = select(&t, &q("id=in.()", &t), 10);
        assert!(s.sql.contains("WHERE false LIMIT $1"));
        assert_eq!(s.params, vec![Param::Int(10)]);
    }

    #[test]
    fn insert_statements() {
        let t = posts();
        let query = q("", &t);
        let cols = [t.column("title").unwrap(), t.column("views").unwrap()];
        let body = format!("[{{\"title\":\"{EVIL}\",\"views\":1}}]");
        let s = insert(&t, &query, &cols, body.clone(), false);
        assert_eq!(
            s.sql,
            "INSERT INTO \"public\".\"posts\" (\"title\", \"views\") SELECT \"title\", \"views\" \
             FROM json_populate_recordset(NULL::\"public\".\"posts\", $1::text::json)"
        );
        assert_eq!(s.params, vec![Param::Text(body.clone())]);
        let query = q("select=id", &t);
        let s = insert(&t, &query, &cols, body, true);
        assert_eq!(
            s.sql,
            "WITH _w AS (INSERT INTO \"public\".\"posts\" (\"title\", \"views\") SELECT \"title\", \"views\" \
             FROM json_populate_recordset(NULL::\"public\".\"posts\", $1::text::json) RETURNING \"id\") \
             SELECT coalesce(json_agg(_w), '[]')::text FROM _w"
        );
        assert!(!s.sql.contains("DROP"));
        let s = insert(&t, &q("", &t), &[], "[{}]".into(), false);
        assert_eq!(
            s.sql,
            "INSERT INTO \"public\".\"posts\" SELECT FROM json_populate_recordset(NULL::\"public\".\"posts\", $1::text::json)"
        );
    }

    #[test]
    fn update_statements() {
        let t = posts();
        let query = q(&format!("id=eq.{}", enc(EVIL)), &t);
        let one = [t.column("title").unwrap()];
        let s = update(&t, &query, &one, "{\"title\":\"t\"}".into(), false).unwrap();
        assert_eq!(
            s.sql,
            "UPDATE \"public\".\"posts\" SET \"title\" = (SELECT \"title\" FROM \
             json_populate_record(NULL::\"public\".\"posts\", $1::text::json)) WHERE \"id\" = $2::text::uuid"
        );
        assert_eq!(s.params[1], Param::Text(EVIL.into()));
        let two = [t.column("title").unwrap(), t.column("views").unwrap()];
        let s = update(&t, &query, &two, "{}".into(), true).unwrap();
        assert!(s.sql.starts_with(
            "WITH _w AS (UPDATE \"public\".\"posts\" SET (\"title\", \"views\") = (SELECT \"title\", \"views\" FROM"
        ));
        assert!(s
            .sql
            .ends_with("RETURNING *) SELECT coalesce(json_agg(_w), '[]')::text FROM _w"));
        assert!(!s.sql.contains("DROP"));
        let err = update(&t, &q("", &t), &one, "{}".into(), false).unwrap_err();
        assert_eq!(err.code, "FILTER_REQUIRED");
        let err = update(&t, &query, &[], "{}".into(), false).unwrap_err();
        assert_eq!(err.code, "VALIDATION_ERROR");
    }

    #[test]
    fn delete_statements() {
        let t = posts();
        let s = delete(&t, &q("views=lte.0&published=is.false", &t), false).unwrap();
        assert_eq!(
            s.sql,
            "DELETE FROM \"public\".\"posts\" WHERE \"views\" <= $1::text::integer AND \"published\" IS FALSE"
        );
        let s = delete(&t, &q("id=eq.1&select=id", &t), true).unwrap();
        assert_eq!(
            s.sql,
            "WITH _w AS (DELETE FROM \"public\".\"posts\" WHERE \"id\" = $1::text::uuid RETURNING \"id\") \
             SELECT coalesce(json_agg(_w), '[]')::text FROM _w"
        );
        let err = delete(&t, &q("", &t), false).unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.code.as_ref()),
            (400, "FILTER_REQUIRED")
        );
    }
}
