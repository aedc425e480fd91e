//! INSERT (with upsert), UPDATE and DELETE.
//!
//! Rows come from the request body as one JSON text parameter, turned into the table's row
//! type by `json_populate_recordset` inside PostgreSQL. Why that and not `VALUES` with one
//! typed parameter per cell: PostgreSQL converts each JSON value with the column type's own
//! rules (nested JSON into `jsonb`, JSON arrays into PostgreSQL arrays, numbers at full
//! precision, since the body text is passed unparsed), the statement text does not grow
//! with the number of rows, and there is a single parameter however large the batch.
//!
//! `Prefer: missing=default`: keys a row leaves out must take the column DEFAULT, which a
//! recordset cannot express per row (it yields NULL). So rows are grouped by the set of keys
//! they give, one INSERT per group naming only those columns (the others default);
//! [`WriteOp::Insert`] holds the groups. With a representation the groups are CTEs of one
//! statement; their rows come back group by group.
//!
//! Minimal returns use no `RETURNING`: with RLS, `RETURNING` also applies the SELECT
//! policies to the written rows, which would refuse a write the caller may do but not read
//! back. The affected row count comes from the command tag instead.
use super::read::{body_expr, condition_sql, projection, where_clause, Body};
use super::{quote_ident, relation, Builder, Param, Statement};
use crate::rest::schema_cache::{Column, Table};
use crate::rest::tree::Node;

/// `ON CONFLICT (columns) DO UPDATE SET … = EXCLUDED.…` or `DO NOTHING`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict<'c> {
    Merge(Vec<&'c Column>),
    Ignore(Vec<&'c Column>),
}

/// Rows that give the same keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertGroup<'c> {
    /// In table order; empty: every column takes its default.
    pub columns: Vec<&'c Column>,
    /// A JSON array of objects.
    pub rows_json: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp<'c> {
    Insert {
        groups: Vec<InsertGroup<'c>>,
        conflict: Option<Conflict<'c>>,
    },
    /// Sets `columns` to the values of the JSON object `row_json` on every row the root's
    /// filters match.
    Update {
        columns: Vec<&'c Column>,
        row_json: String,
    },
    Delete,
}

fn column_list(columns: &[&Column]) -> String {
    columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The data-modifying statements of `op` (several for grouped inserts), without RETURNING.
fn dmls(root: &Node<'_>, op: &WriteOp<'_>, b: &mut Builder) -> Vec<String> {
    let table = root.table;
    let rel = relation(table);
    match op {
        WriteOp::Insert { groups, conflict } => groups
            .iter()
            .map(|g| insert_dml(table, g, conflict.as_ref(), b))
            .collect(),
        WriteOp::Update { columns, row_json } => {
            let alias = b.alias();
            let row = b.param(Param::Text(row_json.clone()));
            let cols = column_list(columns);
            let source =
                format!("SELECT {cols} FROM json_populate_record(NULL::{rel}, {row}::text::json)");
            // `(a) = (SELECT a …)` with one column needs ROW(); the plain form is simpler.
            let set = if columns.len() == 1 {
                format!("{cols} = ({source})")
            } else {
                format!("({cols}) = ({source})")
            };
            let conditions = root_conditions(root, &alias, b);
            vec![format!("UPDATE {rel} AS {alias} SET {set}{conditions}")]
        }
        WriteOp::Delete => {
            let alias = b.alias();
            let conditions = root_conditions(root, &alias, b);
            vec![format!("DELETE FROM {rel} AS {alias}{conditions}")]
        }
    }
}

/// Only the root's own filters decide which rows a PATCH/DELETE touches; embedded filters
/// shape the representation.
fn root_conditions(root: &Node<'_>, alias: &str, b: &mut Builder) -> String {
    let conditions: Vec<String> = root
        .filters
        .iter()
        .map(|c| condition_sql(c, alias, b))
        .collect();
    where_clause(&conditions)
}

fn insert_dml(
    table: &Table,
    group: &InsertGroup<'_>,
    conflict: Option<&Conflict<'_>>,
    b: &mut Builder,
) -> String {
    let rel = relation(table);
    let rows = b.param(Param::Text(group.rows_json.clone()));
    let source = format!("json_populate_recordset(NULL::{rel}, {rows}::text::json)");
    let mut dml = if group.columns.is_empty() {
        // No keys at all: with no target list and an empty select list every column takes
        // its default, one row per object.
        format!("INSERT INTO {rel} SELECT FROM {source}")
    } else {
        let cols = column_list(&group.columns);
        format!("INSERT INTO {rel} ({cols}) SELECT {cols} FROM {source}")
    };
    match conflict {
        None => {}
        Some(Conflict::Ignore(target)) => {
            dml.push_str(&format!(
                " ON CONFLICT ({}) DO NOTHING",
                column_list(target)
            ));
        }
        Some(Conflict::Merge(target)) if group.columns.is_empty() => {
            dml.push_str(&format!(
                " ON CONFLICT ({}) DO NOTHING",
                column_list(target)
            ));
        }
        Some(Conflict::Merge(target)) => {
            let set: Vec<String> = group
                .columns
                .iter()
                .map(|c| format!("{0} = EXCLUDED.{0}", quote_ident(&c.name)))
                .collect();
            dml.push_str(&format!(
                " ON CONFLICT ({}) DO UPDATE SET {}",
                column_list(target),
                set.join(", ")
            ));
        }
    }
    dml
}

/// The write as plain statements (no RETURNING), run one after the other; their row counts
/// add up to the affected rows.
pub fn minimal(root: &Node<'_>, op: &WriteOp<'_>) -> Vec<Statement> {
    match op {
        WriteOp::Insert { groups, conflict } => groups
            .iter()
            .map(|g| {
                let mut b = Builder::default();
                let sql = insert_dml(root.table, g, conflict.as_ref(), &mut b);
                b.finish(sql)
            })
            .collect(),
        _ => {
            let mut b = Builder::default();
            let sql = dmls(root, op, &mut b).remove(0);
            vec![b.finish(sql)]
        }
    }
}

/// The write with its representation: the written rows projected by the root's select
/// (embeds included), one row `(body, affected int8, NULL)`.
pub fn with_representation(
    root: &Node<'_>,
    op: &WriteOp<'_>,
    body: Body,
    max_rows: u64,
) -> Statement {
    let mut b = Builder::default();
    let body = body_expr(body, root, &mut b);
    let statements = dmls(root, op, &mut b);
    let ctes = if statements.len() == 1 {
        format!("_w AS ({} RETURNING *)", statements[0])
    } else {
        let parts: Vec<String> = statements
            .iter()
            .enumerate()
            .map(|(i, s)| format!("_w{i} AS ({s} RETURNING *)"))
            .collect();
        let union: Vec<String> = (0..statements.len())
            .map(|i| format!("SELECT * FROM _w{i}"))
            .collect();
        format!(
            "{}, _w AS ({})",
            parts.join(", "),
            union.join(" UNION ALL ")
        )
    };
    let alias = b.alias();
    let projection = projection(root, &alias, max_rows, &mut b);
    let sql = format!(
        "WITH {ctes} SELECT {body}, count(*)::int8, NULL::int8 FROM (SELECT {projection} FROM _w {alias}) _r"
    );
    b.finish(sql)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::parse::{decode_pairs, parse_query, Purpose};
    use crate::rest::relationships::tests::library;
    use crate::rest::schema_cache::tests::posts;
    use crate::rest::schema_cache::SchemaCache;

    const EVIL: &str = "x'); DROP TABLE posts; --";

    fn root<'c>(raw: &str, c: &'c SchemaCache, table: &str, purpose: Purpose) -> Node<'c> {
        let t = c.table_ref("public", table).unwrap();
        parse_query(&decode_pairs(Some(raw)).unwrap(), c, t, purpose)
            .unwrap()
            .root
    }

    #[test]
    fn inserts() {
        let c = SchemaCache::from_tables([posts()]);
        let t = c.table_ref("public", "posts").unwrap();
        let node = root("select=id", &c, "posts", Purpose::Insert);
        let cols = vec![t.column("title").unwrap(), t.column("views").unwrap()];
        let body = format!("[{{\"title\":\"{EVIL}\",\"views\":1}}]");
        let op = WriteOp::Insert {
            groups: vec![InsertGroup {
                columns: cols.clone(),
                rows_json: body.clone(),
            }],
            conflict: None,
        };
        let s = minimal(&node, &op);
        assert_eq!(
            s[0].sql,
            "INSERT INTO \"public\".\"posts\" (\"title\", \"views\") SELECT \"title\", \"views\" \
             FROM json_populate_recordset(NULL::\"public\".\"posts\", $1::text::json)"
        );
        assert_eq!(s[0].params, vec![Param::Text(body.clone())]);
        let s = with_representation(&node, &op, Body::Json, 100);
        assert_eq!(
            s.sql,
            "WITH _w AS (INSERT INTO \"public\".\"posts\" (\"title\", \"views\") SELECT \"title\", \"views\" \
             FROM json_populate_recordset(NULL::\"public\".\"posts\", $1::text::json) RETURNING *) \
             SELECT coalesce(json_agg(_r), '[]')::text, count(*)::int8, NULL::int8 FROM (SELECT _t0.\"id\" AS \"id\" FROM _w _t0) _r"
        );
        assert!(!s.sql.contains("DROP"));
    }

    #[test]
    fn upserts_and_groups() {
        let c = SchemaCache::from_tables([posts()]);
        let t = c.table_ref("public", "posts").unwrap();
        let node = root("", &c, "posts", Purpose::Insert);
        let id = t.column("id").unwrap();
        let title = t.column("title").unwrap();
        let op = |conflict| WriteOp::Insert {
            groups: vec![
                InsertGroup {
                    columns: vec![id, title],
                    rows_json: "[]".into(),
                },
                InsertGroup {
                    columns: vec![],
                    rows_json: "[{}]".into(),
                },
            ],
            conflict: Some(conflict),
        };
        let s = minimal(&node, &op(Conflict::Merge(vec![id])));
        assert_eq!(s.len(), 2);
        assert!(s[0].sql.ends_with(
            "ON CONFLICT (\"id\") DO UPDATE SET \"id\" = EXCLUDED.\"id\", \"title\" = EXCLUDED.\"title\""
        ));
        assert!(s[1]
            .sql
            .starts_with("INSERT INTO \"public\".\"posts\" SELECT FROM"));
        assert!(s[1].sql.ends_with("ON CONFLICT (\"id\") DO NOTHING"));
        let s = minimal(&node, &op(Conflict::Ignore(vec![id])));
        assert!(s[0].sql.ends_with("ON CONFLICT (\"id\") DO NOTHING"));
        let s = with_representation(&node, &op(Conflict::Ignore(vec![id])), Body::Json, 10);
        assert!(s.sql.contains("RETURNING *), _w1 AS (INSERT"));
        assert!(s
            .sql
            .contains("_w AS (SELECT * FROM _w0 UNION ALL SELECT * FROM _w1)"));
        assert_eq!(
            s.params,
            vec![Param::Text("[]".into()), Param::Text("[{}]".into())]
        );
    }

    #[test]
    fn updates_and_deletes() {
        let c = library();
        let t = c.table_ref("public", "books").unwrap();
        let node = root(
            "id=eq.1&select=title,comments(body)",
            &c,
            "books",
            Purpose::Update,
        );
        let op = WriteOp::Update {
            columns: vec![t.column("title").unwrap()],
            row_json: "{\"title\":\"t\"}".into(),
        };
        assert_eq!(
            minimal(&node, &op)[0].sql,
            "UPDATE \"public\".\"books\" AS _t0 SET \"title\" = (SELECT \"title\" FROM \
             json_populate_record(NULL::\"public\".\"books\", $1::text::json)) WHERE _t0.\"id\" = $2::text::integer"
        );
        let s = with_representation(&node, &op, Body::Single, 10);
        assert!(s
            .sql
            .starts_with("WITH _w AS (UPDATE \"public\".\"books\" AS _t0 SET"));
        assert!(s
            .sql
            .contains("RETURNING *) SELECT (json_agg(_r) -> 0)::text"));
        assert!(
            s.sql.contains("WHERE _t2.\"book_id\" = _t1.\"id\""),
            "{}",
            s.sql
        );
        assert!(s.sql.ends_with("FROM _w _t1) _r"));
        let two = WriteOp::Update {
            columns: vec![t.column("title").unwrap(), t.column("data").unwrap()],
            row_json: "{}".into(),
        };
        assert!(minimal(&node, &two)[0]
            .sql
            .contains("SET (\"title\", \"data\") = (SELECT \"title\", \"data\" FROM"));
        let node = root("id=eq.1", &c, "books", Purpose::Delete);
        assert_eq!(
            minimal(&node, &WriteOp::Delete)[0].sql,
            "DELETE FROM \"public\".\"books\" AS _t0 WHERE _t0.\"id\" = $1::text::integer"
        );
    }
}
